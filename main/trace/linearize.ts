// The linearized feature direction at a point (issue 5 §1), in closed form. The feature's pre-activation
// as a function of resid_mid x of layer L is
//   pre_f(x) = W_enc[:,f] · (hook(GELU(LN2(x) W_in + b_in)) − b_dec) + b_enc[f]
// (without − b_dec where the SAE's apply_b_dec_to_input is false) and we return its gradient at x0 in two
// conventions. Whatever the SAE's kind, this is the pre-activation's gradient: the gate (ReLU, JumpReLU's
// threshold, TopK's selection; gate.ts) is applied to the activation, never linearized. Where the feature
// fires, the activation's gradient equals this (every gate has slope 1 there); where it does not, v is
// still the pre-activation's gradient, the direction that would move it towards firing.
//   v: the full gradient (the seed's get_tangent_plane_at_point). LN2 is scale-invariant, so v·x0 ≈ 0.
//   u: the gradient with LN2's scale held at its value at x0 (LayerNorm frozen, as circuit-tracer does),
//      so u·x0 is a meaningful first-order value whose decomposition adds up.
// With n = (x0 − mean)/s the normalized input, s = sqrt(var + eps), and g the gradient with respect to n:
//   u = (g − mean(g)) / s,   v = u − n (n·g) / (d s).
import { activation, dot, layerNorm, type ActFn, type Vec } from './math'
import { allPreActivations, pointActivation } from './gate'
import { encoderColumn, type ModelWeights, type SaeView } from './weights'

/** Hooks (relative to blocks.L.) whose SAE features are functions of resid_mid through the MLP. */
export const LINEARIZABLE_HOOKS = ['mlp.hook_pre', 'mlp.hook_post', 'hook_mlp_out'] as const

export interface Linearization {
  /** ∂pre_f/∂resid_mid at the point (full LayerNorm gradient). */
  v: Vec
  /** The same gradient with LN2's scale frozen at the point. */
  u: Vec
  /** The feature's pre-activation and activation (its SAE's gate applied, gate.ts) at the point. */
  preActivation: number
  activation: number
  vDotResidMid: number
  uDotResidMid: number
  /** LN2's scale sqrt(var + eps) at the point. */
  ln2Scale: number
}

export function linearizeFeature(model: ModelWeights, sae: SaeView, layer: number, hook: string, feature: number, residMid: ArrayLike<number>): Linearization {
  if (!(LINEARIZABLE_HOOKS as readonly string[]).includes(hook)) {
    throw new RangeError(`tracing needs an SAE on an MLP hook (${LINEARIZABLE_HOOKS.join(', ')}); this one reads blocks.${layer}.${hook}`)
  }
  const { d_model: d, d_mlp: dm, eps } = model.cfg
  const act = model.cfg.act_fn as ActFn
  if (residMid.length !== d) throw new RangeError(`resid_mid has ${residMid.length} values, d_model is ${d}`)
  const w = model.mlp(layer)
  const e = encoderColumn(sae, feature)

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
  let preActivation = sae.b_enc[feature]
  for (let k = 0; k < hookValue.length; k++) preActivation += (hookValue[k] - sae.inputBias[k]) * e[k]

  // Back through W_in and LN2's affine part: g = ∂pre_f/∂n.
  const g = new Float64Array(d)
  let gMean = 0
  for (let i = 0; i < d; i++) {
    g[i] = dot(w.W_in, gPre, i * dm, 0, dm) * (w.ln2w ? w.ln2w[i] : 1)
    gMean += g[i]
  }
  gMean /= d
  const nDotG = dot(n, g)
  const u = new Float32Array(d)
  const v = new Float32Array(d)
  for (let i = 0; i < d; i++) {
    const ui = (g[i] - gMean) / s
    u[i] = ui
    v[i] = ui - (n[i] * nDotG) / (d * s)
  }
  return {
    v,
    u,
    preActivation,
    activation: pointActivation(sae, feature, preActivation, () => allPreActivations(sae, hookValue)),
    vDotResidMid: dot(v, residMid),
    uDotResidMid: dot(u, residMid),
    ln2Scale: s,
  }
}
