// kill -9 during a cache build, ten times at random moments (seeded, so a failure can be replayed): after
// each kill the cache opens and reports a state, the next build resumes, and the result is byte-identical
// to an uninterrupted build. The tiny bundle is slowed by the build knobs so the kills land mid-build.
import { spawn, spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { dumpTables, tempDir, TINY } from './helpers/cache'
import { mulberry32 } from './helpers/fuzz'

const BIN = 'bin/feature-tracer.mjs'
const KILLS = 10

function cli(args: string[], env: Record<string, string>) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf-8', env: { ...process.env, ...env }, timeout: 240_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

describe('cache build under kill -9', () => {
  it(`ends identical to an uninterrupted build after ${KILLS} kills at random moments`, async () => {
    const dir = tempDir('ft-kill-')
    const env = { XDG_CACHE_HOME: join(dir, 'xdg-cache'), FEATURE_TRACER_USER_DATA: join(dir, 'user'), FEATURE_TRACER_CHUNK_SEQS: '2' }
    const killed = join(dir, 'killed.sqlite')
    const random = mulberry32(10)
    const states: string[] = []
    for (let k = 0; k < KILLS; k++) {
      // 24 chunks at 60 ms each after a ~1-2 s start: kills land in start-up, compute and finalize alike.
      const child = spawn(process.execPath, [BIN, 'cache', 'build', '--bundle', TINY, '--cache', killed], {
        env: { ...process.env, ...env, FEATURE_TRACER_TEST_PAUSE_MS: '60' },
        stdio: 'ignore',
      })
      const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()))
      await new Promise((r) => setTimeout(r, 300 + random() * 3000))
      child.kill('SIGKILL')
      await exited
      const status = cli(['cache', 'status', '--bundle', TINY, '--cache', killed, '--json'], env)
      expect(status.code, status.stderr).toBe(0)
      states.push(JSON.parse(status.stdout).state)
    }
    // Every kill leaves a state the app understands, never an unreadable file.
    for (const s of states) expect(['missing', 'partial', 'ready']).toContain(s)
    expect(states.some((s) => s === 'partial'), states.join(',')).toBe(true)

    expect(cli(['cache', 'build', '--bundle', TINY, '--cache', killed], env).code).toBe(0)
    const clean = join(dir, 'clean.sqlite')
    expect(cli(['cache', 'build', '--bundle', TINY, '--cache', clean], env).code).toBe(0)
    expect(dumpTables(killed)).toBe(dumpTables(clean))
    expect(cli(['features', '--bundle', TINY, '--cache', killed, '--json'], env).stdout).toBe(
      cli(['features', '--bundle', TINY, '--cache', clean, '--json'], env).stdout,
    )
  }, 300_000)
})
