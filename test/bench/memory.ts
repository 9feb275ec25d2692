// Memory benchmark. `npx tsx test/bench/memory.ts [--bundle DIR]` measures what `feature-tracer serve`
// holds once it is in use: the bundle open, one trace (its point and scope parts), a prefetched batch and
// the activation cache open (features.list, feature.get). The figure is the resident set (RSS) of the
// whole process tree (serve and every process it started: the compute process), reported in bytes and as
// a multiple of the bundle's weights in fp32 (model + SAE tensors × 4 bytes), the one size every bundle
// has. Made for a gelu-1l-shaped bundle (`/usr/bin/python3 tools/make_shaped_bundle.py`, .cache/gelu1l,
// 481 MB of weights); the cache is built first (by the CLI, in a temp folder) unless --no-cache.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { weightBytes } from './baselines'
import { treeRss } from './proc'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
const { values: args } = parseArgs({
  options: {
    bundle: { type: 'string' },
    'no-cache': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
})
const bundleDir = resolve(args.bundle ?? (existsSync(join(ROOT, '.cache/gelu1l/bundle.json')) ? join(ROOT, '.cache/gelu1l') : join(ROOT, 'resources/demo')))
const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(0)} MB`

const TOKEN = randomBytes(32).toString('base64url')

function call(port: number, channel: string, payload: unknown): Promise<unknown> {
  const body = Buffer.from(JSON.stringify(payload))
  return new Promise((resolveCall, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method: 'POST', path: `/api/${channel}`, headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json', 'Content-Length': body.length } },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          const r = JSON.parse(Buffer.concat(chunks).toString('utf-8')) as { ok: boolean; value?: unknown; error?: { code: string; message: string } }
          if (r.ok) resolveCall(r.value)
          else reject(new Error(`${channel}: ${r.error?.code}: ${r.error?.message}`))
        })
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

async function startServe(root: string, cache: string, env: NodeJS.ProcessEnv): Promise<{ proc: ChildProcess; port: number }> {
  const renderer = join(root, 'renderer')
  mkdirSync(renderer, { recursive: true })
  writeFileSync(join(renderer, 'index.html'), '<!doctype html><title>bench</title>')
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href
  const argv = ['--import', tsx, join(ROOT, 'main/transports/serve/cli.ts'), '--bundle', bundleDir, '--port', '0', '--cache', cache]
  argv.push('--user-data', join(root, 'user-data'), '--renderer', renderer)
  const proc = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...env, FT_SERVE_TOKEN: TOKEN } })
  let out = ''
  const port = await new Promise<number>((resolvePort, reject) => {
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString()
      const m = /http:\/\/127\.0\.0\.1:(\d+)\//.exec(out)
      if (m) resolvePort(Number(m[1]))
    })
    proc.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${out}`)))
  })
  return { proc, port }
}

const root = mkdtempSync(join(tmpdir(), 'ft-bench-memory-'))
const env = { ...process.env, XDG_CACHE_HOME: join(root, 'xdg-cache'), XDG_CONFIG_HOME: join(root, 'xdg-config'), FEATURE_TRACER_USER_DATA: join(root, 'user-data') }
const cache = join(root, 'cache.sqlite')
let serve: ChildProcess | undefined
try {
  const weights = weightBytes(bundleDir)
  const info = JSON.parse(readFileSync(join(bundleDir, 'bundle.json'), 'utf-8')) as { name: string; dataset: { n_seq: number; seq_len: number } }
  console.log(`${info.name}: ${mb(weights)} of weights in fp32`)
  if (!args['no-cache']) {
    const t0 = performance.now()
    const built = spawnSync(process.execPath, [join(ROOT, 'bin/feature-tracer.mjs'), 'cache', 'build', '--bundle', bundleDir, '--cache', cache], { env, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf-8' })
    if (built.status !== 0) throw new Error(`cache build failed: ${built.stderr}`)
    console.log(`  cache built in ${((performance.now() - t0) / 1000).toFixed(0)} s (not measured)`)
  }
  const started = await startServe(root, cache, env)
  serve = started.proc
  const { port } = started
  await call(port, 'bundle.info', {})
  const features = (await call(port, 'features.list', {})) as { features: { id: number; count?: number }[] } | null
  if (features && !args['no-cache']) await call(port, 'feature.get', { id: features.features[0]?.id ?? 0 })
  const point = { feature: 0, sample: 0, pos: 5 }
  const t0 = performance.now()
  await call(port, 'trace.point', { point })
  await call(port, 'trace.scope', { point })
  const traceMs = performance.now() - t0
  // A batch other than the trace's: the engine then keeps two.
  const other = Math.min(info.dataset.n_seq - 1, 128)
  await call(port, 'trace.prefetch', { samples: [other] })
  await new Promise((r) => setTimeout(r, 1000))
  const tree = treeRss(serve.pid!)
  const total = tree.reduce((a, p) => a + p.rss, 0)
  for (const p of tree) console.log(`  pid ${p.pid} ${mb(p.rss).padStart(8)}  ${p.what}`)
  console.log(`  serve after one trace (${traceMs.toFixed(0)} ms cold), a prefetched batch and an open cache: ${mb(total)} RSS = ${(total / weights).toFixed(2)}× the fp32 weights`)
} finally {
  serve?.kill('SIGTERM')
  await new Promise((r) => setTimeout(r, 500))
  serve?.kill('SIGKILL')
  if (args.keep) console.log(`  kept ${root}`)
  else rmSync(root, { recursive: true, force: true })
}
