// Activation scores and fidelity over a scope of tokens (issue 5 §2): the batch of 128 sequences holding
// the point, or a typed prompt. Rows use the seed's token-table columns (main/bundle/corpus.ts, shared with
// the feature tab), with `score` in place of `activation`.
import { activationRow, type CorpusView } from '../bundle/corpus'
import type { FidelityRowJson, ScoreRowJson } from '../../common/contract'
import { reluGate, type TokenGate } from './gate'
import { pearson, topIndices } from './math'
import type { Fidelity } from './types'

export type ScoreRow = ScoreRowJson
export type FidelityRow = FidelityRowJson

/** Where a scope's tokens sit: its first token is global token `firstToken` of `view.corpus`. */
export interface ScopeView extends CorpusView {
  firstToken: number
}

export function scoreRow(view: ScopeView, index: number, score: number): ScoreRow {
  const { activation: _, ...rest } = activationRow(view, view.firstToken + index, score)
  return { ...rest, score }
}

/** Rows of the `limit` highest (or lowest) scores of the scope, best first. */
export function scoreRows(view: ScopeView, scores: ArrayLike<number>, limit: number, highest = true): ScoreRow[] {
  return topIndices(scores, limit, highest).map((i) => scoreRow(view, i, scores[i]))
}

/**
 * pre(x0) + vec·(x − x0) for every token of the scope, against the true pre-activations and activations.
 * `scores` is vec·x over the scope, `vecDotX0` is vec·x0 at the point (≈ 0 for v, by LayerNorm's scale
 * invariance; not for u). `gate` makes activations of the true and the predicted pre-activations
 * (pearsonRelu compares the two; ReLU for a relu SAE, see gate.ts for the others). `firingDisagreements`:
 * the largest |error| among the tokens where the feature truly fires (activation > 0).
 */
export function fidelity(view: ScopeView, scores: Float32Array, preAtPoint: number, vecDotX0: number, pre: Float32Array, limit = 50, gate: TokenGate = reluGate): Fidelity {
  const n = scores.length
  const predicted = new Float32Array(n)
  const predictedRelu = new Float32Array(n)
  const acts = new Float32Array(n)
  const absErr = new Float32Array(n)
  for (let i = 0; i < n; i++) {
    predicted[i] = preAtPoint + scores[i] - vecDotX0
    predictedRelu[i] = gate.predicted(i, predicted[i])
    acts[i] = gate.actual(i, pre[i])
    absErr[i] = Math.abs(predicted[i] - pre[i])
  }
  const row = (i: number): FidelityRow => ({
    ...scoreRow(view, i, predicted[i]),
    predicted: predicted[i],
    preActivation: pre[i],
    activation: acts[i],
    error: predicted[i] - pre[i],
  })
  // Where the feature fires: below the gate the largest errors are often harmless (both below zero), so
  // the tokens whose activation the prediction gets wrong get a list of their own.
  const firingErr = absErr.map((e, i) => (acts[i] > 0 ? e : -1))
  const firingDisagreements = topIndices(firingErr, limit)
    .filter((i) => acts[i] > 0)
    .map(row)
  return { pearson: pearson(predicted, pre), pearsonRelu: pearson(predictedRelu, acts), predicted, disagreements: topIndices(absErr, limit).map(row), firingDisagreements }
}
