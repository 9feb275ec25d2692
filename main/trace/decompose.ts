// The decomposition of vec·R(t), R the residual stream where the trace linearizes (linearize.ts), over every
// component before it (issue 5 §4; issue 12 §4 for n layers), an exact identity of the forward pass:
//   vec·R(t) = vec·W_E[tok_t] + vec·W_pos[t]
//            + Σ_{attention layers l before R} ( Σ_h Σ_{s≤t} pattern_l[h,t,s] · (v_l,h(s) · W_O_l[h] · vec) + vec·b_O_l )
//            + Σ_{MLPs l before R} vec·mlp_out_l(t)
// where v_l,h(s) = LN1_l(resid_pre_l(s))·W_V[h] + b_V[h] is hook_v, at its true value (LN1's scale is what it
// was: nothing is approximated). Each earlier layer's terms are its direct effect on R: the path of its
// output through later layers is not expanded (circuit-tracer's direct effects). heads_ov is the same
// without the pattern weight (what each source would add if head h attended to it fully), as the seed plotted.
// An attention hook (attn.hook_z, hook_attn_out) decomposes its own value along W_enc[:,f] the same way, with
// each head's read direction (linearize.ts attentionReadDirections) in place of W_O[h]·vec.
import { dot, matVec, type Vec } from './math'
import type { ModelWeights } from './weights'
import type { AttentionTermsJson, DecompositionJson } from '../../common/contract'

/** vec·R at the point, term by term; the contract's shape, so IPC carries it unchanged. */
export type Decomposition = DecompositionJson

/** One attention layer's values in the point's sequence. */
export interface AttentionLayerValues {
  layer: number
  /** blocks.l.attn.hook_v, [seqLen, n_heads, d_head] (b_V included). */
  hookV: Float32Array
  /** blocks.l.attn.hook_pattern, [n_heads, seqLen, seqLen]. */
  pattern: Float32Array
}

export interface DecompositionInput {
  model: ModelWeights
  vec: ArrayLike<number>
  token: number
  pos: number
  seqLen: number
  /** R at the point. */
  resid: ArrayLike<number>
  /** Every attention layer before R, first to last. */
  attn: AttentionLayerValues[]
  /** hook_mlp_out at the point of every MLP before R, first to last. */
  mlpOut: ArrayLike<number>[]
}

/** W_O[h] · vec for every head: [n_heads][d_head], what a unit of head h's z adds along vec. */
export function headWriteDirections(model: ModelWeights, layer: number, vec: ArrayLike<number>): Vec[] {
  const { n_heads: H, d_head: dh, d_model: d } = model.cfg
  const { W_O } = model.attn(layer)
  return Array.from({ length: H }, (_, h) => matVec(W_O, vec, dh, h * dh * d))
}

/** One layer's heads × sources along read directions [h][d_head]: pattern·(hook_v·read), and OV only. */
export function headTerms(model: ModelWeights, values: AttentionLayerValues, reads: Vec[], t: number, seqLen: number, b_O: number): AttentionTermsJson & { sum: number } {
  const { n_heads: H, d_head: dh } = model.cfg
  const heads: number[][] = []
  const headsOv: number[][] = []
  let sum = b_O
  for (let h = 0; h < H; h++) {
    const withPattern: number[] = []
    const ov: number[] = []
    for (let s = 0; s <= t; s++) {
      const x = dot(values.hookV, reads[h], (s * H + h) * dh, 0, dh)
      const p = values.pattern[(h * seqLen + t) * seqLen + s]
      ov.push(x)
      withPattern.push(p * x)
      sum += p * x
    }
    heads.push(withPattern)
    headsOv.push(ov)
  }
  return { layer: values.layer, heads, headsOv, b_O, sum }
}

const strip = ({ sum: _, ...terms }: AttentionTermsJson & { sum: number }): AttentionTermsJson => terms

export function decomposeAt(inp: DecompositionInput): Decomposition {
  const { model, vec, token, pos: t, seqLen } = inp
  const d = model.cfg.d_model
  const attn = inp.attn.map((a) => headTerms(model, a, headWriteDirections(model, a.layer, vec), t, seqLen, dot(model.attn(a.layer).b_O, vec)))
  const embed = dot(model.W_E, vec, token * d, 0, d)
  // Rotary models have no positional term in the residual stream (their positions act inside attention).
  const pos = model.cfg.positional_embedding_type === 'rotary' ? null : dot(model.W_pos, vec, t * d, 0, d)
  const mlpOut = inp.mlpOut.map((x) => dot(x, vec))
  const sumOfTerms = embed + (pos ?? 0) + attn.reduce((a, x) => a + x.sum, 0) + mlpOut.reduce((a, b) => a + b, 0)
  const total = dot(inp.resid, vec)
  return { embed, pos, attn: attn.map(strip), mlpOut, total, sumOfTerms, residual: total - sumOfTerms }
}

/**
 * An attention hook's value at the point along W_enc[:,f], over its layer's heads × sources (and b_O·W_enc[:,f]
 * for hook_attn_out): exact, z being Σ_s pattern·hook_v. `reads` from attentionReadDirections.
 */
export function decomposeAttentionHook(model: ModelWeights, hook: string, values: AttentionLayerValues, reads: Vec[], e: ArrayLike<number>, hookValue: ArrayLike<number>, t: number, seqLen: number): Decomposition {
  const b_O = hook === 'hook_attn_out' ? dot(model.attn(values.layer).b_O, e) : 0
  const terms = headTerms(model, values, reads, t, seqLen, b_O)
  const total = dot(hookValue, e)
  return { embed: null, pos: null, attn: [strip(terms)], mlpOut: [], total, sumOfTerms: terms.sum, residual: total - terms.sum }
}

/** The default source position and head for the circuit tables: the largest Σ|term| of the last attention layer. */
export function strongestSourceAndHead(dec: Decomposition): { sourcePos: number; head: number } {
  const heads = dec.attn[dec.attn.length - 1]?.heads ?? []
  const nSrc = heads[0]?.length ?? 0
  const bySource = new Float64Array(nSrc)
  let head = 0
  let headBest = -1
  heads.forEach((row, h) => {
    let s = 0
    row.forEach((x, j) => {
      s += Math.abs(x)
      bySource[j] += Math.abs(x)
    })
    if (s > headBest) [head, headBest] = [h, s]
  })
  let sourcePos = 0
  for (let j = 1; j < nSrc; j++) if (bySource[j] > bySource[sourcePos]) sourcePos = j
  return { sourcePos, head }
}
