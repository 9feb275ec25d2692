// Causal-checks benchmark (issue 15 §5). `npx tsx test/bench/ablation.ts [--bundle DIR] [--runs N] [--threads T]`
// times trace.ablate's work in process on the demo (default resources/demo, else .cache/fakedemo): the point's
// forward pass, the 20 largest head × source terms and every whole head removed and run again (LN2, MLP,
// encoder in JS), with mean-ablation. The first call also runs the mean's corpus sample (32 sequences), once
// per bundle; the goal (< 1 s for one trace's checks) is reported against the median of the later ones,
// and the first beside it. Reported, not asserted.
import { existsSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { loadBundle } from '../../main/bundle'
import { OrtEngine } from '../../main/compute/ort-engine'
import { traceAblations } from '../../main/trace'

const { values: args } = parseArgs({
  options: { bundle: { type: 'string' }, runs: { type: 'string', default: '9' }, threads: { type: 'string', default: '2' } },
})
const dir = args.bundle ?? (existsSync('resources/demo/bundle.json') ? 'resources/demo' : '.cache/fakedemo')
const runs = Number(args.runs)
const GOAL_MS = 1000
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

const bundle = await loadBundle(dir)
const engine = await OrtEngine.create(bundle, { providers: ['cpu'], intraOpNumThreads: Number(args.threads) })
const { nSeq, seqLen } = bundle.tokens
const { n_layers, n_heads, d_model, d_mlp } = bundle.config.model
console.log(`bundle ${dir}: ${n_layers} layer(s), ${n_heads} heads, d_model ${d_model}, d_mlp ${d_mlp}, hook ${bundle.config.sae.hook_point}`)
// Points spread over the corpus, late in their sequences (the most head × source terms).
const point = (i: number) => ({ feature: (i * 997) % bundle.config.sae.d_sae, sample: (i * 389) % nSeq, pos: seqLen - 1 - (i % 8) })
const first = await traceAblations(bundle, engine, point(0))
const totals: number[] = []
const parts: Record<string, number[]> = {}
for (let i = 1; i <= runs; i++) {
  const r = await traceAblations(bundle, engine, point(i))
  totals.push(r.timingsMs.total)
  for (const [k, v] of Object.entries(r.timingsMs)) (parts[k] ??= []).push(v)
}
const m = median(totals)
console.log(`causal checks of one trace (${first.ablations.length} checks: 20 terms + ${first.ablations.length - 20} heads, with mean-ablation):`)
console.log(`  first (mean sample's forward pass included): ${first.timingsMs.total.toFixed(1)} ms (sample ${first.timingsMs.meanSample.toFixed(1)} ms)`)
console.log(`  later: median ${m.toFixed(1)} ms of ${runs} (${Object.entries(parts).map(([k, v]) => `${k} ${median(v).toFixed(1)}`).join(', ')} ms)`)
console.log(`  goal < ${GOAL_MS} ms: ${m < GOAL_MS ? 'met' : 'NOT met'} (first call ${first.timingsMs.total < GOAL_MS ? 'within' : 'over'} it too)`)
await engine.dispose()
