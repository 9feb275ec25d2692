// The attention decomposition of vec·resid_mid(t) at layer L (issue 5 §4), an exact identity:
//   vec·resid_mid(t) = vec·W_E[tok_t] + vec·W_pos[t] + Σ_{l<L} vec·(attn_out_l(t) + mlp_out_l(t))
//                    + Σ_h Σ_{s≤t} pattern[h,t,s] · (v_h(s) · W_O[h] · vec) + vec·b_O
// where v_h(s) = LN1(resid_pre(s))·W_V[h] + b_V[h] is hook_v. heads_ov is the same without the pattern
// weight (what each source would add if head h attended to it fully), as the seed plotted.
import { dot, matVec, type Vec } from './math'
import type { ModelWeights } from './weights'
import type { DecompositionJson } from '../../common/contract'

/** vec·resid_mid at the point, term by term; the contract's shape, so IPC carries it unchanged. */
export type Decomposition = DecompositionJson

export interface DecompositionInput {
  model: ModelWeights
  layer: number
  vec: ArrayLike<number>
  token: number
  pos: number
  /** blocks.L.attn.hook_v of the point's sequence, [seqLen, n_heads, d_head] (b_V included). */
  hookV: Float32Array
  /** blocks.L.attn.hook_pattern of the point's sequence, [n_heads, seqLen, seqLen]. */
  pattern: Float32Array
  seqLen: number
  /** blocks.L.hook_resid_mid at the point. */
  residMid: ArrayLike<number>
  /** blocks.l.hook_attn_out / hook_mlp_out at the point for l < L. */
  earlierAttnOut: ArrayLike<number>[]
  earlierMlpOut: ArrayLike<number>[]
}

/** W_O[h] · vec for every head: [n_heads][d_head], what a unit of head h's z adds along vec. */
export function headWriteDirections(model: ModelWeights, layer: number, vec: ArrayLike<number>): Vec[] {
  const { n_heads: H, d_head: dh, d_model: d } = model.cfg
  const { W_O } = model.attn(layer)
  return Array.from({ length: H }, (_, h) => matVec(W_O, vec, dh, h * dh * d))
}

export function decomposeAt(inp: DecompositionInput): Decomposition {
  const { model, layer, vec, token, pos: t, hookV, pattern, seqLen } = inp
  const { n_heads: H, d_head: dh, d_model: d } = model.cfg
  const wo = headWriteDirections(model, layer, vec)
  const heads: number[][] = []
  const headsOv: number[][] = []
  let headSum = 0
  for (let h = 0; h < H; h++) {
    const withPattern: number[] = []
    const ov: number[] = []
    for (let s = 0; s <= t; s++) {
      const x = dot(hookV, wo[h], (s * H + h) * dh, 0, dh)
      const p = pattern[(h * seqLen + t) * seqLen + s]
      ov.push(x)
      withPattern.push(p * x)
      headSum += p * x
    }
    heads.push(withPattern)
    headsOv.push(ov)
  }
  const embed = dot(model.W_E, vec, token * d, 0, d)
  const pos = dot(model.W_pos, vec, t * d, 0, d)
  const b_O = dot(model.attn(layer).b_O, vec)
  const earlierAttnOut = inp.earlierAttnOut.map((x) => dot(x, vec))
  const earlierMlpOut = inp.earlierMlpOut.map((x) => dot(x, vec))
  const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0)
  const sumOfTerms = embed + pos + b_O + sum(earlierAttnOut) + sum(earlierMlpOut) + headSum
  const total = dot(inp.residMid, vec)
  return { embed, pos, b_O, earlierAttnOut, earlierMlpOut, heads, headsOv, total, sumOfTerms, residual: total - sumOfTerms }
}

/** The default source position and head for the circuit tables: the largest Σ|term| over heads / sources. */
export function strongestSourceAndHead(dec: Decomposition): { sourcePos: number; head: number } {
  const nSrc = dec.heads[0]?.length ?? 0
  const bySource = new Float64Array(nSrc)
  let head = 0
  let headBest = -1
  dec.heads.forEach((row, h) => {
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
