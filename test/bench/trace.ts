// Trace benchmark. `npx tsx test/bench/trace.ts [--bundle DIR] [--runs N] [--threads T] [--mode all|engine|ipc]
// [--allow-spinning]`
// times traces end to end on a demo-shaped bundle (default resources/demo, else .cache/fakedemo, made by
// `/usr/bin/python3 tools/make_fake_demo.py`):
//   warm:  another trace in a batch already traced (the engine keeps the batch's hook values);
//   cold:  the first trace in a 128-sequence batch not used before (its forward pass included);
//   ipc:   trace.run through the Workbench's dispatch (payload validation, the compute process, the
//          contract's JSON form) plus its serialization: JSON text (serve mode) and V8's structured clone
//          (what Electron's ipcMain.handle does with the value) — test/bench/trace-ipc.ts.
// `--mode engine` skips the ipc part, `--mode ipc` runs only the in-process warm baseline and the ipc part.
// Baselines in the same process: the naive JS loop for W_E·v (one vector), and the same loop for all
// vectors of one trace's vocabulary products, against the batched ONNX run.
import { existsSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { loadBundle } from '../../main/bundle'
import { OrtEngine } from '../../main/compute/ort-engine'
import { traceAt, type TraceEngine } from '../../main/trace'
import { benchIpc } from './trace-ipc'

const { values: args } = parseArgs({
  options: {
    bundle: { type: 'string' },
    runs: { type: 'string', default: '15' },
    threads: { type: 'string', default: '2' },
    mode: { type: 'string', default: 'all' },
    /** ORT's default before this app turned it off: to measure what spinning intra-op threads cost. */
    'allow-spinning': { type: 'boolean', default: false },
  },
})
const dir = args.bundle ?? (existsSync('resources/demo/bundle.json') ? 'resources/demo' : '.cache/fakedemo')
const runs = Number(args.runs)
const threads = Number(args.threads)
const mode = args.mode ?? 'all'
const ortOptions = { providers: ['cpu' as const], intraOpNumThreads: threads, allowSpinning: args['allow-spinning'] }
if (!['all', 'engine', 'ipc'].includes(mode)) throw new Error(`--mode ${mode}: expected all, engine or ipc`)

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const fmt = (ms: number): string => `${ms.toFixed(1)} ms`

/** CPU time (all threads of this process, ORT's included) of the timed calls, beside their wall time. */
const cpuMs: number[] = []
async function timed(fn: () => Promise<unknown> | unknown): Promise<number> {
  const c = process.cpuUsage()
  const t = performance.now()
  await fn()
  const used = process.cpuUsage(c)
  cpuMs.push((used.user + used.system) / 1000)
  return performance.now() - t
}
/** Median CPU ms of the last n timed calls. */
const cpuOfLast = (n: number): number => median(cpuMs.slice(-n))

/** The naive baseline: W_E [vocab, d] times k vectors with a plain JS loop. */
function naiveEmbed(W_E: Float32Array, vectors: Float32Array[], d: number): Float32Array[] {
  const vocab = W_E.length / d
  return vectors.map((v) => {
    const out = new Float32Array(vocab)
    for (let x = 0; x < vocab; x++) {
      let s = 0
      for (let i = 0; i < d; i++) s += W_E[x * d + i] * v[i]
      out[x] = s
    }
    return out
  })
}

const bundle = await loadBundle(dir)
const { d_model: d, n_heads: H, d_vocab: vocab } = bundle.config.model
const { nSeq, seqLen } = bundle.tokens
console.log(`bundle ${dir}: ${bundle.config.name}; d_model ${d}, ${H} heads, vocab ${vocab}, d_sae ${bundle.config.sae.d_sae}, ${nSeq}×${seqLen} tokens; ${threads} ORT threads${ortOptions.allowSpinning ? ', spinning' : ''}`)

const engine = await OrtEngine.create(bundle, ortOptions)
const dSae = bundle.config.sae.d_sae
const pointAt = (i: number): { feature: number; sample: number; pos: number } => ({ feature: (i * 7919) % dSae, sample: i % Math.min(nSeq, 128), pos: 1 + ((i * 37) % (seqLen - 1)) })

async function series(eng: TraceEngine, n: number, offset: number): Promise<number[]> {
  const ms: number[] = []
  for (let i = 0; i < n; i++) ms.push(await timed(() => traceAt(bundle, eng, pointAt(offset + i))))
  return ms
}

// Warm-up: builds every session and the batch block of sequences 0–127.
const first = await timed(() => traceAt(bundle, engine, pointAt(0)))
const warm = await series(engine, runs, 1)
const last = await traceAt(bundle, engine, pointAt(runs + 1))
console.log(`first trace (sessions built): ${fmt(first)}`)
const warmCpu = cpuOfLast(runs)
console.log(`warm trace, median of ${runs}: ${fmt(median(warm))} wall (min ${fmt(Math.min(...warm))}, max ${fmt(Math.max(...warm))}), ${fmt(warmCpu)} CPU`)
console.log(`  stages of one warm trace: ${Object.entries(last.timingsMs).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}`)

const batches = Math.floor(nSeq / 128)
if (batches > 1 && mode !== 'ipc') {
  // The engine keeps recent batches, so every cold trace takes a batch not used before.
  const cold: number[] = []
  for (let b = 1; b < Math.min(batches, 7); b++) cold.push(await timed(() => traceAt(bundle, engine, { feature: b, sample: b * 128 + (b % 128), pos: 5 })))
  console.log(`cold trace (new 128-sequence batch: forward over ${128 * seqLen} tokens included), median of ${cold.length}: ${fmt(median(cold))} wall, ${fmt(cpuOfLast(cold.length))} CPU`)
}

// Baselines, same process.
const W_E = bundle.model.get('embed.W_E')!.data
const vectors = Array.from({ length: 2 + 4 * H }, (_, i) => last.v.vector.map((x, j) => x + 1e-3 * ((i * 31 + j) % 7)))
const repeat = async (n: number, fn: () => unknown): Promise<number[]> => {
  const out: number[] = []
  for (let i = 0; i < n; i++) out.push(await timed(fn))
  return out
}
const naiveOne = median(await repeat(7, () => naiveEmbed(W_E, [vectors[0]], d)))
const naiveOneCpu = cpuOfLast(7)
console.log(`baseline naive JS W_E·v (one vector): ${fmt(naiveOne)} wall, ${fmt(naiveOneCpu)} CPU; warm trace / naive W_E·v = ${(median(warm) / naiveOne).toFixed(2)} (wall), ${(warmCpu / naiveOneCpu).toFixed(2)} (CPU)`)
if (mode !== 'ipc') {
  const naiveAll = median(await repeat(3, () => naiveEmbed(W_E, vectors, d)))
  const stacked = new Float32Array(vectors.length * d)
  vectors.forEach((v, i) => stacked.set(v, i * d))
  const keys = stacked.subarray(0, 3 * H * d)
  const ortAll: number[] = []
  for (let i = 0; i < 7; i++) ortAll.push(await timed(() => engine.vocabProducts({ layer: bundle.hookPoint.layer, embed: stacked, keys, keyPos: 3, unembed: stacked.subarray(0, d) })))
  console.log(`vocabulary products of one trace (${vectors.length} vectors vs W_E, ${3 * H} vs LN1(W_E+W_pos), 1 vs W_U): ONNX ${fmt(median(ortAll))}; naive JS for the W_E part alone ${fmt(naiveAll)} (${(naiveAll / median(ortAll)).toFixed(1)}× slower)`)
}
await engine.dispose()

if (mode !== 'engine') {
  await benchIpc({ dir, bundle, ortOptions, runs, pointAt, timed, cpuOfLast, baseline: { warmMs: median(warm), warmCpuMs: warmCpu, naiveMs: naiveOne } })
}
