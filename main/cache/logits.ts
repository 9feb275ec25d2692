// A feature's direct effect on the logits: its decoder direction carried to the residual stream (through
// the hook layer's W_out for an MLP hook_post SAE) and read out by W_U. Computed per feature on demand
// (~25M multiply-adds for the demo, tens of ms): precomputing all of them would be a d_sae × d_vocab
// product far too slow for plain TypeScript.
import type { Tensor } from '../compute/api'

/** Top and bottom logit effects kept per feature. */
export const LOGIT_K = 10

export interface LogitWeights {
  /** W_dec [d_sae, d_in] */
  W_dec: Tensor
  /** The hook layer's mlp.W_out [d_mlp, d_model], when the SAE reads mlp.hook_post; else null. */
  W_out: Tensor | null
  /** unembed.W_U [d_model, d_vocab] */
  W_U: Tensor
}

/** Which path a hook's decoder direction takes to the residual stream; null when it has no linear one. */
export function logitPath(hook: string): 'mlp_post' | 'resid' | null {
  if (hook === 'mlp.hook_post') return 'mlp_post'
  if (['hook_resid_pre', 'hook_resid_mid', 'hook_resid_post', 'hook_mlp_out', 'hook_attn_out'].includes(hook)) return 'resid'
  return null
}

/** (W_dec[f] · W_out · W_U), length d_vocab; float64 accumulation over float32 weights. */
export function logitEffects(w: LogitWeights, feature: number): Float64Array {
  const dIn = w.W_dec.dims[1]
  const dir = w.W_dec.data.subarray(feature * dIn, (feature + 1) * dIn)
  let resid: Float64Array
  if (w.W_out) {
    const dModel = w.W_out.dims[1]
    resid = new Float64Array(dModel)
    for (let i = 0; i < dIn; i++) {
      const a = dir[i]
      if (a === 0) continue
      const row = w.W_out.data.subarray(i * dModel, (i + 1) * dModel)
      for (let j = 0; j < dModel; j++) resid[j] += a * row[j]
    }
  } else {
    resid = Float64Array.from(dir)
  }
  const dVocab = w.W_U.dims[1]
  const out = new Float64Array(dVocab)
  for (let i = 0; i < resid.length; i++) {
    const a = resid[i]
    const row = w.W_U.data.subarray(i * dVocab, (i + 1) * dVocab)
    for (let j = 0; j < dVocab; j++) out[j] += a * row[j]
  }
  return out
}

/** Indices of the k largest (or smallest) entries, ordered, ties to the smaller index. */
export function extremes(values: Float64Array, k: number, largest: boolean): number[] {
  const sign = largest ? 1 : -1
  const best: number[] = []
  for (let i = 0; i < values.length; i++) {
    const v = sign * values[i]
    if (best.length === k && v <= sign * values[best[k - 1]]) continue
    let at = best.length
    while (at > 0 && sign * values[best[at - 1]] < v) at--
    best.splice(at, 0, i)
    if (best.length > k) best.pop()
  }
  return best
}
