// The scope part of a trace: R·[v, u] (R the trace's residual point, plan.ts) and the feature's pre-activation for every token of the
// point's 128-sequence batch (or its prompt), the rows that score highest and the fidelity of the linear
// prediction there. It needs the batch's forward pass (16,384 tokens: most of a cold trace's time); the
// engine keeps recent blocks under their keys, so more traces in the same batch skip it.
import type { Bundle } from '../bundle'
import type { HookName } from '../compute/api'
import { preBias, rivalsOf, tokenGate, type Rivals, type TokenGate } from './gate'
import type { Linearization } from './linearize'
import { bundleViews, pointDirection, pointSequence } from './locate'
import { tracePlan } from './plan'
import { stack } from './math'
import { fidelity, scoreRows, type ScopeView } from './scores'
import type { ConventionScope, ScopeTrace, TraceEngine, TraceOptions, TracePoint, TraceScope } from './types'
import { encoderColumn } from './weights'

/** The seed's BATCH_SIZE: activation scores cover the 128-sequence batch holding the point. */
export const SCORE_BATCH = 128

/** A point's scope: its batch of the corpus or its prompt, the scope's tokens, and the engine's key for them. */
export interface PointScope {
  scope: TraceScope
  scopeTokens: Int32Array
  scopeView: ScopeView
  blockKey: string
}

/** The scope of a point's activation scores: its 128-sequence batch of the corpus, or its prompt. */
export function scopeOf(bundle: Bundle, point: TracePoint, sequence: Int32Array): PointScope {
  const corpus = bundle.tokens
  const { display } = bundleViews(bundle)
  if ('sample' in point) {
    const start = Math.floor(point.sample / SCORE_BATCH) * SCORE_BATCH
    const count = Math.min(SCORE_BATCH, corpus.nSeq - start)
    return {
      scopeTokens: corpus.data.subarray(start * corpus.seqLen, (start + count) * corpus.seqLen),
      scope: { kind: 'batch', start, count, seqLen: corpus.seqLen },
      scopeView: { corpus: corpus.data, seqLen: corpus.seqLen, display, firstToken: start * corpus.seqLen },
      blockKey: `batch:${start}:${count}`,
    }
  }
  return {
    scopeTokens: sequence,
    scope: { kind: 'prompt', seqLen: sequence.length },
    scopeView: { corpus: sequence, seqLen: sequence.length, display, firstToken: 0 },
    blockKey: `prompt:${sequence.join(',')}`,
  }
}

/** The block request of a scope: its tokens as [nSeq, seqLen]. */
export function scopeBlock(s: PointScope): { key: string; tokens: Int32Array; nSeq: number; seqLen: number } {
  return { key: s.blockKey, tokens: s.scopeTokens, nSeq: s.scope.kind === 'batch' ? s.scope.count : 1, seqLen: s.scope.seqLen }
}

/**
 * Runs the forward pass of the batch holding corpus sequence `sample`, so the engine keeps it and a later
 * trace there gets its scope without one (the app asks for this when a feature's top activations show).
 */
export async function prefetchScope(bundle: Bundle, engine: TraceEngine, sample: number): Promise<void> {
  const point = { feature: 0, sample, pos: 0 }
  const s = scopeOf(bundle, point, pointSequence(bundle, point).sequence)
  if (s.scope.kind !== 'batch') return
  const empty = new Float32Array(0)
  await engine.projectBlock({
    ...scopeBlock(s),
    projections: [
      { hook: tracePlan(bundle).resid, vectors: empty },
      { hook: bundle.config.sae.hook_point as HookName, vectors: empty },
    ],
  })
}

/** What the scope part needs of the point: the feature, v and u there, and the point's scope. */
export interface ScopeInput extends PointScope {
  feature: number
  lin: Linearization
}

/** What the scope part gets from the engine: R · [v, u], hook · W_enc[:,f], and TopK's rivals. */
export interface ScopeValues {
  projections: Float32Array[]
  rivals?: Rivals
}

