// Causal checks on a trace (issue 15 §2): does the linear story hold when a term is really taken out?
// For the largest head × source terms of u's decomposition (20 by default, ranked by |u·term| over every
// attention layer the decomposition lists) and each whole head, the term's vector is removed from the
// residual point R at the point's position and the feature's pre-activation is computed again from there,
// through everything between R and the SAE (docs/BUNDLE.md, "Causal checks"):
//   term(l, h, s) = pattern_l[h,t,s] · hook_v_l[s,h] · W_O_l[h]    (d_model; a whole head sums over s ≤ t)
//   predicted = u · term          actual = pre(R) − pre(R − term)
// so both are the term's contribution and agree in sign when the linear story holds. Mean-ablation replaces
// the term by its mean over the corpus sample (sequences 0…MEAN_SEQUENCES−1 at the same destination and
// source positions): predicted = u · (term − mean), actual = pre(R) − pre(R − term + mean).
// What lies between R and the SAE is per position, so every perturbed copy of R is run at once:
//   residual hooks: nothing (pre is linear in R, actual = predicted up to rounding);
//   MLP hooks: LN2 (its true scale, recomputed), W_in, the non-linearity, W_out, then the encoder;
//   attention hooks (attn.hook_z, hook_attn_out): the terms are parts of the hook's own value (their heads ×
//   sources sum to it), so they are removed from that value, which the encoder reads linearly: actual =
//   predicted up to rounding. Removing them from resid_pre instead would not be the same term.
import type { Bundle } from '../bundle'
import type { HookName } from '../compute/api'
import type { AblationJson, AblationsJson } from '../../common/contract'
import { activation, dot, layerNorm, pearson, type ActFn } from './math'
import { bundleViews, type Hooks } from './locate'
import { hookVHook, patternHook, type TracePlan } from './plan'
import { pointForward, type PointForward } from './point'
import type { TraceEngine, TracePoint } from './types'
import { encoderColumn, type ModelWeights, type SaeView } from './weights'

/** Head × source terms checked by default. */
export const ABLATION_TERMS = 20
/** Corpus sequences the mean-ablation averages over: 0…MEAN_SEQUENCES−1 (fewer in a smaller corpus). */
export const MEAN_SEQUENCES = 32

/** pre(x) for K stacked inputs x [K, width] of the space the terms live in (R, or an attention hook's value). */
type PreOf = (xs: Float64Array, k: number) => Float64Array

/** The feature's pre-activation from its SAE's input (the hook value), for K stacked inputs. */
function encoderPre(sae: SaeView, e: Float32Array, f: number): PreOf {
  const bias = sae.b_enc[f] - dot(sae.inputBias, e)
  return (xs, k) => Float64Array.from({ length: k }, (_, i) => bias + dot(xs, e, i * e.length, 0, e.length))
}

/** The feature's pre-activation from resid_mid L through LN2 and the MLP of layer L, for K stacked inputs. */
function mlpPre(model: ModelWeights, sae: SaeView, layer: number, hook: string, e: Float32Array, f: number): PreOf {
  const { d_model: d, d_mlp: dm, eps } = model.cfg
  const act = model.cfg.act_fn as ActFn
  const w = model.mlp(layer)
  const bias = sae.b_enc[f] - dot(sae.inputBias, e)
  // hook_mlp_out·e = post·(W_out·e) + b_out·e: one d_mlp vector instead of a d_model product per input.
  const read = hook === 'hook_mlp_out' ? Float64Array.from({ length: dm }, (_, j) => dot(w.W_out, e, j * d, 0, d)) : Float64Array.from(e)
  const readBias = hook === 'hook_mlp_out' ? dot(w.b_out, e) : 0
  return (xs, k) => {
    // LN2 of every input, then one pass over W_in for all of them (each row of W_in read once, not k times).
    const hs = new Float64Array(k * d)
    for (let i = 0; i < k; i++) {
      const { normed } = layerNorm(xs.subarray(i * d, (i + 1) * d), eps)
      for (let a = 0; a < d; a++) hs[i * d + a] = w.ln2w && w.ln2b ? normed[a] * w.ln2w[a] + w.ln2b[a] : normed[a]
    }
    const pre = new Float64Array(k * dm)
    for (let i = 0; i < k; i++) pre.set(w.b_in, i * dm)
    for (let a = 0; a < d; a++) {
      const r = a * dm
      for (let i = 0; i < k; i++) {
        const ha = hs[i * d + a]
        const o = i * dm
        for (let j = 0; j < dm; j++) pre[o + j] += ha * w.W_in[r + j]
      }
    }
    const out = new Float64Array(k)
    for (let i = 0; i < k; i++) {
      let s = bias + readBias
      const o = i * dm
      for (let j = 0; j < dm; j++) s += (hook === 'mlp.hook_pre' ? pre[o + j] : activation(act, pre[o + j]).y) * read[j]
      out[i] = s
    }
    return out
  }
}

