// The linearized feature direction at a point (issue 5 §1; issue 12 §3 for every hook), in closed form.
// The trace linearizes the feature's pre-activation pre_f = W_enc[:,f]·(hook − b_dec) + b_enc[f] (without
// − b_dec where the SAE's apply_b_dec_to_input is false) as a function of the residual stream R at the point,
// and returns its gradient at R0 in two conventions. R depends on the hook (residPointOf):
//   hook_resid_pre/mid/post  R is the hook itself: pre_f is linear in R, v = u = W_enc[:,f] (exact).
//   mlp.hook_pre/hook_post, hook_mlp_out  R = resid_mid of the layer (resid_pre in a parallel block, whose MLP
//        reads it), through LN2 and the MLP:
//        pre_f(x) = W_enc[:,f] · (hook(GELU(LN2(x) W_in + b_in)) − b_dec) + b_enc[f]
//   attn.hook_z, hook_attn_out  R = resid_pre of the layer at the point, with the attention pattern and every
//        other position held at their values: z_h(t) = Σ_s pattern[h,t,s]·(LN1(x_s) W_V[h] + b_V[h]), so only
//        the point's own value (weight pattern[h,t,t]) moves with x. Its decomposition over heads × sources
//        (decompose.ts) is the exact view of such a feature; v is the local one.
// Whatever the SAE's kind, this is the pre-activation's gradient: the gate (ReLU, JumpReLU's threshold, TopK's
// selection; gate.ts) is applied to the activation, never linearized. Where the feature fires, the
// activation's gradient equals this (every gate has slope 1 there); where it does not, v is still the
// pre-activation's gradient, the direction that would move it towards firing.
//   v: the full gradient (the seed's get_tangent_plane_at_point). LayerNorm is scale-invariant, so v·x0 ≈ 0
//      where a LayerNorm is on the path.
//   u: the gradient with that LayerNorm's scale held at its value at x0 (LayerNorm frozen, as circuit-tracer
//      does), so u·x0 is a meaningful first-order value whose decomposition adds up. Without one, u = v.
// With n = (x0 − mean)/s the normalized input, s = sqrt(var + eps), and g the gradient with respect to n:
//   u = (g − mean(g)) / s,   v = u − n (n·g) / (d s).
import type { HookName } from '../compute/api'
import { activation, dot, layerNorm, type ActFn, type Vec } from './math'
import { allPreActivations, pointActivation } from './gate'
import { encoderColumn, type ModelWeights, type SaeView } from './weights'

/** Hooks (relative to blocks.L.) a trace reads through the MLP of their layer, from resid_mid (resid_pre in parallel blocks). */
const MLP_HOOKS = ['mlp.hook_pre', 'mlp.hook_post', 'hook_mlp_out'] as const
/** Hooks that are the residual stream itself. */
const RESID_HOOKS = ['hook_resid_pre', 'hook_resid_mid', 'hook_resid_post'] as const
/** Hooks inside the attention of their layer, read from resid_pre through LN1 with the pattern frozen. */
export const ATTENTION_HOOKS = ['attn.hook_z', 'hook_attn_out'] as const
/** Every hook (relative to blocks.L.) whose SAE features a trace can linearize. */
export const TRACEABLE_HOOKS = [...RESID_HOOKS, ...MLP_HOOKS, ...ATTENTION_HOOKS] as const

const isIn = (list: readonly string[], hook: string): boolean => list.includes(hook)

/** The residual-stream hook R a trace at blocks.L.`hook` linearizes at (see the header); `parallel`: attention and MLP both read resid_pre. */
export function residPointOf(layer: number, hook: string, parallel = false): HookName {
  if (!isIn(TRACEABLE_HOOKS, hook)) throw new RangeError(`tracing reads SAEs on ${TRACEABLE_HOOKS.join(', ')}; this one reads blocks.${layer}.${hook}`)
  if (hook === 'hook_resid_post') return `blocks.${layer}.hook_resid_post`
  if (hook === 'hook_resid_pre' || isIn(ATTENTION_HOOKS, hook) || (parallel && isIn(MLP_HOOKS, hook))) return `blocks.${layer}.hook_resid_pre`
  return `blocks.${layer}.hook_resid_mid`
}

/** What an attention hook's linearization needs besides R: the hook's value and pattern[h, t, t] at the point. */
export interface AttentionPoint {
  /** The SAE's input at the point: z of every head concatenated, or attn_out. */
  hookValue: ArrayLike<number>
  /** pattern[h, t, t] for each head h: how much of the point's own value enters its z. */
  selfPattern: ArrayLike<number>
}

export interface Linearization {
  /** ∂pre_f/∂R at the point (full LayerNorm gradient). */
  v: Vec
  /** The same gradient with the LayerNorm on the path frozen at its scale at the point (= v without one). */
  u: Vec
  /** The feature's pre-activation and activation (its SAE's gate applied, gate.ts) at the point. */
  preActivation: number
  activation: number
  vDotResid: number
  uDotResid: number
  /** The LayerNorm u freezes and its scale sqrt(var + eps) at the point; null where none is on the path. */
  frozenLn: { name: 'ln1' | 'ln2'; scale: number } | null
}

/** The two conventions from g = ∂pre/∂n, n the LayerNorm's normalized input at x0 with scale s. */
function throughLayerNorm(g: Float64Array, n: Float64Array, s: number): { u: Vec; v: Vec } {
  const d = g.length
  let gMean = 0
  for (let i = 0; i < d; i++) gMean += g[i]
  gMean /= d
  const nDotG = dot(n, g)
  const u = new Float32Array(d)
  const v = new Float32Array(d)
  for (let i = 0; i < d; i++) {
    const ui = (g[i] - gMean) / s
    u[i] = ui
    v[i] = ui - (n[i] * nDotG) / (d * s)
  }
  return { u, v }
}

