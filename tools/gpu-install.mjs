#!/usr/bin/env node
// `npm run gpu:install`: downloads onnxruntime-node's CUDA 12 execution provider (about 300 MB of shared
// libraries from Microsoft's NuGet feed: libonnxruntime_providers_cuda.so, _shared.so, _tensorrt.so) into
// node_modules/onnxruntime-node/bin/napi-v6/linux/x64. The package's own install script does the download;
// this wrapper exists because the project's .npmrc skips that script on install (it would fail offline),
// and the script reads that setting before any command-line flag, and parses `=cuda12` to nothing.
// ONNXRUNTIME_NODE_INSTALL=true, which the script reads first, is what makes it install.
import { spawnSync } from 'node:child_process'
import { existsSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

const require = createRequire(import.meta.url)
const pkgDir = dirname(require.resolve('onnxruntime-node/package.json'))
const platform = `${process.platform}/${process.arch}`
const metadata = require(join(pkgDir, 'script/install-metadata.js'))
const manifests = metadata.requirements[platform] ?? []
if (manifests.length === 0) {
  process.stdout.write(`gpu:install: nothing to download on ${platform}: its GPU providers (DirectML on Windows, CoreML on macOS) ship in the package.\n`)
  process.exit(0)
}
const binDir = join(pkgDir, 'bin/napi-v6', platform)
const files = manifests.flatMap((m) => Object.keys(metadata.manifests[`${platform}:${m}`] ?? {})).map((f) => join(binDir, f))

const env = { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'true' }
delete env.npm_config_onnxruntime_node_install
const r = spawnSync(process.execPath, [join(pkgDir, 'script/install.js')], { env, stdio: ['ignore', 'inherit', 'pipe'], encoding: 'utf-8', timeout: 15 * 60_000 })
const missing = files.filter((f) => !existsSync(f))
if (r.status !== 0 || missing.length > 0) {
  const lines = (r.stderr || '').split('\n').map((l) => l.trim())
  const why = r.error?.message ?? lines.find((l) => /Error|ECONN|ENOTFOUND|EAI_AGAIN|timed out/i.test(l)) ?? (missing.length ? `missing ${missing.join(', ')}` : `exit ${r.status}`)
  process.stderr.write(
    `gpu:install: the CUDA provider (${manifests.join(', ')}) could not be downloaded: ${why.slice(0, 500)}\n` +
      `  needs internet access to Microsoft's NuGet feed (a proxy: GLOBAL_AGENT_HTTPS_PROXY); retry with: npm run gpu:install\n` +
      `  the CPU provider is unaffected; the app falls back to it.\n`,
  )
  process.exit(1)
}
const mb = (f) => (statSync(f).size / 2 ** 20).toFixed(0)
process.stdout.write(`gpu:install: installed ${files.map((f) => `${f} (${mb(f)} MB)`).join(', ')}\n`)
