// kill -9 during a cache build, ten times at random moments (seeded, so a failure can be replayed): after
// each kill the cache opens and reports a state, the next build resumes, and the result is byte-identical
// to an uninterrupted build. The tiny bundle is slowed by the build knobs so the kills land mid-build.
import { spawn, spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { committedChunks, dumpTables, tempDir, TINY } from './helpers/cache'
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
      // Its own process group: the kill takes the CLI and the build's process with it, as a crash of the
      // machine or `kill -9` of the app's process tree would.
      const child = spawn(process.execPath, [BIN, 'cache', 'build', '--bundle', TINY, '--cache', killed], {
        env: { ...process.env, ...env, FEATURE_TRACER_TEST_PAUSE_MS: '400' },
        stdio: 'ignore',
        detached: true,
      })
      const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()))
      // A random moment after this run has committed a chunk of its own (24 chunks, 400 ms apart): each run
      // adds at least one, so all ten kills land in the middle of the build, at different points of a chunk.
      let running = true
      void exited.then(() => (running = false))
      const before = committedChunks(killed)
      const deadline = Date.now() + 60_000
      while (running && committedChunks(killed) <= before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
      await new Promise((r) => setTimeout(r, random() * 350))
      try {
        process.kill(-child.pid!, 'SIGKILL')
      } catch {
        // Already finished.
      }
      await exited
      const status = cli(['cache', 'status', '--bundle', TINY, '--cache', killed, '--json'], env)
      expect(status.code, status.stderr).toBe(0)
      states.push(JSON.parse(status.stdout).state)
    }
    // Every kill leaves a partial cache the app reads and resumes, never an unreadable file.
    expect(states, states.join(',')).toEqual(new Array(KILLS).fill('partial'))

    expect(cli(['cache', 'build', '--bundle', TINY, '--cache', killed], env).code).toBe(0)
    const clean = join(dir, 'clean.sqlite')
    expect(cli(['cache', 'build', '--bundle', TINY, '--cache', clean], env).code).toBe(0)
    expect(dumpTables(killed)).toBe(dumpTables(clean))
    expect(cli(['features', '--bundle', TINY, '--cache', killed, '--json'], env).stdout).toBe(
      cli(['features', '--bundle', TINY, '--cache', clean, '--json'], env).stdout,
    )
  }, 300_000)
})
