// Small graphs for the trace code's heavy products: many vectors against the vocabulary (W_E, LN1 of
// W_E + W_pos[p], W_U) in one run, and a token block's hook values against a few vectors. Each is one
// MLAS GEMM instead of a JS loop over d_vocab × d_model per vector.
import { saePreActivations, type GraphSource } from './graphs'
import { DataType, GraphBuilder, float, int, ints, type BuiltGraph } from './onnx-builder'

/**
 * embed [k1, d], keys [k2, d], pos_row [d], unembed [k3, d] →
 *   embed_scores [k1, vocab]   = embed · W_Eᵀ
 *   key_scores   [k2, vocab]   = keys · LN1(W_E + pos_row)ᵀ   (LN1 of `layer`, as the model applies it)
 *   unembed_scores [k3, vocab] = unembed · W_U
 */
export function buildVocabGraph(src: GraphSource, layer: number): BuiltGraph {
  const cfg = src.config.model
  const b = new GraphBuilder()
  const w = (name: string): string => {
    const t = src.model.get(name)
    if (!t) throw new Error(`the bundle has no tensor ${name}`)
    return b.weight(name, t.dims, t.data)
  }
  const d = cfg.d_model
  const embed = b.input('embed', DataType.FLOAT, ['k1', d])
  const keys = b.input('keys', DataType.FLOAT, ['k2', d])
  const posRow = b.input('pos_row', DataType.FLOAT, [d])
  const unembed = b.input('unembed', DataType.FLOAT, ['k3', d])
  const W_E = w('embed.W_E')
  const gemmT = { transB: int(1), alpha: float(1) }
  b.op('Gemm', [embed, W_E], gemmT, 'embed_scores')

  const x = b.op('Add', [W_E, posRow])
  const mean = b.op('ReduceMean', [x], { axes: ints([-1]), keepdims: int(1) })
  const xc = b.op('Sub', [x, mean])
  const variance = b.op('ReduceMean', [b.op('Mul', [xc, xc])], { axes: ints([-1]), keepdims: int(1) })
  let keysIn = b.op('Div', [xc, b.op('Sqrt', [b.op('Add', [variance, b.f32(cfg.eps)])])])
  if (cfg.normalization_type === 'LN') keysIn = b.op('Add', [b.op('Mul', [keysIn, w(`blocks.${layer}.ln1.w`)]), w(`blocks.${layer}.ln1.b`)])
  b.op('Gemm', [keys, keysIn], gemmT, 'key_scores')
  b.op('MatMul', [unembed, w('unembed.W_U')], {}, 'unembed_scores')
  b.output('embed_scores', DataType.FLOAT, ['k1', cfg.d_vocab])
  b.output('key_scores', DataType.FLOAT, ['k2', cfg.d_vocab])
  b.output('unembed_scores', DataType.FLOAT, ['k3', cfg.d_vocab])
  return b.build('vocab_products')
}

/** values [n, w], vectors [k, w] → projections [n, k] = values · vectorsᵀ. */
export function buildProjectGraph(): BuiltGraph {
  const b = new GraphBuilder()
  const values = b.input('values', DataType.FLOAT, ['n', 'w'])
  const vectors = b.input('vectors', DataType.FLOAT, ['k', 'w'])
  b.op('Gemm', [values, vectors], { transB: int(1) }, 'projections')
  b.output('projections', DataType.FLOAT, ['n', 'k'])
  return b.build('project')
}

/**
 * values [n, d_in] (the SAE's hook), width [1] → top_values [n, width], top_indices [n, width] (int32): each
 * token's largest SAE pre-activations, descending, equal values lower feature id first (ONNX TopK).
 */
export function buildSaeTopGraph(src: GraphSource): BuiltGraph {
  const b = new GraphBuilder()
  const values = b.input('values', DataType.FLOAT, ['n', src.config.sae.d_in])
  const width = b.input('width', DataType.INT64, [1])
  const pre = saePreActivations(b, src, values)
  const [, indices64] = b.opN('TopK', [pre, width], 2, { axis: int(-1), largest: int(1), sorted: int(1) }, ['top_values', 'top_indices_i64'])
  b.op('Cast', [indices64], { to: int(DataType.INT32) }, 'top_indices')
  b.output('top_values', DataType.FLOAT, ['n', 'width'])
  b.output('top_indices', DataType.INT32, ['n', 'width'])
  return b.build('sae_top')
}