/**
 * A TopK SAE's gate for feature f over a token block: each token's k+1 largest pre-activations from the
 * engine (the block's hook values, kept by its projection request), refused by an engine without them.
 */
export async function topKRivals(bundle: Bundle, engine: Pick<TraceEngine, 'saeTopPre'>, req: { key: string; tokens: Int32Array; nSeq: number; seqLen: number }, f: number): Promise<Rivals | undefined> {
  const c = bundle.config.sae
  if (c.kind !== 'topk') return undefined
  if (!engine.saeTopPre) throw new Error('this compute engine cannot rank SAE pre-activations, which a TopK SAE’s activations need')
  const top = await engine.saeTopPre({ ...req, width: Math.min(c.k + 1, c.d_sae) })
  return rivalsOf(top, f, c.k)
}

/** The scope's engine requests: R · [v, u] and the feature's pre-activation (before b_enc) per token. */
export async function scopeProjections(bundle: Bundle, engine: TraceEngine, s: ScopeInput): Promise<ScopeValues> {
  const { sae } = bundleViews(bundle)
  const projections = await engine.projectBlock({
    ...scopeBlock(s),
    projections: [
      { hook: tracePlan(bundle).resid, vectors: stack([s.lin.v, s.lin.u], bundle.config.model.d_model) },
      { hook: bundle.config.sae.hook_point as HookName, vectors: encoderColumn(sae, s.feature) },
    ],
  })
  return { projections, rivals: await topKRivals(bundle, engine, scopeBlock(s), s.feature) }
}

/** The SAE's gate of feature f over a block (gate.ts). */
export function gateOf(bundle: Bundle, f: number, rivals?: Rivals): TokenGate {
  return tokenGate(bundleViews(bundle).sae, f, rivals)
}

/** The scope part from the engine's projections: scores per convention, true (pre-)activations, fidelity. */
export function scopePart(bundle: Bundle, s: ScopeInput, { projections: [scoresVU, hookProj], rivals }: ScopeValues, rowLimit: number): Omit<ScopeTrace, 'timingsMs'> {
  const { sae } = bundleViews(bundle)
  const gate = gateOf(bundle, s.feature, rivals)
  const { lin, scopeView } = s
  const nScope = s.scopeTokens.length
  const sV = new Float32Array(nScope)
  const sU = new Float32Array(nScope)
  for (let i = 0; i < nScope; i++) {
    sV[i] = scoresVU[2 * i]
    sU[i] = scoresVU[2 * i + 1]
  }
  const bias = preBias(sae, s.feature, encoderColumn(sae, s.feature))
  const scopePre = new Float32Array(nScope)
  const scopeAct = new Float32Array(nScope)
  for (let i = 0; i < nScope; i++) {
    scopePre[i] = hookProj[i] + bias
    scopeAct[i] = gate.actual(i, scopePre[i])
  }
  const convention = (scores: Float32Array, dotX0: number): ConventionScope => ({
    activationScores: scores,
    topRows: scoreRows(scopeView, scores, rowLimit),
    fidelity: fidelity(scopeView, scores, lin.preActivation, dotX0, scopePre, rowLimit, gate),
  })
  return { scope: s.scope, v: convention(sV, lin.vDotResid), u: convention(sU, lin.uDotResid), scopePreActivations: scopePre, scopeActivations: scopeAct }
}

/** The scope part of a trace: activation scores and fidelity over the point's batch (or its prompt). */
export async function traceScope(bundle: Bundle, engine: TraceEngine, point: TracePoint, opts: Pick<TraceOptions, 'rowLimit'> = {}): Promise<ScopeTrace> {
  const t0 = performance.now()
  const { sequence, lin } = await pointDirection(bundle, engine, point)
  const s: ScopeInput = { feature: point.feature, lin, ...scopeOf(bundle, point, sequence) }
  const t = performance.now()
  const part = scopePart(bundle, s, await scopeProjections(bundle, engine, s), opts.rowLimit ?? 100)
  const now = performance.now()
  return { ...part, timingsMs: { forwardPoint: t - t0, scope: now - t, total: now - t0 } }
}
