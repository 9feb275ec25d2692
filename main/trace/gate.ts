// The SAE's gate: how a feature's pre-activation pre = (x − inputBias)·W_enc[:,f] + b_enc[f] becomes its
// activation, for each kind of bundle.json (docs/BUNDLE.md):
//   relu      ReLU(pre)
//   jumprelu  ReLU(pre)·[pre > threshold_f]
//   topk      ReLU(pre) where f is among its token's k largest pre-activations, else 0; equal values rank
//             the lower feature id first, as ONNX TopK orders them (the engine's graph uses it).
// The trace linearizes pre, never the gate. Where a prediction of the activation is made (fidelity), the
// gate is applied to the predicted pre-activation with everything else as it truly is: JumpReLU's threshold,
// and for TopK the other features' pre-activations at that token (the rival, the k-th largest of them).
import { dot } from './math'
import type { SaeView } from './weights'

/** b_enc[f] − inputBias·W_enc[:,f]: the pre-activation is hook·W_enc[:,f] plus this. */
export function preBias(sae: SaeView, f: number, encoderColumn: ArrayLike<number>): number {
  return sae.b_enc[f] - dot(sae.inputBias, encoderColumn)
}

/** Every feature's pre-activation at one hook value (float64): for TopK's gate at a single point. */
export function allPreActivations(sae: SaeView, hookValue: ArrayLike<number>): Float64Array {
  const { dIn, dSae, W_enc, inputBias } = sae
  const out = Float64Array.from(sae.b_enc)
  for (let i = 0; i < dIn; i++) {
    const c = hookValue[i] - inputBias[i]
    const r = i * dSae
    for (let j = 0; j < dSae; j++) out[j] += c * W_enc[r + j]
  }
  return out
}

/** Whether feature f is among the k largest of one token's pre-activations (equal values: lower id first). */
export function inTopK(pre: ArrayLike<number>, f: number, k: number): boolean {
  const p = pre[f]
  let above = 0
  for (let j = 0; j < pre.length; j++) {
    if (pre[j] > p || (pre[j] === p && j < f)) {
      if (++above >= k) return false
    }
  }
  return true
}

/** The activation of feature f at a point with pre-activation `pre`; TopK asks for the token's every pre-activation. */
export function pointActivation(sae: SaeView, f: number, pre: number, allPre: () => ArrayLike<number>): number {
  const g = sae.gate
  if (g.kind === 'relu') return Math.max(0, pre)
  if (g.kind === 'jumprelu') return pre > g.threshold[f] ? Math.max(0, pre) : 0
  return inTopK(allPre(), f, g.k) ? Math.max(0, pre) : 0
}

/** TopK's gate for one feature over a block of tokens. */
export interface Rivals {
  /** The k-th largest pre-activation of the other features, and its feature id (-Infinity, -1: none). */
  value: Float32Array
  index: Int32Array
  /** Whether the SAE selected the feature (it is among the token's k largest). */
  selected: Uint8Array
}

/**
 * Feature f's rivals from a block's top-(k+1) pre-activations per token ([nTokens, width], each row sorted
 * descending, equal values lower id first; width = min(k + 1, d_sae)).
 */
export function rivalsOf(top: { values: Float32Array; indices: Int32Array; width: number }, f: number, k: number): Rivals {
  const { values, indices, width } = top
  const n = values.length / width
  const value = new Float32Array(n)
  const index = new Int32Array(n)
  const selected = new Uint8Array(n)
  for (let t = 0; t < n; t++) {
    const base = t * width
    let sel = 0
    for (let j = 0; j < Math.min(k, width); j++) if (indices[base + j] === f) sel = 1
    selected[t] = sel
    const at = sel ? k : k - 1 // the others' k-th largest: past f when f is among the first k
    value[t] = at < width ? values[base + at] : -Infinity
    index[t] = at < width ? indices[base + at] : -1
  }
  return { value, index, selected }
}

/** The gate of feature f at each token of a block: for the true pre-activation, and for a predicted one. */
export interface TokenGate {
  actual(token: number, pre: number): number
  predicted(token: number, pre: number): number
}

export const reluGate: TokenGate = { actual: (_, p) => Math.max(0, p), predicted: (_, p) => Math.max(0, p) }

export function tokenGate(sae: SaeView, f: number, rivals?: Rivals): TokenGate {
  const g = sae.gate
  if (g.kind === 'relu') return reluGate
  if (g.kind === 'jumprelu') {
    const theta = g.threshold[f]
    const jump = (_: number, p: number): number => (p > theta ? Math.max(0, p) : 0)
    return { actual: jump, predicted: jump }
  }
  if (!rivals) throw new Error('a TopK SAE gate needs the tokens’ top pre-activations')
  return {
    actual: (t, p) => (rivals.selected[t] ? Math.max(0, p) : 0),
    predicted: (t, p) => (p > rivals.value[t] || (p === rivals.value[t] && f < rivals.index[t]) ? Math.max(0, p) : 0),
  }
}
