// The `feature-tracer` command as a user runs it (bin/feature-tracer.mjs, a child process) on the tiny
// bundle: output shapes, exit codes, the default cache location, and a SIGKILL in the middle of a build.
import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import type { FeatureDetail, FeatureSummary } from '../../common/contract'
import { committedChunks, dumpTables, tempDir, TINY } from './helpers/cache'

const BIN = 'bin/feature-tracer.mjs'
/** Each test starts worker threads or processes; a machine shared with a training job can be very slow. */
const SLOW = 300_000

function cli(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf-8', env: { ...process.env, ...env }, timeout: 240_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

describe('feature-tracer CLI', () => {
  let dir: string
  let env: Record<string, string>
  let cache: string

  beforeAll(() => {
    dir = tempDir()
    env = { XDG_CACHE_HOME: join(dir, 'xdg-cache'), FEATURE_TRACER_USER_DATA: join(dir, 'user'), FEATURE_TRACER_CHUNK_SEQS: '4' }
    cache = join(dir, 'tiny.sqlite')
    const r = cli(['cache', 'build', '--bundle', TINY, '--cache', cache], env)
    expect(r.stderr).toMatch(/cache build: \d+\/768 tokens .* tokens\/s, ETA/)
    expect(r.stderr).toContain(`cache ready: ${cache}`)
    expect(r.code).toBe(0)
  }, SLOW)

  it('prints the stats of every feature as JSON', () => {
    const r = cli(['features', '--bundle', TINY, '--cache', cache, '--json'], env)
    expect(r.code).toBe(0)
    const { features } = JSON.parse(r.stdout) as { features: FeatureSummary[] }
    expect(features).toHaveLength(64)
    expect(Object.keys(features[0]).sort()).toEqual(
      ['count', 'density', 'f1', 'flags', 'id', 'label', 'max', 'mean', 'notes', 'precision', 'recall', 'topToken', 'topTokenId'].sort(),
    )
    // BOS left out unless asked for: the tiny bundle's features fire on the BOS every sequence starts with.
    const withBos = cli(['features', '--bundle', TINY, '--cache', cache, '--json', '--include-bos'], env)
    const all = JSON.parse(withBos.stdout) as { features: FeatureSummary[]; bos: string }
    expect([JSON.parse(r.stdout).bos, all.bos]).toEqual(['excluded', 'included'])
    expect(all.features.some((f, i) => f.count > features[i].count)).toBe(true)
    expect(all.features.every((f, i) => f.count >= features[i].count)).toBe(true)
    const text = cli(['features', '--bundle', TINY, '--cache', cache, '--include-bos'], env)
    expect(text.stderr).toContain('statistics: BOS included')
  }, SLOW)

  it('prints one feature with the seed table’s columns', () => {
    const r = cli(['feature', '--bundle', TINY, '--cache', cache, '--id', '3', '--json'], env)
    expect(r.code).toBe(0)
    const d = JSON.parse(r.stdout) as FeatureDetail
    expect(Object.keys(d).sort()).toEqual(['below', 'bos', 'histogram', 'intervals', 'logits', 'quantiles', 'stats', 'top'])
    expect(d.stats.id).toBe(3)
    expect(d.top.length).toBe(Math.min(100, d.stats.count))
    expect(Object.keys(d.top[0]).sort()).toEqual(['activation', 'batch', 'context', 'label', 'pos', 'str_tokens', 'token_id', 'unique_token'].sort())
    expect(d.histogram.edges.length).toBe(d.histogram.counts.length + 1)
    expect(d.intervals[0].examples[0]).toHaveProperty('context')
    expect(d.logits.top[0]).toEqual({ tokenId: expect.any(Number), token: expect.any(String), effect: expect.any(Number) })
    const text = cli(['feature', '--bundle', TINY, '--cache', cache, '--id', '3', '--top', '5'], env)
    expect(text.code).toBe(0)
    expect(text.stdout).toContain('str_tokens  unique_token  context')
    expect(text.stdout).toContain('statistics: BOS excluded')
  }, SLOW)

  it('fails clearly, with a non-zero exit code, on bad input', () => {
    const unknown = cli(['feature', '--bundle', TINY, '--cache', cache, '--id', '64', '--json'], env)
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain('feature 64 does not exist')
    expect(unknown.stdout).toBe('')
    const noBundle = cli(['features', '--bundle', join(dir, 'no-such-bundle'), '--json'], env)
    expect(noBundle.code).toBe(1)
    expect(noBundle.stderr).toMatch(/bundle\.json .* does not exist/)
    const noCache = cli(['features', '--bundle', TINY, '--cache', join(dir, 'never-built.sqlite')], env)
    expect(noCache.code).toBe(1)
    expect(noCache.stderr).toContain('not built')
    expect(cli(['feature', '--bundle', TINY], env).code).toBe(2)
    expect(cli(['feature', '--id', 'seven'], env).code).toBe(2)
    expect(cli(['frobnicate'], env).code).toBe(2)
  }, SLOW)

  it('keeps the cache in the user cache folder, under the bundle hash, without --cache', () => {
    const r = cli(['cache', 'build', '--bundle', TINY], env)
    expect(r.code).toBe(0)
    const files = readdirSync(join(dir, 'xdg-cache', 'feature-tracer')).filter((f) => f.endsWith('.sqlite'))
    expect(files).toHaveLength(1)
    expect(files[0]).toMatch(/^[0-9a-f]{64}\.sqlite$/)
    const status = JSON.parse(cli(['cache', 'status', '--bundle', TINY, '--json'], env).stdout)
    expect(status.state).toBe('ready')
    expect(status.path).toBe(join(dir, 'xdg-cache', 'feature-tracer', files[0]))
  }, SLOW)

  it('resumes after the process is SIGKILLed mid-build, ending byte-identical to a clean build', async () => {
    const killedCache = join(dir, 'killed.sqlite')
    const slow = { ...env, FEATURE_TRACER_CHUNK_SEQS: '2', FEATURE_TRACER_TEST_PAUSE_MS: '150' }
    const child = spawn(process.execPath, [BIN, 'cache', 'build', '--bundle', TINY, '--cache', killedCache], { env: { ...process.env, ...slow }, stdio: 'ignore' })
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)))
    const committed = (): number => committedChunks(killedCache)
    const deadline = Date.now() + 200_000
    while (committed() < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    child.kill('SIGKILL')
    expect(await exited).toBe('SIGKILL')
    const done = committed()
    expect(done).toBeGreaterThanOrEqual(3)
    expect(done).toBeLessThan(12)
    const partial = JSON.parse(cli(['cache', 'status', '--bundle', TINY, '--cache', killedCache, '--json'], env).stdout)
    expect(partial.state).toBe('partial')

    expect(cli(['cache', 'build', '--bundle', TINY, '--cache', killedCache], { ...env, FEATURE_TRACER_CHUNK_SEQS: '2' }).code).toBe(0)
    const cleanCache = join(dir, 'clean2.sqlite')
    expect(cli(['cache', 'build', '--bundle', TINY, '--cache', cleanCache], { ...env, FEATURE_TRACER_CHUNK_SEQS: '2' }).code).toBe(0)
    expect(dumpTables(killedCache)).toBe(dumpTables(cleanCache))
    const answer = (c: string) => cli(['feature', '--bundle', TINY, '--cache', c, '--id', '5', '--json'], env).stdout
    expect(answer(killedCache)).toBe(answer(cleanCache))
    expect(cli(['features', '--bundle', TINY, '--cache', killedCache, '--json'], env).stdout).toBe(
      cli(['features', '--bundle', TINY, '--cache', cleanCache, '--json'], env).stdout,
    )
  }, SLOW)
})