/** One attention layer's values in a block of sequences: hook_v [n, T, H, dh] and the pattern [n, H, T, T]. */
interface LayerBlock {
  hookV: Float32Array
  pattern: Float32Array
  nSeq: number
  seqLen: number
}

const blockOf = (fwd: Hooks, l: number, nSeq: number, seqLen: number): LayerBlock => ({ hookV: fwd[hookVHook(l)].data, pattern: fwd[patternHook(l)].data, nSeq, seqLen })

/** The term's z part, pattern[h,t,s]·hook_v[s,h] (d_head), averaged over the block's sequences, added into `out`. */
function addMeanZ(b: LayerBlock, H: number, dh: number, h: number, t: number, s: number, out: Float64Array, scale = 1): void {
  const { nSeq, seqLen: T } = b
  for (let n = 0; n < nSeq; n++) {
    const p = b.pattern[((n * H + h) * T + t) * T + s] * scale
    const off = ((n * T + s) * H + h) * dh
    for (let k = 0; k < dh; k++) out[k] += p * b.hookV[off + k]
  }
}

/** A z-space vector of head h (d_head) as the term's vector in the space the terms are removed from. */
type Lift = (l: number, h: number, z: Float64Array) => Float64Array

function liftOf(model: ModelWeights, plan: TracePlan, width: number): Lift {
  const { d_head: dh, d_model: d } = model.cfg
  if (plan.hook === 'attn.hook_z') {
    return (_l, h, z) => {
      const x = new Float64Array(width)
      x.set(z, h * dh)
      return x
    }
  }
  // model.attn(l) reads every weight of the layer: once per layer, not per term.
  const W_Os = new Map<number, Float32Array>()
  return (l, h, z) => {
    let W_O = W_Os.get(l)
    if (!W_O) W_Os.set(l, (W_O = model.attn(l).W_O))
    const x = new Float64Array(d)
    for (let k = 0; k < dh; k++) {
      const zk = z[k]
      const r = (h * dh + k) * d
      for (let i = 0; i < d; i++) x[i] += zk * W_O[r + i]
    }
    return x
  }
}

interface Check {
  layer: number
  head: number
  source: number | null
  term: Float64Array
  mean: Float64Array | null
}

export interface AblationInput {
  bundle: Bundle
  at: PointForward
  /** Every attention layer's values in the corpus sample, or null (no mean-ablation). */
  sample: Hooks | null
  sampleSeqs: number
  terms?: number
}

