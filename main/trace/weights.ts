// The bundle's weights as the trace functions take them: plain row-major Float32Arrays with
// TransformerLens names and layouts (W_Q/W_K/W_V [h, d, dh], W_O [h, dh, d], W_in [d, d_mlp], ...).
import type { Bundle } from '../bundle'
import { checkFeatureId } from '../bundle/feature-id'
import type { ModelConfig } from '../bundle/schema'

export interface AttentionWeights {
  /** LN1's weight and bias; absent for LNPre. */
  ln1w?: Float32Array
  ln1b?: Float32Array
  W_Q: Float32Array
  b_Q: Float32Array
  W_K: Float32Array
  b_K: Float32Array
  W_V: Float32Array
  b_V: Float32Array
  W_O: Float32Array
  b_O: Float32Array
}

export interface MlpWeights {
  ln2w?: Float32Array
  ln2b?: Float32Array
  W_in: Float32Array
  b_in: Float32Array
  W_out: Float32Array
  b_out: Float32Array
}

export interface ModelWeights {
  cfg: ModelConfig
  W_E: Float32Array
  W_pos: Float32Array
  /** [d_model, d_vocab] */
  W_U: Float32Array
  attn(layer: number): AttentionWeights
  mlp(layer: number): MlpWeights
}

/** How the SAE turns its pre-activations into activations (bundle.json's sae.kind; see gate.ts). */
export type SaeGate = { kind: 'relu' } | { kind: 'jumprelu'; threshold: Float32Array } | { kind: 'topk'; k: number }

export interface SaeView {
  W_enc: Float32Array
  b_enc: Float32Array
  W_dec: Float32Array
  b_dec: Float32Array
  /** What the encoder subtracts from the hook value: b_dec, or zeros where apply_b_dec_to_input is false. */
  inputBias: Float32Array
  gate: SaeGate
  dIn: number
  dSae: number
}

export function modelWeights(bundle: Pick<Bundle, 'config' | 'model'>): ModelWeights {
  const m = bundle.model
  const get = (name: string): Float32Array => {
    const t = m.get(name)
    if (!t) throw new Error(`the bundle has no tensor ${name}`)
    return t.data
  }
  const opt = (name: string): Float32Array | undefined => m.get(name)?.data
  return {
    cfg: bundle.config.model,
    W_E: get('embed.W_E'),
    // Rotary models add no learned position to the residual stream: zeros are their exact W_pos.
    W_pos: opt('pos_embed.W_pos') ?? new Float32Array(bundle.config.model.n_ctx * bundle.config.model.d_model),
    W_U: get('unembed.W_U'),
    attn: (l) => {
      const p = `blocks.${l}.`
      return {
        ln1w: opt(`${p}ln1.w`),
        ln1b: opt(`${p}ln1.b`),
        W_Q: get(`${p}attn.W_Q`),
        b_Q: get(`${p}attn.b_Q`),
        W_K: get(`${p}attn.W_K`),
        b_K: get(`${p}attn.b_K`),
        W_V: get(`${p}attn.W_V`),
        b_V: get(`${p}attn.b_V`),
        W_O: get(`${p}attn.W_O`),
        b_O: get(`${p}attn.b_O`),
      }
    },
    mlp: (l) => {
      const p = `blocks.${l}.`
      return { ln2w: opt(`${p}ln2.w`), ln2b: opt(`${p}ln2.b`), W_in: get(`${p}mlp.W_in`), b_in: get(`${p}mlp.b_in`), W_out: get(`${p}mlp.W_out`), b_out: get(`${p}mlp.b_out`) }
    },
  }
}

export function saeView(bundle: Pick<Bundle, 'config' | 'sae'>): SaeView {
  const { sae, config } = bundle
  const c = config.sae
  let gate: SaeGate
  if (c.kind === 'jumprelu') {
    if (!sae.threshold) throw new Error('the JumpReLU SAE has no threshold tensor')
    gate = { kind: 'jumprelu', threshold: sae.threshold.data }
  } else gate = c.kind === 'topk' ? { kind: 'topk', k: c.k } : { kind: 'relu' }
  const inputBias = c.apply_b_dec_to_input === false ? new Float32Array(c.d_in) : sae.b_dec.data
  return { W_enc: sae.W_enc.data, b_enc: sae.b_enc.data, W_dec: sae.W_dec.data, b_dec: sae.b_dec.data, inputBias, gate, dIn: c.d_in, dSae: c.d_sae }
}

/** Column f of W_enc [d_in, d_sae]: the encoder direction of feature f at the hook point. */
export function encoderColumn(sae: SaeView, f: number): Float32Array {
  checkFeatureId(f, sae.dSae, (m) => new RangeError(m))
  const col = new Float32Array(sae.dIn)
  for (let i = 0; i < sae.dIn; i++) col[i] = sae.W_enc[i * sae.dSae + f]
  return col
}