describe('feature-tracer serve', () => {
  const TOKEN = 'fixed-token_for-scripts-0123456789abcdef'

  /** Starts serve on a free port with a stub renderer; resolves with what it printed once the URL is out. */
  async function startServe(args: string[], env: Record<string, string> = {}) {
    const dir = tempDir()
    const renderer = join(dir, 'renderer')
    mkdirSync(renderer)
    writeFileSync(join(renderer, 'index.html'), '<!doctype html>')
    const opts = ['--bundle', TINY, '--port', '0', '--cache', join(dir, 'c.sqlite'), '--user-data', join(dir, 'user'), '--renderer', renderer]
    const child = spawn(process.execPath, [BIN, 'serve', ...opts, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stderr.on('data', (c) => (stderr += c))
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve printed no URL: ${stderr}`)), 120_000)
      child.stdout.on('data', (c) => {
        stdout += c
        const m = /http:\/\/127\.0\.0\.1:\d+\/\S*/.exec(stdout)
        if (m) {
          clearTimeout(timer)
          resolve(m[0])
        }
      })
      child.on('exit', (code) => reject(new Error(`serve exited with ${code}: ${stderr}`)))
    })
    const stop = async () => {
      const exited = new Promise((r) => child.once('exit', r))
      child.kill('SIGTERM')
      await exited
    }
    return { url, stdout: () => stdout, stderr: () => stderr, stop }
  }

  it('prints the URL with its token; --token fixes it, and /api answers only with it', async () => {
    const serve = await startServe(['--token', TOKEN])
    try {
      expect(serve.url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:\\d+/\\?token=${TOKEN}$`))
      const host = new URL('api/host', serve.url)
      expect((await fetch(host, { headers: { Authorization: `Bearer ${TOKEN}` } })).status).toBe(200)
      expect((await fetch(host)).status).toBe(401)
      expect(serve.stderr()).not.toContain(TOKEN)
    } finally {
      await serve.stop()
    }
    const random = await startServe([], { FT_SERVE_TOKEN: '' })
    try {
      expect(random.url).toMatch(/\?token=[A-Za-z0-9_-]{43}$/)
    } finally {
      await random.stop()
    }
  }, SLOW)

  it('takes FT_SERVE_TOKEN, and refuses a short or odd token with a clear message that does not quote it', async () => {
    const fromEnv = await startServe([], { FT_SERVE_TOKEN: TOKEN })
    try {
      expect(fromEnv.url.endsWith(`?token=${TOKEN}`)).toBe(true)
    } finally {
      await fromEnv.stop()
    }
    const short = cli(['serve', '--bundle', TINY, '--port', '0', '--token', 'hunter2'])
    expect(short.code).toBe(1)
    expect(short.stderr).toMatch(/^feature-tracer serve: --token: a token needs at least 32 characters/)
    expect(short.stderr).not.toContain('hunter2')
    expect(short.stdout).toBe('')
    const odd = cli(['serve', '--bundle', TINY, '--port', '0', '--token', `${TOKEN}/../x`])
    expect(odd.code).toBe(1)
    expect(odd.stderr).toContain('--token: a token may only use the characters A-Z a-z 0-9 _ -')
    const env = cli(['serve', '--bundle', TINY, '--port', '0'], { FT_SERVE_TOKEN: 'short' })
    expect(env.code).toBe(1)
    expect(env.stderr).toContain('FT_SERVE_TOKEN: a token needs at least 32 characters')
  }, SLOW)
})