/**
 * What each head of layer L reads from its own z for an attention hook's feature: W_enc[:,f]'s slice of the
 * head (attn.hook_z), or W_O[h]·W_enc[:,f] (hook_attn_out); [n_heads][d_head].
 */
export function attentionReadDirections(model: ModelWeights, layer: number, hook: string, e: ArrayLike<number>): Vec[] {
  const { n_heads: H, d_head: dh, d_model: d } = model.cfg
  if (hook === 'attn.hook_z') return Array.from({ length: H }, (_, h) => Float32Array.from({ length: dh }, (_, k) => e[h * dh + k]))
  const { W_O } = model.attn(layer)
  return Array.from({ length: H }, (_, h) => Float32Array.from({ length: dh }, (_, k) => dot(W_O, e, (h * dh + k) * d, 0, d)))
}

export function linearizeFeature(model: ModelWeights, sae: SaeView, layer: number, hook: string, feature: number, resid: ArrayLike<number>, attention?: AttentionPoint): Linearization {
  residPointOf(layer, hook)
  const { d_model: d, eps } = model.cfg
  if (resid.length !== d) throw new RangeError(`the residual stream has ${resid.length} values, d_model is ${d}`)
  const e = encoderColumn(sae, feature)
  const finish = (hookValue: ArrayLike<number>, u: Vec, v: Vec, frozenLn: Linearization['frozenLn']): Linearization => {
    let preActivation = sae.b_enc[feature]
    for (let k = 0; k < hookValue.length; k++) preActivation += (hookValue[k] - sae.inputBias[k]) * e[k]
    return {
      v,
      u,
      preActivation,
      activation: pointActivation(sae, feature, preActivation, () => allPreActivations(sae, hookValue)),
      vDotResid: dot(v, resid),
      uDotResid: dot(u, resid),
      frozenLn,
    }
  }
  if (isIn(RESID_HOOKS, hook)) return finish(resid, e, Float32Array.from(e), null)
  if (isIn(ATTENTION_HOOKS, hook)) {
    if (!attention) throw new RangeError(`blocks.${layer}.${hook}: the linearization needs the hook's value and the attention pattern at the point`)
    const { n_heads: H, d_head: dh } = model.cfg
    const a = model.attn(layer)
    const reads = attentionReadDirections(model, layer, hook, e)
    // g = ∂pre/∂n through LN1's affine part and W_V: Σ_h pattern[h,t,t] · W_V[h] · read_h.
    const g = new Float64Array(d)
    for (let h = 0; h < H; h++) {
      const p = attention.selfPattern[h]
      for (let i = 0; i < d; i++) g[i] += p * dot(a.W_V, reads[h], (h * d + i) * dh, 0, dh)
    }
    if (a.ln1w) for (let i = 0; i < d; i++) g[i] *= a.ln1w[i]
    const { normed: n, scale: s } = layerNorm(resid, eps)
    const { u, v } = throughLayerNorm(g, n, s)
    return finish(attention.hookValue, u, v, { name: 'ln1', scale: s })
  }
  return linearizeMlp(model, sae, layer, hook, e, resid, finish)
}

function linearizeMlp(model: ModelWeights, sae: SaeView, layer: number, hook: string, e: Float32Array, residMid: ArrayLike<number>, finish: (hookValue: ArrayLike<number>, u: Vec, v: Vec, frozenLn: Linearization['frozenLn']) => Linearization): Linearization {
  const { d_model: d, d_mlp: dm, eps } = model.cfg
  const act = model.cfg.act_fn as ActFn
  const w = model.mlp(layer)
  const { normed: n, scale: s } = layerNorm(residMid, eps)
  const h = new Float64Array(d)
  for (let i = 0; i < d; i++) h[i] = w.ln2w && w.ln2b ? n[i] * w.ln2w[i] + w.ln2b[i] : n[i]
  const pre = new Float64Array(dm)
  for (let j = 0; j < dm; j++) pre[j] = w.b_in[j]
  for (let i = 0; i < d; i++) {
    const hi = h[i]
    const r = i * dm
    for (let j = 0; j < dm; j++) pre[j] += hi * w.W_in[r + j]
  }
  const post = new Float64Array(dm)
  const dpost = new Float64Array(dm)
  for (let j = 0; j < dm; j++) {
    const a = activation(act, pre[j])
    post[j] = a.y
    dpost[j] = a.dy
  }

  // The hook's value at the point and the gradient of pre_f with respect to the MLP's pre-activations.
  let hookValue: Float64Array
  const gPre = new Float64Array(dm)
  if (hook === 'mlp.hook_pre') {
    hookValue = pre
    for (let j = 0; j < dm; j++) gPre[j] = e[j]
  } else if (hook === 'mlp.hook_post') {
    hookValue = post
    for (let j = 0; j < dm; j++) gPre[j] = e[j] * dpost[j]
  } else {
    hookValue = new Float64Array(d)
    for (let k = 0; k < d; k++) hookValue[k] = w.b_out[k]
    for (let j = 0; j < dm; j++) {
      const r = j * d
      gPre[j] = dot(w.W_out, e, r, 0, d) * dpost[j]
      for (let k = 0; k < d; k++) hookValue[k] += post[j] * w.W_out[r + k]
    }
  }

  // Back through W_in and LN2's affine part: g = ∂pre_f/∂n.
  const g = new Float64Array(d)
  for (let i = 0; i < d; i++) g[i] = dot(w.W_in, gPre, i * dm, 0, dm) * (w.ln2w ? w.ln2w[i] : 1)
  const { u, v } = throughLayerNorm(g, n, s)
  return finish(hookValue, u, v, { name: 'ln2', scale: s })
}
