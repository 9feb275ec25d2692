// The `feature-tracer` command as a user runs it (bin/feature-tracer.mjs, a child process) on the tiny
// bundle: output shapes, exit codes, the default cache location, and a SIGKILL in the middle of a build.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { beforeAll, describe, expect, it } from 'vitest'
import type { FeatureDetail, FeatureSummary } from '../../main/ipc/contract'
import { dumpTables, tempDir, TINY } from './helpers/cache'

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
      ['count', 'density', 'f1', 'id', 'label', 'max', 'mean', 'notes', 'precision', 'recall', 'topToken', 'topTokenId'].sort(),
    )
  }, SLOW)

  it('prints one feature with the seed table’s columns', () => {
    const r = cli(['feature', '--bundle', TINY, '--cache', cache, '--id', '3', '--json'], env)
    expect(r.code).toBe(0)
    const d = JSON.parse(r.stdout) as FeatureDetail
    expect(Object.keys(d).sort()).toEqual(['histogram', 'intervals', 'logits', 'stats', 'top'])
    expect(d.stats.id).toBe(3)
    expect(d.top.length).toBe(Math.min(100, d.stats.count))
    expect(Object.keys(d.top[0]).sort()).toEqual(['activation', 'batch', 'context', 'label', 'pos', 'str_tokens', 'token_id', 'unique_token'].sort())
    expect(d.histogram.edges.length).toBe(d.histogram.counts.length + 1)
    expect(d.intervals[0].examples[0]).toHaveProperty('context')
    expect(d.logits.top[0]).toEqual({ tokenId: expect.any(Number), token: expect.any(String), effect: expect.any(Number) })
    const text = cli(['feature', '--bundle', TINY, '--cache', cache, '--id', '3', '--top', '5'], env)
    expect(text.code).toBe(0)
    expect(text.stdout).toContain('str_tokens  unique_token  context')
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
    const committed = (): number => {
      if (!existsSync(killedCache)) return 0
      try {
        const db = new Database(killedCache, { readonly: true })
        try {
          return (db.prepare('SELECT COUNT(*) AS n FROM chunk').get() as { n: number }).n
        } finally {
          db.close()
        }
      } catch {
        return 0
      }
    }
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
