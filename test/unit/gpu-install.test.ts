// `npm run gpu:install` really asks onnxruntime-node's installer for the CUDA provider (it used to exit 0
// having done nothing, because .npmrc's skip setting reached the script first). Offline — the download
// pointed at a closed loopback port — it must fail with one clear message, not succeed silently.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { describe, expect, it } from 'vitest'

describe('gpu:install', () => {
  it.runIf(process.platform === 'linux' && process.arch === 'x64')('tries the CUDA download and fails clearly offline', () => {
    const cuda = 'node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so'
    const had = existsSync(cuda)
    const r = spawnSync('npm', ['run', '--silent', 'gpu:install'], {
      encoding: 'utf-8',
      // As npm passes .npmrc's setting on to scripts: the wrapper must override it.
      env: { ...process.env, npm_config_onnxruntime_node_install: 'skip', GLOBAL_AGENT_HTTPS_PROXY: 'http://127.0.0.1:9', HTTPS_PROXY: 'http://127.0.0.1:9' },
      timeout: 60_000,
    })
    expect(r.status).toBe(1)
    expect(r.stderr).toMatch(/could not be downloaded: .*ECONNREFUSED 127\.0\.0\.1:9/)
    expect(r.stderr).toContain('retry with: npm run gpu:install')
    expect(existsSync(cuda)).toBe(had)
  })
})
