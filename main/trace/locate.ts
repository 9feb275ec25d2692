// Where a trace point lies in the bundle: the bundle's weights and token texts as the trace functions take
// them, the point checked and found in its sequence (a corpus sequence, or a typed prompt's tokens), and
// v and u there from a light forward pass (what the scope part and the corpus scores need of the point).
import type { Bundle } from '../bundle'
import { displayStrings } from '../bundle/corpus'
import { checkFeatureId } from '../bundle/feature-id'
import type { ComputeEngine, HookName } from '../compute/api'
import { linearizeFeature, type Linearization } from './linearize'
import { linearizationHooks, patternHook, tracePlan, type TracePlan } from './plan'
import { row } from './math'
import { TraceInputError, type PointTrace, type TracePoint } from './types'
import { modelWeights, saeView, type ModelWeights, type SaeView } from './weights'

export interface BundleViews {
  model: ModelWeights
  sae: SaeView
  display: string[]
}

const views = new WeakMap<object, BundleViews>()

/** The bundle's weights and token texts as the trace functions take them, made once per bundle. */
export function bundleViews(bundle: Bundle): BundleViews {
  let v = views.get(bundle)
  if (!v) {
    v = { model: modelWeights(bundle), sae: saeView(bundle), display: displayStrings(bundle.tokenizer.tokenStrings()) }
    views.set(bundle, v)
  }
  return v
}

/** Hook values of a forward pass by hook name. */
export type Hooks = Awaited<ReturnType<ComputeEngine['forward']>>


/** The token ids of a typed prompt, tokenized as the corpus was (BOS per bundle.json). */
export function promptTokens(bundle: Pick<Bundle, 'config' | 'tokenizer'>, prompt: string): Int32Array {
  if (prompt.length === 0) throw new TraceInputError('the prompt is empty: type some text to trace')
  const ids = bundle.tokenizer.encode(prompt)
  const nCtx = bundle.config.model.n_ctx
  if (ids.length > nCtx) throw new TraceInputError(`the prompt is ${ids.length} tokens long but the model reads at most ${nCtx} (n_ctx); shorten it`)
  if (ids.length === 0) throw new TraceInputError('the prompt tokenizes to no tokens')
  return Int32Array.from(ids)
}

/** Where a point sits in its sequence, and how results name it. */
export interface PointSequence {
  /** The corpus sequence holding the point, or the typed prompt's tokens. */
  sequence: Int32Array
  pos: number
  ref: PointTrace['point']
}

/** A point checked against the bundle (feature, sample, position or prompt token), found in its sequence. */
export function pointSequence(bundle: Pick<Bundle, 'config' | 'tokens' | 'tokenizer'>, point: TracePoint): PointSequence {
  checkFeatureId(point.feature, bundle.config.sae.d_sae, (m) => new TraceInputError(m))
  if ('sample' in point) {
    const corpus = bundle.tokens
    const { sample, pos } = point
    if (!Number.isInteger(sample) || sample < 0 || sample >= corpus.nSeq) throw new TraceInputError(`sample ${sample} outside [0, ${corpus.nSeq})`)
    if (!Number.isInteger(pos) || pos < 0 || pos >= corpus.seqLen) throw new TraceInputError(`position ${pos} outside [0, ${corpus.seqLen})`)
    return { sequence: corpus.data.subarray(sample * corpus.seqLen, (sample + 1) * corpus.seqLen), pos, ref: { kind: 'corpus', sample, pos } }
  }
  const sequence = promptTokens(bundle, point.prompt)
  const pos = point.token
  if (!Number.isInteger(pos) || pos < 0 || pos >= sequence.length) throw new TraceInputError(`token ${pos} outside the prompt's ${sequence.length} tokens`)
  return { sequence, pos, ref: { kind: 'prompt', prompt: point.prompt, pos } }
}

/** v and u at position `pos` of a sequence's hook values (linearizationHooks(plan) among them). */
export function linearizeAt(bundle: Bundle, plan: TracePlan, fwd: Hooks, feature: number, pos: number, seqLen: number): Linearization {
  const { model, sae } = bundleViews(bundle)
  const { d_model: d, n_heads: H } = bundle.config.model
  const resid = row(fwd[plan.resid].data, pos, d)
  if (!plan.attentionHook) return linearizeFeature(model, sae, plan.layer, plan.hook, feature, resid)
  const pattern = fwd[patternHook(plan.layer)].data
  const selfPattern = Float32Array.from({ length: H }, (_, h) => pattern[(h * seqLen + pos) * seqLen + pos])
  return linearizeFeature(model, sae, plan.layer, plan.hook, feature, resid, { hookValue: row(fwd[plan.saeHook].data, pos, sae.dIn), selfPattern })
}

/** A point's forward pass: hook values of its sequence up to the point, and v and u there. */
export interface PointHooks {
  fwd: Hooks
  /**
   * Positions the hook values hold: 0…pos. The model is causal, so later positions change nothing at or
   * before the point, and running them would cost up to the whole sequence again (a point at position 9 of
   * 128 runs 10 tokens).
   */
  fwdLen: number
  lin: Linearization
}

/** The point's own sequence, up to the point, run for `hooks` (linearizationHooks among them), and v and u at the point. */
export async function forwardAt(bundle: Bundle, engine: Pick<ComputeEngine, 'forward'>, point: TracePoint, hooks: HookName[]): Promise<PointSequence & PointHooks> {
  const at = pointSequence(bundle, point)
  const fwdLen = at.pos + 1
  const fwd = await engine.forward(at.sequence.subarray(0, fwdLen), 1, fwdLen, hooks)
  return { ...at, fwd, fwdLen, lin: linearizeAt(bundle, tracePlan(bundle), fwd, point.feature, at.pos, fwdLen) }
}

/**
 * v and u at a point from the point's own sequence, run for R and the SAE's hook only (and an attention
 * hook's pattern): for residual and MLP hooks the same output set as the scope's block requests, so the
 * engine serves both with one forward session.
 */
export function pointDirection(bundle: Bundle, engine: Pick<ComputeEngine, 'forward'>, point: TracePoint): Promise<PointSequence & { lin: Linearization }> {
  return forwardAt(bundle, engine, point, linearizationHooks(tracePlan(bundle)))
}
