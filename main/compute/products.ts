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
  // key · LN1(x)ᵀ for every token's x = W_E[t] + p, without LN1 of the whole [vocab, d] matrix (about ten
  // passes over it and as many vocab × d buffers per run: 75% of a gelu-1l trace's vocabulary products):
  //   key · LN1(x) = inv_t · (kw·W_E[t] + kw·p − mean_t · Σkw) + key·b,   kw = key ∘ w (w = 1, b = 0 for LNPre)
  // with mean_t = mean(W_E[t]) + mean(p), inv_t = 1/sqrt(E[x²] − mean_t² + eps) and
  // E[x²] = mean(W_E[t]²) + 2·W_E[t]·p/d + mean(p²): one GEMM and [k2, vocab]-sized arithmetic.
  // The embed rows, kw and p go against W_E in that one GEMM, [embed; kw; p] · W_Eᵀ, then each part is sliced
  // out: each row is a pass over W_E (vocab × d floats, 154 MB for GPT-2 small), and one pass serves them all.
  // (W_E·p as a MatMul of its own, a GEMV with W_E as its left operand, took longer than every other row
  // together: 266 ms of a GPT-2-small trace's vocabulary products on the loaded 2-core machine, against
  // 141 ms for the GEMM of 50 rows.)
  const mean = (x: string): string => b.op('ReduceMean', [x], { axes: ints([-1]), keepdims: int(1) })
  const stats = rowStats(src.model.get('embed.W_E')!.data, d)
  const ln = cfg.normalization_type === 'LN'
  const kw = ln ? b.op('Mul', [keys, w(`blocks.${layer}.ln1.w`)]) : keys
  const posAsRow = b.op('Reshape', [posRow, b.i64([1, d])])
  const all = b.op('Gemm', [b.op('Concat', [embed, kw, posAsRow], { axis: int(0) }), W_E], gemmT) // [k1 + k2 + 1, vocab]
  const k1 = b.op('Shape', [embed], { start: int(0), end: int(1) })
  const rowsAxis = b.i64([0])
  b.op('Slice', [all, b.i64([0]), k1, rowsAxis], {}, 'embed_scores')
  const kwE = b.op('Slice', [all, k1, b.i64([-1]), rowsAxis])
  const ePos = b.op('Div', [b.op('Slice', [all, b.i64([-1]), b.i64([2 ** 53 - 1]), rowsAxis]), b.f32(d / 2)]) // [1, vocab]: 2·W_E[t]·p/d
  const meanT = b.op('Add', [b.weight('embed.W_E.row_mean', [cfg.d_vocab], stats.mean), mean(posRow)])
  const meanSq = b.op('Add', [b.op('Add', [b.weight('embed.W_E.row_mean_sq', [cfg.d_vocab], stats.meanSq), ePos]), mean(b.op('Mul', [posRow, posRow]))])
  const inv = b.op('Reciprocal', [b.op('Sqrt', [b.op('Add', [b.op('Sub', [meanSq, b.op('Mul', [meanT, meanT])]), b.f32(cfg.eps)])])])
  const dD = b.f32(d)
  const kwPos = b.op('Mul', [mean(b.op('Mul', [kw, posRow])), dD])
  const kwSum = b.op('Mul', [mean(kw), dD])
  const centred = b.op('Sub', [b.op('Add', [kwE, kwPos]), b.op('Mul', [meanT, kwSum])])
  const scaled = b.op('Mul', [centred, inv])
  if (ln) b.op('Add', [scaled, b.op('Mul', [mean(b.op('Mul', [keys, w(`blocks.${layer}.ln1.b`)])), dD])], {}, 'key_scores')
  else b.op('Identity', [scaled], {}, 'key_scores')
  b.op('MatMul', [unembed, w('unembed.W_U')], {}, 'unembed_scores')
  b.output('embed_scores', DataType.FLOAT, ['k1', cfg.d_vocab])
  b.output('key_scores', DataType.FLOAT, ['k2', cfg.d_vocab])
  b.output('unembed_scores', DataType.FLOAT, ['k3', cfg.d_vocab])
  return b.build('vocab_products')
}

/** Each row's mean and mean square of a [rows, d] matrix (in float64, then stored as float32); kept per matrix. */
const statsOf = new WeakMap<Float32Array, { mean: Float32Array; meanSq: Float32Array }>()
function rowStats(m: Float32Array, d: number): { mean: Float32Array; meanSq: Float32Array } {
  let s = statsOf.get(m)
  if (!s) {
    const rows = m.length / d
    s = { mean: new Float32Array(rows), meanSq: new Float32Array(rows) }
    for (let r = 0; r < rows; r++) {
      let sum = 0
      let sq = 0
      for (let i = r * d; i < (r + 1) * d; i++) {
        sum += m[i]
        sq += m[i] * m[i]
      }
      s.mean[r] = sum / d
      s.meanSq[r] = sq / d
    }
    statsOf.set(m, s)
  }
  return s
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
