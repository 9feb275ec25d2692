// ONNX Runtime and the long jobs in processes of their own (issue 11 §5), through the Workbench as every
// transport uses it: a kill -9 of the compute process during a trace, and of a build's process mid-build,
// is answered as `busy` with what happened, and the app answers the next request (the build resumes,
// byte-identical); a newer request from the same caller stops the one it supersedes; trace.cancel and
// job.cancel end what they name. Engine runs are slowed by a test hook (pauseMsPerRun) to land in them.
import { cpSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { JobProgress, Result } from '../../common/contract'
import { unwrap } from '../../main/app/dispatch'
import { createWorkbench, type Workbench } from '../../main/app/workbench'
import { build, dumpTables, tempDir, tinyWorkbench, TINY } from './helpers/cache'

/** Child processes on a machine shared with other work can be slow to start. */
const SLOW = 240_000
const POINT = { feature: 2, sample: 6, pos: 30 }
const OTHER = { feature: 1, sample: 3, pos: 7 }

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Resolves with a dispatch's answer and how long it took. */
async function timed(answer: Promise<Result<unknown>>): Promise<{ r: Result<unknown>; ms: number }> {
  const t0 = performance.now()
  const r = await answer
  return { r, ms: performance.now() - t0 }
}

describe('the compute process', () => {
  let wb: Workbench
  let dir: string

  beforeAll(async () => {
    dir = tempDir()
    // 150 ms before each ONNX run: a trace takes a few runs, a batch's scope (runs of two sequences) a dozen.
    wb = tinyWorkbench(dir, { compute: { engine: { pauseMsPerRun: 150, forwardChunkTokens: 64, intraOpNumThreads: 1 } } })
    await (await wb.compute()).compute.ready()
  }, SLOW)
  afterAll(async () => wb?.close())

  it('survives kill -9 during a trace: the trace answers busy, the process restarts, the next request is answered', async () => {
    unwrap(await wb.invoke('labels.set', { id: 3, label: 'kept across the crash' }))
    const { compute } = await wb.compute()
    const pid = compute.pid!
    const starts = compute.starts
    const scope = wb.dispatch('trace.scope', { point: POINT })
    await sleep(400) // inside the batch's runs
    process.kill(pid, 'SIGKILL')
    const r = await scope
    expect(r).toEqual({ ok: false, error: { code: 'busy', message: 'the compute process stopped (signal SIGKILL); it was restarted, ask again' } })
    // Main kept its state (nothing of it lived in the compute process), and traces work again.
    expect(wb.labels.get((await wb.bundle()).bundle.hashes.bundle, 3).label).toBe('kept across the crash')
    const again = await wb.dispatch('trace.point', { point: POINT })
    expect(again.ok, JSON.stringify(again)).toBe(true)
    expect(compute.starts).toBe(starts + 1)
    expect(compute.pid).not.toBe(pid)
  }, SLOW)

  it('stops a superseded trace.scope: it answers busy at once, and makes no further ONNX run', async () => {
    // The batch's scope alone, in a process of its own (a kept batch would skip its runs).
    const runsOf = async (work: (w: Workbench) => Promise<unknown>): Promise<number> => {
      const fresh = tinyWorkbench(tempDir(), { compute: { engine: { pauseMsPerRun: 150, forwardChunkTokens: 64, intraOpNumThreads: 1 } } })
      try {
        const { compute } = await fresh.compute()
        await compute.ready()
        await work(fresh)
        return (await compute.stats()).runs
      } finally {
        await fresh.close()
      }
    }
    const batch = await runsOf(async (w) => unwrap(await w.invoke('trace.scope', { point: POINT })))
    expect(batch).toBeGreaterThan(10) // the point's sequence, 12 runs of two sequences, the projections
    let superseded: { r: Result<unknown>; ms: number } | null = null
    let newer: { r: Result<unknown>; ms: number } | null = null
    const both = await runsOf(async (w) => {
      const first = timed(w.dispatch('trace.scope', { point: POINT, caller: 'tab-1' }))
      await sleep(400) // a few of the batch's runs are done
      const second = timed(w.dispatch('trace.scope', { point: { feature: 2, prompt: 'def f(x):', token: 2 }, caller: 'tab-1' }))
      superseded = await first
      newer = await second
    })
    expect(superseded!.r).toEqual({ ok: false, error: { code: 'busy', message: 'superseded by a newer trace.scope request from the same caller; this one was stopped' } })
    expect(newer!.r.ok).toBe(true)
    // Had the first gone on, both would have made the batch's runs and the prompt's.
    expect(both).toBeLessThan(batch)
    // trace.point is superseded the same way.
    const point = wb.dispatch('trace.point', { point: POINT, caller: 'tab-2' })
    const next = wb.dispatch('trace.point', { point: OTHER, caller: 'tab-2' })
    expect(await point).toMatchObject({ ok: false, error: { code: 'busy', message: expect.stringContaining('superseded by a newer trace.point request') } })
    expect((await next).ok).toBe(true)
  }, SLOW)

  it('does not supersede across callers, nor requests without one', async () => {
    const [a, b, c] = await Promise.all([
      wb.dispatch('trace.point', { point: POINT, caller: 'tab-a' }),
      wb.dispatch('trace.point', { point: OTHER, caller: 'tab-b' }),
      wb.dispatch('trace.point', { point: OTHER }),
    ])
    expect([a.ok, b.ok, c.ok]).toEqual([true, true, true])
  }, SLOW)

  it('trace.cancel stops a closed tab\'s requests, and nothing else', async () => {
    const scope = wb.dispatch('trace.scope', { point: POINT, caller: 'closed-tab' })
    const other = wb.dispatch('trace.point', { point: OTHER, caller: 'open-tab' })
    await sleep(200)
    expect(unwrap(await wb.invoke('trace.cancel', { caller: 'closed-tab' }))).toEqual({ cancelled: 1 })
    expect(await scope).toMatchObject({ ok: false, error: { code: 'busy', message: expect.stringContaining('cancelled') } })
    expect((await other).ok).toBe(true)
    expect(unwrap(await wb.invoke('trace.cancel', { caller: 'closed-tab' }))).toEqual({ cancelled: 0 })
  }, SLOW)

  it('reports a bundle the compute process cannot open as the bundle\'s error, without restarting in a loop', async () => {
    const root = tempDir()
    const bundleDir = join(root, 'bundle')
    cpSync(TINY, bundleDir, { recursive: true })
    const broken = createWorkbench({ bundleDir, cachePath: join(root, 'cache.sqlite'), userDataDir: join(root, 'user') })
    try {
      await broken.bundle()
      // Gone after main opened it, before the compute process loads it.
      rmSync(join(bundleDir, 'sae.safetensors'))
      const r = await broken.dispatch('trace.point', { point: POINT })
      expect(r).toMatchObject({ ok: false, error: { code: 'no_bundle', message: expect.stringContaining('sae.safetensors') } })
      await sleep(500)
      expect((await broken.compute()).compute.starts).toBe(1)
    } finally {
      await broken.close()
    }
  }, SLOW)
})

describe('a cache build in its own process', () => {
  it('survives kill -9 of the build\'s process: failed as busy, the app answers, and the next build resumes to a byte-identical cache', async () => {
    const dir = tempDir()
    const wb = tinyWorkbench(dir, { build: { chunkSeqs: 2, pauseMsPerChunk: 150 } })
    try {
      let killed = false
      const end = await build(wb, {
        onProgress: (p: JobProgress, jobId) => {
          if (killed || p.doneTokens < 3 * 2 * 32) return
          killed = true
          const job = wb.runningJob(jobId)!
          expect(job.pid).toBeGreaterThan(0)
          expect(job.pid).not.toBe(process.pid)
          process.kill(job.pid!, 'SIGKILL')
        },
      })
      expect(killed).toBe(true)
      expect(end).toMatchObject({ kind: 'cache.build', outcome: 'failed', error: { code: 'busy' } })
      expect(end.error!.message).toBe('the cache build process stopped (signal SIGKILL); build again to resume from the last committed chunk')
      expect(end.cache.state).toBe('partial')
      // The app goes on: a trace is answered meanwhile, and the build resumes where it stopped.
      expect((await wb.dispatch('trace.point', { point: POINT })).ok).toBe(true)
      const progress: number[] = []
      const resumed = await build(wb, { onProgress: (p) => progress.push(p.doneTokens) })
      expect(resumed.outcome).toBe('done')
      expect(progress[0]).toBe(end.cache.doneTokens)
      expect(progress[0]).toBeGreaterThan(0)
      const clean = tinyWorkbench(tempDir(), { build: { chunkSeqs: 2 } })
      const cleanDone = await build(clean)
      await clean.close()
      expect(dumpTables(join(dir, 'cache.sqlite'))).toBe(dumpTables(cleanDone.cache.path))
    } finally {
      await wb.close()
    }
  }, SLOW)

  it('job.cancel ends the process: the job is cancelled, what it committed stays', async () => {
    const dir = tempDir()
    const wb = tinyWorkbench(dir, { build: { chunkSeqs: 2, pauseMsPerChunk: 150 } })
    try {
      let cancel: Promise<Result<unknown>> | null = null
      const end = await build(wb, {
        onProgress: (p, jobId) => {
          if (!cancel && p.doneTokens >= 2 * 2 * 32) cancel = wb.dispatch('job.cancel', { jobId })
        },
      })
      expect(await cancel).toEqual({ ok: true, value: { cancelled: true } })
      expect(end).toMatchObject({ kind: 'cache.build', outcome: 'cancelled' })
      expect(end.cache.state).toBe('partial')
      expect(end.cache.doneTokens).toBeGreaterThan(0)
    } finally {
      await wb.close()
    }
  }, SLOW)
})
