// A feature's direct effect on the logits: its decoder direction carried to the residual stream (through
// the hook layer's W_out for an MLP hook_post SAE) and read out by W_U. Computed per feature on demand
// (~25M multiply-adds for the demo, tens of ms; ~26M at gelu-1l's shape): the reference for the build's
// table of all of them (logit-table.ts, ONNX Runtime), and what a feature view shows until that table is
// stored (logit-step.ts). Which hooks have such a path: main/trace/logit-effect.ts.
import type { LogitEffect } from '../../common/contract'
import { tokenText } from '../../common/text'
import type { Tensor } from '../compute/api'
import { residDirection } from '../trace/logit-effect'
import { row, topIndices } from '../trace/math'

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

/** (W_dec[f] · W_out · W_U), length d_vocab; float64 accumulation over float32 weights. */
export function logitEffects(w: LogitWeights, feature: number): Float64Array {
  const resid = residDirection(row(w.W_dec.data, feature, w.W_dec.dims[1]), w.W_out?.data ?? null)
  const dVocab = w.W_U.dims[1]
  const out = new Float64Array(dVocab)
  for (let i = 0; i < resid.length; i++) {
    const a = resid[i]
    const W_Ui = row(w.W_U.data, i, dVocab)
    for (let j = 0; j < dVocab; j++) out[j] += a * W_Ui[j]
  }
  return out
}

/** A feature's LOGIT_K largest and smallest effects, as a feature view shows them (`display`: token texts). */
export function topLogitEffects(w: LogitWeights, feature: number, display: readonly string[]): { top: LogitEffect[]; bottom: LogitEffect[] } {
  const effects = logitEffects(w, feature)
  const pick = (i: number): LogitEffect => ({ tokenId: i, token: tokenText(display, i), effect: effects[i] })
  return { top: topIndices(effects, LOGIT_K).map(pick), bottom: topIndices(effects, LOGIT_K, false).map(pick) }
}
