// Which row of a point's batched vocabulary products holds which table. Every table of a trace's point part
// is one d_model vector against the whole vocabulary, and the engine computes them all as three matrix
// products (TraceCompute.vocabProducts), one row per vector:
//   embed  W_E · x                   v, u; then W_V[h]W_O[h]·vec (v's, then u's); then the seed's
//                                    W_Q[h]W_K[h]ᵀ·vec (v's, then u's)
//   keys   LN1(W_E + W_pos[p]) · x   W_V[h]W_O[h]·vec (v's, then u's); then the head's QK key
//   unembed x · W_U                   the logit-effect direction, when the hook has one
// The per-head rows are the chosen head's only (the trace's `head`): each row is a pass over the
// vocabulary, and GPT-2 small's twelve heads made 48 of its 51 rows; another head's tables come with a
// trace.point for that head.
// Where u is v (no LayerNorm between R and the SAE: a residual hook), the two conventions share their rows:
// every table of u is v's, and the products have half the rows.
// The layout stacks the vectors and names the rows, so nothing else computes a row index.
import type { HeadVectors, QkKeyVector } from './circuits'
import type { Convention } from './types'

const CONVENTIONS = ['v', 'u'] as const
const index: Record<Convention, number> = { v: 0, u: 1 }

/** One convention's vectors: the direction itself and the chosen head's circuit vectors. */
export interface ConventionVectors {
  vector: Float32Array
  head: HeadVectors
}

export class PointRows {
  /** Conventions with rows of their own: 1 when u's rows are v's. */
  private readonly conventions: number

  /** `uIsV`: u equals v, so u's tables are v's (its rows are not stacked again). */
  constructor(readonly uIsV = false) {
    this.conventions = uIsV ? 1 : 2
  }

  private at(c: Convention): number {
    return this.uIsV ? 0 : index[c]
  }

  /** embed: W_E · the convention's vector (its token scores). */
  tokenScores(c: Convention): number {
    return this.at(c)
  }

  /** embed: W_E · W_V[h] W_O[h] vec (the seed's OV table). */
  ovTokens(c: Convention): number {
    return this.conventions + this.at(c)
  }

  /** embed: W_E · W_Q[h] W_K[h]ᵀ vec (the seed's QK table). */
  qkSeed(c: Convention): number {
    return 2 * this.conventions + this.at(c)
  }

  /** keys: LN1(W_E + W_pos[p]) · W_V[h] W_O[h] vec (the exact LN+OV table, before its bias). */
  lnOv(c: Convention): number {
    return this.at(c)
  }

  /** keys: LN1(W_E + W_pos[p]) · the head's key vector (the exact QK table, before its bias). */
  qk(): number {
    return this.conventions
  }

  get embedRows(): number {
    return 3 * this.conventions
  }

  get keyRows(): number {
    return this.conventions + 1
  }

  /** The embed and keys inputs: each vector at its row of a row-major [rows, d] matrix (u's only when it has rows of its own). */
  stack(d: number, vectors: Record<Convention, ConventionVectors>, qkKey: QkKeyVector): { embed: Float32Array; keys: Float32Array } {
    const embed = new Float32Array(this.embedRows * d)
    const keys = new Float32Array(this.keyRows * d)
    for (const c of CONVENTIONS.slice(0, this.conventions)) {
      const hv = vectors[c].head
      embed.set(vectors[c].vector, this.tokenScores(c) * d)
      embed.set(hv.ov, this.ovTokens(c) * d)
      embed.set(hv.qkSeed, this.qkSeed(c) * d)
      keys.set(hv.ov, this.lnOv(c) * d)
    }
    keys.set(qkKey.key, this.qk() * d)
    return { embed, keys }
  }
}
