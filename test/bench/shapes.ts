// Real sizes (issue 12 §8). `npx tsx test/bench/shapes.ts --bundle DIR` on a bundle made by
// tools/make_shaped_bundle.py (gelu-1l's or GPT-2 small's shapes, random weights): everything through a
// Workbench as the app runs it (the compute process started when the bundle opens, the trace channels
// dispatched as the page asks for them), in this order:
//   open        bundle.info's first answer (main reads, checks and hashes the bundle), then the
//               'bundle.provider' push (the compute process has loaded the weights and picked its EP);
//   first trace trace.point sent the moment bundle.info answers (a click at once), then trace.scope
//               (its 128-sequence batch's forward pass);
//   point part  trace.point at other points of that batch (median), then at the sequences' last position
//               (the longest forward pass: the point's sequence runs up to the point);
//   click       trace.prefetch of another batch (what the feature tab does when it shows top
//               activations there), then a click there: trace.point + trace.scope (median);
//   RSS         of this process (main's part) and the compute process, against the fp32 weights;
//   cache build the build job over the whole corpus, beside PyTorch eager doing forward + encode +
//               nonzero on the same tokens in the same run (tools/bench_torch.py).
// Goals (issue 12) on a 2-core CPU: first trace < 2 s, point part < 300 ms, a click's whole trace on a
// prefetched batch < 1 s. `--no-build` skips the cache build and its baseline; `--build-tokens N` stops the
// build after N tokens (its compute rate; PyTorch then runs on those N tokens).
import { mkdtempSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import type { BundleProvider, CacheProgress, Result } from '../../common/contract'
import { unwrap } from '../../main/app/dispatch'
import { createWorkbench, type Workbench } from '../../main/app/workbench'
import { torchBaselines, weightBytes } from './baselines'
import { treeRss } from './proc'

const { values: args } = parseArgs({
  options: {
    bundle: { type: 'string' },
    runs: { type: 'string', default: '5' },
    'no-build': { type: 'boolean', default: false },
    /** Stop the build (cancel its job) once it has done this many tokens: its compute rate, on fewer tokens. */
    'build-tokens': { type: 'string' },
  },
})
if (!args.bundle) throw new Error('--bundle DIR: a bundle made by tools/make_shaped_bundle.py')
const bundleDir = resolve(args.bundle)
const runs = Number(args.runs)
const BATCH = 128

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const ms = (x: number): string => `${x.toFixed(0)} ms`
const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(0)} MB`
const load = (): string => loadavg()[0].toFixed(1)
const goal = (x: number, limit: number): string => (x < limit ? `goal < ${ms(limit)} met` : `goal < ${ms(limit)} MISSED`)

/** The compute process's stage timings of the last trace.point (trace/point.ts's timingsMs). */
let lastStages: Record<string, number> = {}

async function timed(wb: Workbench, channel: string, payload: unknown): Promise<number> {
  const t0 = performance.now()
  const r = (await wb.dispatch(channel, payload)) as Result<{ timingsMs?: Record<string, number> }>
  if (!r.ok) throw new Error(`${channel}: ${r.error.code}: ${r.error.message}`)
  if (channel === 'trace.point') lastStages = r.value.timingsMs ?? {}
  return performance.now() - t0
}
const stages = (): string => Object.entries(lastStages).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ')

/** The cache build job, cancelled once `limit` tokens are done (if given): wall time, tokens done, compute rate. */
async function build(wb: Workbench, limit: number | undefined): Promise<{ secs: number; tokens: number; computeRate: number }> {
  let last: CacheProgress | null = null
  let stopped = false
  const t0 = performance.now()
  const done = new Promise<void>((resolveDone, reject) =>
    wb.subscribe((event, payload) => {
      if (event === 'job.progress' && (payload as CacheProgress).phase === 'compute') {
        last = payload as CacheProgress
        if (limit !== undefined && last.doneTokens >= limit && !stopped) {
          stopped = true
          void wb.invoke('job.cancel', { jobId: 'bench' })
        }
      }
      if (event === 'job.done') {
        const d = payload as { outcome: string; error?: { message: string } }
        if (d.outcome === 'done' || (stopped && d.outcome === 'cancelled')) resolveDone()
        else reject(new Error(d.error?.message ?? d.outcome))
      }
    }),
  )
  unwrap(await wb.invoke('cache.build', { jobId: 'bench', rebuild: true }))
  await done
  const p = last as CacheProgress | null
  return { secs: (performance.now() - t0) / 1000, tokens: p?.doneTokens ?? 0, computeRate: p?.tokensPerSec ?? 0 }
}

/**
 * Multiply-adds ×2 of what a trace computes, for the bound: the forward pass of `tokens` tokens (sequences
 * of seqLen) through the layers before the SAE's hook (MLP hooks: their layer's attention and W_in too;
 * the point part runs its sequence up to the point, so this is its most, at the last position), and the
 * point part's vocabulary products (trace/point-rows.ts: per convention W_E·v and the chosen head's OV
 * and QK-seed rows, that head's LN·OV and QK rows against LN1(W_E + W_pos), W_pos[p], the logit direction
 * vs W_U; a residual hook's u is v, so one convention's rows).
 */
function flops(info: { model: { n_layers: number; d_model: number; d_mlp: number; d_vocab: number }; sae: { hook_point: string } }, tokens: number, seqLen: number): { forward: number; vocab: number } {
  const { d_model: d, d_mlp: dm, d_vocab: v } = info.model
  const [, layer, ...rest] = info.sae.hook_point.split('.')
  const full = Number(layer) + (rest.join('.').startsWith('mlp') || rest.join('.').includes('mid') || rest.join('.').includes('post') ? 1 : 0)
  const perLayer = 2 * (4 * d * d + 2 * d * dm) + 2 * 2 * (seqLen / 2) * d
  const conventions = info.sae.hook_point.includes('hook_resid_') ? 1 : 2
  return { forward: tokens * full * perLayer, vocab: 2 * (3 * conventions + conventions + 1 + 2) * v * d }
}

const tmp = mkdtempSync(join(tmpdir(), 'ft-bench-shapes-'))
const wb = createWorkbench({ bundleDir, cachePath: join(tmp, 'cache.sqlite'), userDataDir: join(tmp, 'user'), startComputeOnOpen: true })
try {
  const providerPushed = new Promise<{ at: number; p: BundleProvider }>((r) => wb.subscribe((event, payload) => event === 'bundle.provider' && r({ at: performance.now(), p: payload as BundleProvider })))
  const t0 = performance.now()
  const info = unwrap(await wb.invoke('bundle.info', {}))
  const openMs = performance.now() - t0
  const { model: m, sae, dataset } = info
  const weights = weightBytes(bundleDir)
  console.log(`${info.name}: ${m.n_layers} layers, d_model ${m.d_model}, d_mlp ${m.d_mlp}, vocab ${m.d_vocab}; ${sae.kind} SAE of ${sae.d_sae} features on ${sae.hook_point}; ${dataset.n_seq}×${dataset.seq_len} tokens; ${mb(weights)} of fp32 weights; load average ${load()}`)
  console.log(`  open: bundle.info ${ms(openMs)}`)

  // The click the moment the bundle shows: it waits for the compute process started at open.
  const firstPoint = { feature: 1, sample: 3, pos: 17 }
  const firstPointMs = await timed(wb, 'trace.point', { point: firstPoint })
  const firstScopeMs = await timed(wb, 'trace.scope', { point: firstPoint })
  const pushed = await providerPushed
  console.log(`  compute process ready (provider ${pushed.p.provider}) ${ms(pushed.at - t0)} after the open began`)
  console.log(`  first trace after opening: trace.point ${ms(firstPointMs)} (${goal(firstPointMs, 2000)}), then trace.scope ${ms(firstScopeMs)} (its batch's forward pass); load ${load()}`)

  const points: number[] = []
  for (let i = 0; i < runs; i++) points.push(await timed(wb, 'trace.point', { point: { feature: 100 + 37 * i, sample: 5 + i, pos: 9 + 11 * i } }))
  console.log(`  trace point part, same batch, median of ${runs}: ${ms(median(points))} (${goal(median(points), 300)}; min ${ms(Math.min(...points))}, max ${ms(Math.max(...points))}); load ${load()}`)
  console.log(`    the last one's stages in the compute process (ms): ${stages()}`)
  // The point's forward pass runs its sequence up to the point: the last position is the longest one.
  const lasts: number[] = []
  for (let i = 0; i < runs; i++) lasts.push(await timed(wb, 'trace.point', { point: { feature: 150 + 41 * i, sample: 5 + i, pos: dataset.seq_len - 1 } }))
  console.log(`  trace point part at the sequence's last position, median of ${runs}: ${ms(median(lasts))} (${goal(median(lasts), 300)}; min ${ms(Math.min(...lasts))}, max ${ms(Math.max(...lasts))}); load ${load()}`)
  console.log(`    the last one's stages in the compute process (ms): ${stages()}`)

  if (dataset.n_seq > BATCH) {
    const prefetchMs = await timed(wb, 'trace.prefetch', { samples: [BATCH] })
    const clicks: number[] = []
    const scopes: number[] = []
    for (let i = 0; i < Math.min(runs, 3); i++) {
      const point = { feature: 200 + 53 * i, sample: BATCH + 7 + i, pos: 20 + 13 * i }
      const p = await timed(wb, 'trace.point', { point })
      const s = await timed(wb, 'trace.scope', { point })
      clicks.push(p + s)
      scopes.push(s)
    }
    console.log(`  trace.prefetch of a new batch ${ms(prefetchMs)}; then a click there, trace.point + trace.scope, median of ${clicks.length}: ${ms(median(clicks))} (${goal(median(clicks), 1000)}; scope ${ms(median(scopes))} of it); load ${load()}`)
  }

  const tree = treeRss(process.pid)
  const compute = (await wb.compute()).compute.pid
  const computeRss = tree.find((p) => p.pid === compute)?.rss ?? 0
  const mainRss = tree.find((p) => p.pid === process.pid)?.rss ?? 0
  console.log(`  RSS after these traces: main ${mb(mainRss)} (this benchmark's process), compute process ${mb(computeRss)}; together ${mb(mainRss + computeRss)} = ${((mainRss + computeRss) / weights).toFixed(2)}× the fp32 weights`)

  const f = flops(info, dataset.seq_len, dataset.seq_len)
  const batchTokens = Math.min(BATCH, dataset.n_seq) * dataset.seq_len
  console.log(`  arithmetic: the point part at most ${((f.forward + f.vocab) / 1e9).toFixed(1)} GFLOP (the point's sequence to the hook ${(f.forward / 1e9).toFixed(1)}, vocabulary products ${(f.vocab / 1e9).toFixed(1)}); a batch's forward pass ${((flops(info, batchTokens, dataset.seq_len).forward) / 1e9).toFixed(0)} GFLOP`)

  if (!args['no-build']) {
    const all = dataset.n_seq * dataset.seq_len
    const limit = args['build-tokens'] === undefined ? undefined : Math.min(all, Number(args['build-tokens']))
    const built = await build(wb, limit === all ? undefined : limit)
    const base = torchBaselines(bundleDir, built.tokens)
    const whole = built.tokens === all ? `${built.secs.toFixed(1)} s end to end = ${(all / built.secs).toFixed(0)} tokens/s, ` : `stopped after ${built.tokens} of ${all} tokens, `
    console.log(`  cache build: ${whole}compute phase ${built.computeRate.toFixed(0)} tokens/s; load ${load()}`)
    if (base) {
      console.log(`  PyTorch eager (forward to the hook + encode + nonzero) on the same ${base.tokens} tokens, ${base.threads} threads: ${base.eager_tokens_per_s.toFixed(0)} tokens/s; encoder GEMM bound ${base.gemm_tokens_per_s.toFixed(0)} tokens/s`)
      console.log(`  compute phase ÷ PyTorch eager = ${(built.computeRate / base.eager_tokens_per_s).toFixed(2)}×; load ${load()}`)
      const at = (gflop: number): string => ms((gflop / base.gemm_gflops) * 1000)
      console.log(`  at this run's GEMM rate (${base.gemm_gflops.toFixed(0)} GFLOP/s): the point part's arithmetic alone takes ${at((f.forward + f.vocab) / 1e9)}, a batch's forward pass ${at(flops(info, batchTokens, dataset.seq_len).forward / 1e9)}`)
    }
  }
} finally {
  await wb.close()
  rmSync(tmp, { recursive: true, force: true })
}
