// A feature's direct effect on the logits starts from its decoder direction carried to the residual
// stream: W_dec[f] itself for an SAE on the residual stream (or on an MLP's or attention's output),
// W_dec[f] · W_out for one on mlp.hook_post, and W_dec[f] · W_O (its heads concatenated, [n_heads·d_head,
// d_model]) for one on attn.hook_z. A trace reads it out with W_U on the ONNX session (one row of
// the point's vocabulary products); the cache does the same for every feature at build time, or for one
// on demand (main/cache/logits.ts). mlp.hook_pre has no linear path: GELU stands in the way.
import { row } from './math'
import type { ModelWeights, SaeView } from './weights'

/** Which path a hook's decoder direction takes to the residual stream; null when it has no linear one. */
export function logitPath(hook: string): 'mlp_post' | 'z' | 'resid' | null {
  if (hook === 'mlp.hook_post') return 'mlp_post'
  if (hook === 'attn.hook_z') return 'z'
  if (['hook_resid_pre', 'hook_resid_mid', 'hook_resid_post', 'hook_mlp_out', 'hook_attn_out'].includes(hook)) return 'resid'
  return null
}

/**
 * A decoder row in the residual stream: dec · W_out for W_out [d_in, d_model] (the 'mlp_post' path), or
 * dec itself when W_out is null (the 'resid' path). Float64 accumulation over float32 weights.
 */
export function residDirection(dec: ArrayLike<number>, W_out: Float32Array | null): Float64Array {
  if (!W_out) return Float64Array.from(dec)
  const dModel = W_out.length / dec.length
  const out = new Float64Array(dModel)
  for (let i = 0; i < dec.length; i++) {
    const a = dec[i]
    if (a === 0) continue
    const off = i * dModel
    for (let j = 0; j < dModel; j++) out[j] += a * W_out[off + j]
  }
  return out
}

/** The residual-stream direction feature f's decoder writes (null for a hook without a linear path). */
export function logitEffectDirection(model: ModelWeights, sae: SaeView, layer: number, hook: string, feature: number): Float32Array | null {
  const path = logitPath(hook)
  if (!path) return null
  const W_out = path === 'mlp_post' ? model.mlp(layer).W_out : path === 'z' ? model.attn(layer).W_O : null
  return Float32Array.from(residDirection(row(sae.W_dec, feature, sae.dIn), W_out))
}
