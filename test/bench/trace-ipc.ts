// The ipc part of the trace benchmark (test/bench/trace.ts --mode ipc): trace.run as the app serves it. A
// Workbench answers `dispatch('trace.run', …)` (zod validation, the handler, the compute process: traceAt
// and the contract's JSON form, then the answer across the process boundary); the value is then
// serialized the way each transport does: JSON text (serve mode's HTTP bridge) and V8's structured clone
// (Electron's ipcMain.handle). Figures are reported beside the in-process warm trace of the same run.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { serialize } from 'node:v8'
import type { Bundle } from '../../main/bundle'
import type { OrtEngineOptions } from '../../main/compute/ort-engine'
import type { Result, TraceJson } from '../../common/contract'
import { createWorkbench } from '../../main/app/workbench'
import { processCpuMs } from './proc'

export interface IpcBenchInput {
  dir: string
  bundle: Bundle
  ortOptions: OrtEngineOptions
  runs: number
  pointAt(i: number): { feature: number; sample: number; pos: number }
  timed(fn: () => Promise<unknown> | unknown): Promise<number>
  cpuOfLast(n: number): number
  /** Measured earlier in the same process: the in-process warm trace and the naive W_E·v loop. */
  baseline: { warmMs: number; warmCpuMs: number; naiveMs: number }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const fmt = (ms: number): string => `${ms.toFixed(1)} ms`

interface Sample {
  /** dispatch → JSON text: serve mode's path. */
  json: number
  /** dispatch + structured clone: Electron's path. */
  clone: number
  dispatch: number
  stringify: number
  structuredClone: number
  traceAt: number
  bytes: number
}

export async function benchIpc(inp: IpcBenchInput): Promise<void> {
  const { dir, bundle, ortOptions, runs, pointAt, timed } = inp
  const tmp = mkdtempSync(join(tmpdir(), 'ft-bench-ipc-'))
  const wb = createWorkbench({
    bundleDir: dir,
    cachePath: join(tmp, 'cache.sqlite'),
    userDataDir: join(tmp, 'user'),
    compute: { engine: ortOptions },
  })
  /** CPU ms of the compute process so far. */
  const computeCpu = async (): Promise<number> => processCpuMs((await wb.compute()).compute.pid!)
  const once = async (point: ReturnType<typeof pointAt>, channel: 'trace.run' | 'trace.point' | 'trace.scope' = 'trace.run'): Promise<Sample> => {
    const t0 = performance.now()
    const r = (await wb.dispatch(channel, { point })) as Result<Pick<TraceJson, 'timingsMs'>>
    const t1 = performance.now()
    const text = JSON.stringify(r)
    const t2 = performance.now()
    serialize(r)
    const t3 = performance.now()
    if (!r.ok) throw new Error(`${channel} failed: ${r.error.code}: ${r.error.message}`)
    return { json: t2 - t0, clone: t1 - t0 + (t3 - t2), dispatch: t1 - t0, stringify: t2 - t1, structuredClone: t3 - t2, traceAt: r.value.timingsMs.total, bytes: text.length }
  }
  const report = (what: string, samples: Sample[], cpuMs: number, hostCpuMs: number): void => {
    const m = (k: keyof Sample): number => median(samples.map((s) => s[k]))
    console.log(
      `${what}, median of ${samples.length}: ${fmt(m('json'))} wall to JSON text (serve), ${fmt(m('clone'))} to a structured clone (Electron); ` +
        `${fmt(cpuMs)} CPU of this process + ${fmt(hostCpuMs)} of the compute process (mean)`,
    )
    console.log(`  dispatch ${fmt(m('dispatch'))} (traceAt ${fmt(m('traceAt'))} of it), JSON.stringify ${fmt(m('stringify'))} (${(m('bytes') / 1024).toFixed(0)} KiB), structured clone ${fmt(m('structuredClone'))}`)
  }
  try {
    const started = performance.now()
    await once(pointAt(0)) // starts the compute process, builds its sessions and the batch block of sequences 0–127
    console.log(`ipc: first trace.run (compute process started, sessions built): ${fmt(performance.now() - started)}`)
    const warm: Sample[] = []
    let host0 = await computeCpu()
    for (let i = 1; i <= runs; i++) await timed(async () => warm.push(await once(pointAt(i))))
    const warmHostCpu = ((await computeCpu()) - host0) / runs
    const warmCpu = inp.cpuOfLast(runs) + warmHostCpu
    report('ipc: warm trace.run', warm, inp.cpuOfLast(runs), warmHostCpu)
    const w = median(warm.map((s) => s.json))
    const { warmMs, warmCpuMs, naiveMs } = inp.baseline
    console.log(`  warm ipc / in-process warm trace = ${(w / warmMs).toFixed(2)} (wall), ${(warmCpu / warmCpuMs).toFixed(2)} (CPU); warm ipc / naive W_E·v = ${(w / naiveMs).toFixed(2)}`)

    const { nSeq } = bundle.tokens
    const batches = Math.floor(nSeq / 128)
    if (batches > 1) {
      // The engine keeps recent batches, so every cold trace here takes a batch not used before.
      let nextBatch = 1
      const fresh = (): number[] => Array.from({ length: Math.min(6, Math.floor((batches - nextBatch) / 3)) }, () => nextBatch++)
      const cold: Sample[] = []
      host0 = await computeCpu()
      for (const [i, b] of fresh().entries()) await timed(async () => cold.push(await once({ feature: i, sample: b * 128 + (i % 128), pos: 5 })))
      report(`ipc: cold trace.run (a batch not used before, forward over ${128 * bundle.tokens.seqLen} tokens)`, cold, inp.cpuOfLast(cold.length), ((await computeCpu()) - host0) / cold.length)

      // The app's path: trace.point (the tab shows v, u, decompositions and circuits), then trace.scope
      // (the batch's activation scores and fidelity), on the same alternating new batches.
      const points: Sample[] = []
      const scopes: Sample[] = []
      for (const [i, b] of fresh().entries()) {
        const point = { feature: 100 + i, sample: b * 128 + (i % 128), pos: 7 }
        points.push(await once(point, 'trace.point'))
        scopes.push(await once(point, 'trace.scope'))
      }
      const m = (xs: Sample[], k: keyof Sample): number => median(xs.map((x) => x[k]))
      const both = points.map((p, i) => p.clone + scopes[i].clone)
      console.log(
        `ipc: cold trace in two parts, median of ${points.length}: trace.point ${fmt(m(points, 'clone'))} to a structured clone (${fmt(m(points, 'json'))} to JSON, ` +
          `${(m(points, 'bytes') / 1024).toFixed(0)} KiB), then trace.scope ${fmt(m(scopes, 'clone'))} (${fmt(m(scopes, 'json'))} to JSON, ${(m(scopes, 'bytes') / 1024).toFixed(0)} KiB); ` +
          `both ${fmt(median(both))}; point part / cold trace.run = ${(m(points, 'clone') / m(cold, 'clone')).toFixed(2)}`,
      )

      // What the feature tab does: trace.prefetch of a batch when its top activations show, then the click.
      const pre: number[] = []
      const after: number[] = []
      const scopeAfter: number[] = []
      for (const [i, b] of fresh().entries()) {
        const point = { feature: 200 + i, sample: b * 128 + ((i + 1) % 128), pos: 9 }
        const t0 = performance.now()
        const r = await wb.dispatch('trace.prefetch', { samples: [point.sample] })
        if (!r.ok) throw new Error(`trace.prefetch failed: ${r.error.code}: ${r.error.message}`)
        pre.push(performance.now() - t0)
        const pt = await once(point, 'trace.point')
        const sc = await once(point, 'trace.scope')
        after.push(pt.clone + sc.clone)
        scopeAfter.push(sc.clone)
      }
      console.log(`ipc: trace.prefetch of a new batch ${fmt(median(pre))}; then both parts of a trace there ${fmt(median(after))}, trace.scope ${fmt(median(scopeAfter))} of it (median of ${after.length})`)

      // A click while a batch's forward pass runs (a prefetch started 20 ms before): the batch runs in
      // runs of a few thousand tokens and the click's runs go first, so it waits for one run at most.
      // Baseline, same run: a compute process whose batch is one run (the click waits for all of it).
      const wb1 = createWorkbench({
        bundleDir: dir,
        cachePath: join(tmp, 'cache1.sqlite'),
        userDataDir: join(tmp, 'user1'),
        compute: { engine: { ...ortOptions, forwardChunkTokens: 1 << 30 } },
      })
      const clickDuringPrefetch = async (w: typeof wb, batch: number, i: number): Promise<number> => {
        const prefetching = w.dispatch('trace.prefetch', { samples: [batch * 128] })
        await new Promise((r) => setTimeout(r, 20))
        const t0 = performance.now()
        const r = await w.dispatch('trace.point', { point: { feature: 300 + i, sample: 5 + i, pos: 11 } })
        const ms = performance.now() - t0
        if (!r.ok) throw new Error(`trace.point failed: ${r.error.code}: ${r.error.message}`)
        await prefetching
        return ms
      }
      const during: number[] = []
      const duringShared: number[] = []
      try {
        await wb1.dispatch('trace.point', { point: pointAt(0) }) // start its compute process
        for (const [i, b] of fresh().entries()) {
          during.push(await clickDuringPrefetch(wb, b, i))
          duringShared.push(await clickDuringPrefetch(wb1, b, i))
        }
      } finally {
        await wb1.close()
      }
      console.log(
        `ipc: trace.point while a prefetch runs, median of ${during.length}: ${fmt(median(during))} with the batch cut into runs (alone: ${fmt(m(points, 'clone'))}), ` +
          `${fmt(median(duringShared))} with the batch as one run (baseline); ratio ${(median(during) / median(duringShared)).toFixed(2)}`,
      )
    }
  } finally {
    await wb.close()
    rmSync(tmp, { recursive: true, force: true })
  }
}