/** The causal checks of a point whose forward pass (pointForward) is done; `sample` the mean's corpus block. */
export function ablationsAt({ bundle, at, sample, sampleSeqs, terms = ABLATION_TERMS }: AblationInput): Omit<AblationsJson, 'timingsMs'> {
  const { model, sae } = bundleViews(bundle)
  const { n_heads: H, d_head: dh, d_model: d } = model.cfg
  const { plan, fwd, fwdLen: seqLen, pos: t, lin, feature } = at
  const e = encoderColumn(sae, feature)
  // The space the terms are removed from, its value at the point, and the pre-activation from it.
  const width = plan.attentionHook ? sae.dIn : d
  const space: HookName = plan.attentionHook ? plan.saeHook : plan.resid
  const x0 = Float64Array.from(fwd[space].data.subarray(t * width, (t + 1) * width))
  const preOf: PreOf = plan.attentionHook || plan.hook.startsWith('hook_resid') ? encoderPre(sae, e, feature) : mlpPre(model, sae, plan.layer, plan.hook, e, feature)
  // What u reads from the space: u itself at R; for an attention hook, the encoder column (its terms' u·term).
  const u: ArrayLike<number> = plan.attentionHook ? e : lin.u
  const lift = liftOf(model, plan, width)
  // A prompt token beyond the corpus's sequence length has no mean there.
  const meanT = sample && t < bundle.tokens.seqLen ? sample : null

  // Every head × source term in z space (d_head), ranked by u·term = z·(what u reads from head h's z); only
  // the largest, and each whole head, are lifted to the space they are removed from.
  const candidates: { layer: number; head: number; source: number; z: Float64Array; meanZ: Float64Array | null; predicted: number }[] = []
  const heads: Check[] = []
  for (const l of plan.attnLayers) {
    const pointBlock = blockOf(fwd, l, 1, seqLen)
    const meanBlock = meanT ? blockOf(meanT, l, sampleSeqs, bundle.tokens.seqLen) : null
    for (let h = 0; h < H; h++) {
      const read = Float64Array.from({ length: dh }, (_, k) => {
        const unit = new Float64Array(dh)
        unit[k] = 1
        return dot(u, lift(l, h, unit))
      })
      const headZ = new Float64Array(dh)
      const headMeanZ = meanBlock ? new Float64Array(dh) : null
      for (let s = 0; s <= t; s++) {
        const z = new Float64Array(dh)
        addMeanZ(pointBlock, H, dh, h, t, s, z)
        for (let k = 0; k < dh; k++) headZ[k] += z[k]
        let meanZ: Float64Array | null = null
        if (meanBlock && headMeanZ) {
          meanZ = new Float64Array(dh)
          addMeanZ(meanBlock, H, dh, h, t, s, meanZ, 1 / sampleSeqs)
          for (let k = 0; k < dh; k++) headMeanZ[k] += meanZ[k]
        }
        candidates.push({ layer: l, head: h, source: s, z, meanZ, predicted: dot(z, read) })
      }
      heads.push({ layer: l, head: h, source: null, term: lift(l, h, headZ), mean: headMeanZ && lift(l, h, headMeanZ) })
    }
  }
  const picked: Check[] = candidates
    .map((c, i) => ({ c, i }))
    .sort((a, b) => Math.abs(b.c.predicted) - Math.abs(a.c.predicted) || a.i - b.i)
    .slice(0, terms)
    .map(({ c }) => ({ layer: c.layer, head: c.head, source: c.source, term: lift(c.layer, c.head, c.z), mean: c.meanZ && lift(c.layer, c.head, c.meanZ) }))
  const checks: Check[] = [...picked, ...heads]

  // All perturbed copies of the point's value in one pass: x0, then x0 − term and x0 − term + mean per check.
  const withMean = meanT !== null
  const per = withMean ? 2 : 1
  const xs = new Float64Array((1 + per * checks.length) * width)
  xs.set(x0)
  checks.forEach((c, i) => {
    const a = (1 + per * i) * width
    for (let k = 0; k < width; k++) xs[a + k] = x0[k] - c.term[k]
    if (withMean && c.mean) for (let k = 0; k < width; k++) xs[a + width + k] = x0[k] - c.term[k] + c.mean[k]
  })
  const pres = preOf(xs, 1 + per * checks.length)
  const ablations: AblationJson[] = checks.map((c, i) => {
    const row: AblationJson = { layer: c.layer, head: c.head, source: c.source, predicted: dot(u, c.term), actual: pres[0] - pres[1 + per * i], meanPredicted: null, meanActual: null }
    if (withMean && c.mean) {
      let p = 0
      for (let k = 0; k < width; k++) p += u[k] * (c.term[k] - c.mean[k])
      row.meanPredicted = p
      row.meanActual = pres[0] - pres[2 + per * i]
    }
    return row
  })
  const r = (a: number[], b: number[]): number | null => (a.length > 1 && Number.isFinite(pearson(a, b)) ? pearson(a, b) : null)
  return {
    feature,
    point: at.ref,
    hookPoint: bundle.config.sae.hook_point,
    resid: plan.resid,
    removedFrom: space,
    preActivation: pres[0],
    ablations,
    pearson: r(ablations.map((a) => a.predicted), ablations.map((a) => a.actual)),
    meanPearson: withMean ? r(ablations.map((a) => a.meanPredicted!), ablations.map((a) => a.meanActual!)) : null,
    meanSequences: withMean ? sampleSeqs : null,
  }
}

/** The mean-ablation's corpus sample through the model, run once per bundle (the first trace pays for it). */
const samples = new WeakMap<Bundle, Promise<Hooks>>()

function corpusSample(bundle: Bundle, engine: TraceEngine, plan: TracePlan): { seqs: number; run: Promise<Hooks> } {
  const { nSeq, seqLen, data } = bundle.tokens
  const seqs = Math.min(MEAN_SEQUENCES, nSeq)
  let run = samples.get(bundle)
  if (!run) {
    const hooks = plan.attnLayers.flatMap((l) => [hookVHook(l), patternHook(l)])
    run = engine.forward(data.subarray(0, seqs * seqLen), seqs, seqLen, hooks)
    samples.set(bundle, run)
    // A cancelled or failed run is not kept: the next trace tries again.
    run.catch(() => samples.delete(bundle))
  }
  return { seqs, run }
}

/** Causal checks at a trace point (trace.ablate, the CLI's --ablate). */
export async function traceAblations(bundle: Bundle, engine: TraceEngine, point: TracePoint, opts: { terms?: number; mean?: boolean } = {}): Promise<AblationsJson> {
  const t0 = performance.now()
  const at = await pointForward(bundle, engine, point)
  const t1 = performance.now()
  const mean = opts.mean ?? true
  const sample = mean ? corpusSample(bundle, engine, at.plan) : null
  // A sample run another request started and then cancelled is started again for this one.
  const hooks = sample ? await sample.run.catch(() => corpusSample(bundle, engine, at.plan).run) : null
  const t2 = performance.now()
  const result = ablationsAt({ bundle, at, sample: hooks, sampleSeqs: sample?.seqs ?? 0, terms: opts.terms })
  const t3 = performance.now()
  return { ...result, timingsMs: { forwardPoint: t1 - t0, meanSample: t2 - t1, ablations: t3 - t2, total: t3 - t0 } }
}
