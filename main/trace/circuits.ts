// Per-head circuit vectors (issue 5 §5). Each vocabulary table is W_E (or LN1(W_E + W_pos[p])) times one
// d_model vector, so this module only builds the vectors; the products run batched on the ONNX session
// (TraceCompute.vocabProducts) and come back one row per vector.
//   OV tokens (seed's OV table):  W_E · (W_V[h] W_O[h] vec)
//   LN+OV (exact):                LN1(W_E[x] + W_pos[p]) · W_V[h] W_O[h] vec + b_V[h] · W_O[h] vec
//   QK (exact):                   (LN1(W_E[x] + W_pos[p]) W_K[h] + b_K[h]) · q_h / attn_scale (the layer's divisor:
//                                 sqrt(d_head), or bundle.json's attn_scales[layer]),
//                                 q_h = LN1(resid_pre(t)) W_Q[h] + b_Q[h] (the point's actual query)
//   QK (seed definition):         W_E · W_Q[h] W_K[h]ᵀ vec  (kept for comparison, labelled as such)
// Rotary models (GPT-NeoX) have no W_pos and rotate queries and keys by their positions, so a score depends on
// both: (R_t q)·(R_s k) = (R_{t−s} q)·k. The exact QK table at the point's query position t and the source
// position s uses the query rotated by t − s; qkPair rotates each side by its own position.
import { attnScale } from '../bundle/schema'
import { headWriteDirections } from './decompose'
import { dot, layerNorm, matVec, vecMat, type Vec } from './math'
import type { ModelWeights } from './weights'
import type { QkGridJson } from '../../common/contract'

export interface HeadVectors {
  /** W_V[h] · W_O[h] · vec, [d_model]: LN+OV and OV-token tables are scores against it. */
  ov: Vec
  /** b_V[h] · W_O[h] · vec: the constant that LN+OV adds to every token. */
  ovBias: number
  /** W_Q[h] · W_K[h]ᵀ · vec: the seed's QK table is W_E times it. */
  qkSeed: Vec
}

/**
 * One head's circuit vectors along vec; `writes` is what a unit of each head's z adds to the feature (W_O[h]·vec
 * by default; an attention hook's read directions for a feature on attn.hook_z or hook_attn_out).
 */
export function headVectors(model: ModelWeights, layer: number, vec: ArrayLike<number>, head: number, writes: Vec[] = headWriteDirections(model, layer, vec)): HeadVectors {
  const { d_head: dh, d_model: d } = model.cfg
  const a = model.attn(layer)
  const wo = writes[head]
  const kT = vecMat(vec, a.W_K, dh, head * d * dh) // W_K[h]ᵀ vec
  return { ov: matVec(a.W_V, wo, d, head * d * dh), ovBias: dot(a.b_V, wo, head * dh, 0, dh), qkSeed: matVec(a.W_Q, kT, d, head * d * dh) }
}

/**
 * GPT-NeoX's rotary embedding of one head's query or key x [d_head] at position p (any integer; R_{−p} undoes
 * R_p): for i < R/2 (R = rotary_dim) the pair (x_i, x_{i+R/2}) turns by p·rotary_base^(−i/(R/2)); the rest is
 * unchanged. A model with learned positions: x as it is.
 */
export function rotary(cfg: ModelWeights['cfg'], x: Vec, p: number): Vec {
  if (cfg.positional_embedding_type !== 'rotary' || p === 0) return x
  const half = (cfg.rotary_dim ?? cfg.d_head) / 2
  const base = cfg.rotary_base ?? 10000
  const out = Float32Array.from(x)
  for (let i = 0; i < half; i++) {
    const angle = p * Math.pow(base, -i / half)
    const [c, s, a, b] = [Math.cos(angle), Math.sin(angle), x[i], x[i + half]]
    out[i] = a * c - b * s
    out[i + half] = b * c + a * s
  }
  return out
}

/**
 * The query of every head from a residual-stream vector: LN1(x) W_Q[h] + b_Q[h], [n_heads][d_head], rotated by
 * `rotateBy` in a rotary model (the query position minus the key position the scores are for).
 */
export function queries(model: ModelWeights, layer: number, residPre: ArrayLike<number>, rotateBy = 0): Vec[] {
  const { n_heads: H, d_head: dh, d_model: d, eps } = model.cfg
  const a = model.attn(layer)
  const x = layerNorm(residPre, eps, a.ln1w, a.ln1b).out
  return Array.from({ length: H }, (_, h) => {
    const q = vecMat(x, a.W_Q, dh, h * d * dh)
    for (let e = 0; e < dh; e++) q[e] += a.b_Q[h * dh + e]
    return rotary(model.cfg, q, rotateBy)
  })
}

export interface QkKeyVector {
  /** W_K[h] · q_h / attn_scale: the exact QK table is LN1(W_E + W_pos[p]) times it ... */
  key: Vec
  /** ... plus b_K[h] · q_h / attn_scale. */
  bias: number
}

/** Head h's key vector for its query q_h (one of `queries`). */
export function qkKeyVector(model: ModelWeights, layer: number, head: number, qh: Vec): QkKeyVector {
  const { d_head: dh, d_model: d } = model.cfg
  const a = model.attn(layer)
  const scale = 1 / attnScale(model.cfg, layer)
  const key = matVec(a.W_K, qh, d, head * d * dh)
  for (let i = 0; i < d; i++) key[i] *= scale
  return { key, bias: dot(a.b_K, qh, head * dh, 0, dh) * scale }
}

/** One side of qkPair: head h's query (W_Q, b_Q) or key (W_K, b_K) of a token at a position, from LN1(W_E + W_pos). */
function qkSide(model: ModelWeights, layer: number, head: number, side: 'query' | 'key', tok: number, pos: number): Vec {
  const { d_head: dh, d_model: d, eps } = model.cfg
  const a = model.attn(layer)
  const [W, bias] = side === 'query' ? [a.W_Q, a.b_Q] : [a.W_K, a.b_K]
  const x = new Float32Array(d)
  for (let i = 0; i < d; i++) x[i] = model.W_E[tok * d + i] + model.W_pos[pos * d + i]
  const y = vecMat(layerNorm(x, eps, a.ln1w, a.ln1b).out, W, dh, head * d * dh)
  for (let e = 0; e < dh; e++) y[e] += bias[head * dh + e]
  return rotary(model.cfg, y, pos)
}

/** The seed's do_single_token_qk with LN1, W_pos and biases: one query token/pos against one key token/pos. */
export function qkPair(model: ModelWeights, layer: number, head: number, qTok: number, qPos: number, kTok: number, kPos: number): number {
  return dot(qkSide(model, layer, head, 'query', qTok, qPos), qkSide(model, layer, head, 'key', kTok, kPos)) / attnScale(model.cfg, layer)
}

export type QkGrid = QkGridJson

/** qkPair of the query (token, pos) against each chosen token at positions pos−1 … pos−5 (the query computed once). */
export function qkGrid(model: ModelWeights, layer: number, head: number, queryToken: number, queryPos: number, tokens: number[], maxBack = 5): QkGrid {
  const rel = Array.from({ length: maxBack }, (_, i) => i + 1)
  const q = qkSide(model, layer, head, 'query', queryToken, queryPos)
  const scale = attnScale(model.cfg, layer)
  return {
    head,
    queryToken,
    queryPos,
    tokens,
    relativePositions: rel.map((r) => -r),
    scores: tokens.map((x) => rel.map((r) => (queryPos - r >= 0 ? dot(q, qkSide(model, layer, head, 'key', x, queryPos - r)) / scale : null))),
  }
}
