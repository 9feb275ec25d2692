// What bounds the cache build's compute phase (issue 13 §5): the encoder's matrix product [tokens, d_in] ×
// [d_in, d_sae] of a bundle's SAE, timed in PyTorch (the GEMM bound the cache benchmark reports) and in
// ONNX Runtime (what the build runs: the weights fed as graph inputs, as the app does, and as an
// initializer ORT may prepack), alternating in one run so the machine's load falls on all alike; then the
// build's whole SAE tail on the same hook values (the product, b_enc, TopK, the count), to show what the
// rest of the graph costs over the product alone. Random values, the bundle's shapes, `--rounds` rounds
// (default 3), medians. `npx tsx test/bench/gemm.ts [--bundle DIR] [--tokens N]`.
import { spawnSync } from 'node:child_process'
import { availableParallelism, loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import { InferenceSession, Tensor as OrtTensor } from 'onnxruntime-node'
import { loadBundle } from '../../main/bundle'
import { DataType, GraphBuilder, int, type WeightsAs } from '../../main/compute/onnx-builder'

const { values: args } = parseArgs({
  options: { bundle: { type: 'string', default: 'resources/demo' }, tokens: { type: 'string' }, rounds: { type: 'string', default: '3' } },
  strict: false,
})
const bundle = await loadBundle(String(args.bundle))
const [dIn, dSae] = bundle.sae.W_enc.dims
// The build's block of tokens (ort-engine.ts: 32M floats of [tokens, d_sae] at once).
const n = Number(args.tokens ?? Math.max(1, Math.floor((32 * 1024 * 1024) / dSae)))
const gflop = (2 * n * dIn * dSae) / 1e9
const rounds = Number(args.rounds)

// xorshift32 values in [-0.5, 0.5): the same inputs every run.
let seed = 2463534242
const rand = (len: number): Float32Array => {
  const a = new Float32Array(len)
  for (let i = 0; i < len; i++) {
    seed ^= seed << 13
    seed ^= seed >>> 17
    seed ^= seed << 5
    a[i] = (seed >>> 0) / 2 ** 32 - 0.5
  }
  return a
}
const x = rand(n * dIn)

async function ortSession(weightsAs: WeightsAs, tail: boolean): Promise<() => Promise<void>> {
  const b = new GraphBuilder()
  const input = b.input('x', DataType.FLOAT, ['n', dIn])
  const pre = b.op('MatMul', [input, b.weight('W_enc', [dIn, dSae], bundle.sae.W_enc.data)])
  if (tail) {
    // As buildSaeGraph: + b_enc, TopK(64), ReLU of the kept values, non-zeros counted among them.
    const [top] = b.opN('TopK', [b.op('Add', [pre, b.weight('b_enc', [dSae], bundle.sae.b_enc.data)]), b.i64([64])], 2, { axis: int(-1), largest: int(1), sorted: int(1) })
    b.op('ReduceSum', [b.op('Cast', [b.op('Greater', [b.op('Relu', [top]), b.f32(0)])], { to: int(DataType.INT32) }), b.i64([-1])], { keepdims: int(0) }, 'out')
    b.output('out', DataType.INT32, ['n'])
  } else {
    // A scalar out of the product, so no [n, d_sae] copy leaves ORT.
    b.op('ReduceMax', [pre], { keepdims: int(0) }, 'out')
    b.output('out', DataType.FLOAT, [])
  }
  const { model, externalData, fed } = b.build('gemm').encode(weightsAs)
  const session = await InferenceSession.create(model, {
    externalData,
    executionProviders: ['cpu'],
    // As the app's sessions (providers.ts) and PyTorch here: every core.
    intraOpNumThreads: availableParallelism(),
    enableCpuMemArena: false,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  })
  const feeds: Record<string, OrtTensor> = { x: new OrtTensor('float32', x, [n, dIn]) }
  for (const name of fed) feeds[name] = name === 'W_enc' ? new OrtTensor('float32', bundle.sae.W_enc.data, [dIn, dSae]) : new OrtTensor('float32', bundle.sae.b_enc.data, [dSae])
  await session.run(feeds)
  return async () => void (await session.run(feeds))
}

const torchScript = `
import os, sys, time, torch
n, d_in, d_sae = map(int, sys.argv[1:4])
torch.set_num_threads(os.cpu_count())
torch.manual_seed(0)
x = torch.rand(n, d_in) - 0.5
w = torch.rand(d_in, d_sae) - 0.5
x @ w
ts = []
for _ in range(3):
    t0 = time.perf_counter(); x @ w; ts.append(time.perf_counter() - t0)
print(sorted(ts)[1])
`
/** PyTorch's product, warmed up: the median of three in one process (as tools/bench_torch.py times its chunks). */
function torchOnce(): number {
  const r = spawnSync('/usr/bin/python3', ['-c', torchScript, String(n), String(dIn), String(dSae)], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`PyTorch: ${r.stderr.trim().split('\n').at(-1)}`)
  return Number(r.stdout.trim()) * 1000
}

const runs = {
  'PyTorch x @ W_enc': async () => torchOnce(),
  'ORT MatMul, W_enc fed (the app)': await timed(await ortSession('inputs', false)),
  'ORT MatMul, W_enc initializer': await timed(await ortSession('initializers', false)),
  'ORT SAE tail (MatMul, b_enc, TopK, count)': await timed(await ortSession('inputs', true)),
}
async function timed(run: () => Promise<void>): Promise<() => Promise<number>> {
  return async () => {
    const t0 = performance.now()
    await run()
    return performance.now() - t0
  }
}

const times: Record<string, number[]> = Object.fromEntries(Object.keys(runs).map((k) => [k, []]))
for (let r = 0; r < rounds; r++) {
  // Reversed every other round (ABBA), so a load that rises or falls over the run weighs on all alike.
  const order = r % 2 === 0 ? Object.keys(runs) : Object.keys(runs).reverse()
  for (const k of order) times[k].push(await runs[k as keyof typeof runs]())
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const torchMs = median(times['PyTorch x @ W_enc'])
console.log(`${bundle.config.name}: the encoder's product [${n}, ${dIn}] × [${dIn}, ${dSae}] = ${gflop.toFixed(1)} GFLOP, medians of ${rounds} rounds; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`)
for (const [k, xs] of Object.entries(times)) {
  const ms = median(xs)
  console.log(`  ${k.padEnd(44)} ${ms.toFixed(0).padStart(6)} ms  ${(gflop / (ms / 1000)).toFixed(1).padStart(6)} GFLOP/s  ${(torchMs / ms).toFixed(2)}× PyTorch's`)
}
