// Every feature's top and bottom logit effects, computed once by the build job with ONNX Runtime:
// the full W_dec · W_out · W_U product is ~400 GMAC for a 16k-feature SAE on a 48k vocabulary, minutes
// in plain TypeScript but seconds in ORT's GEMM. Queries then read 20 numbers instead of doing a
// 25M-multiply-add product on main's thread (logits.ts stays as the reference and the fallback).
import { Tensor as OrtTensor } from 'onnxruntime-node'
import { DataType, GraphBuilder, int, type BuiltGraph } from '../compute/onnx-builder'
import { candidateProviders, createSession } from '../compute/providers'
import { LOGIT_K, type LogitWeights } from './logits'

export interface LogitTable {
  k: number
  /** [d_sae, k] each: the k largest effects (descending) and the k smallest (ascending). */
  topIds: Uint32Array
  topVals: Float32Array
  bottomIds: Uint32Array
  bottomVals: Float32Array
}

/** Features per ORT run; bounds the [block, d_vocab] logits the graph holds (~100 MB at 48k vocab). */
function blockSize(dVocab: number): number {
  return Math.max(1, Math.floor((24 * 1024 * 1024) / dVocab))
}

function graph(w: LogitWeights, k: number): BuiltGraph {
  const b = new GraphBuilder()
  const dIn = w.W_dec.dims[1]
  const dVocab = w.W_U.dims[1]
  const dec = b.input('W_dec_block', DataType.FLOAT, ['n', dIn])
  const resid = w.W_out ? b.op('MatMul', [dec, b.weight('W_out', w.W_out.dims, w.W_out.data)]) : dec
  const logits = b.op('MatMul', [resid, b.weight('W_U', w.W_U.dims, w.W_U.data)])
  const kk = b.i64([Math.min(k, dVocab)])
  b.opN('TopK', [logits, kk], 2, { axis: int(-1), largest: int(1), sorted: int(1) }, ['top_values', 'top_indices'])
  b.opN('TopK', [logits, kk], 2, { axis: int(-1), largest: int(0), sorted: int(1) }, ['bottom_values', 'bottom_indices'])
  for (const name of ['top_values', 'bottom_values']) b.output(name, DataType.FLOAT, ['n', Math.min(k, dVocab)])
  for (const name of ['top_indices', 'bottom_indices']) b.output(name, DataType.INT64, ['n', Math.min(k, dVocab)])
  return b.build('logit_effects')
}

export async function computeLogitTable(w: LogitWeights, k = LOGIT_K): Promise<LogitTable> {
  const [dSae, dIn] = w.W_dec.dims
  const kk = Math.min(k, w.W_U.dims[1])
  const { session } = await createSession(graph(w, k), candidateProviders())
  const table: LogitTable = {
    k: kk,
    topIds: new Uint32Array(dSae * kk),
    topVals: new Float32Array(dSae * kk),
    bottomIds: new Uint32Array(dSae * kk),
    bottomVals: new Float32Array(dSae * kk),
  }
  try {
    const block = blockSize(w.W_U.dims[1])
    for (let f0 = 0; f0 < dSae; f0 += block) {
      const f1 = Math.min(dSae, f0 + block)
      const input = new OrtTensor('float32', w.W_dec.data.subarray(f0 * dIn, f1 * dIn), [f1 - f0, dIn])
      const out = await session.run({ W_dec_block: input })
      table.topVals.set(out.top_values.data as Float32Array, f0 * kk)
      table.bottomVals.set(out.bottom_values.data as Float32Array, f0 * kk)
      const ti = out.top_indices.data as BigInt64Array
      const bi = out.bottom_indices.data as BigInt64Array
      for (let i = 0; i < ti.length; i++) {
        table.topIds[f0 * kk + i] = Number(ti[i])
        table.bottomIds[f0 * kk + i] = Number(bi[i])
      }
    }
  } finally {
    await session.release()
  }
  return table
}
