// Two traces side by side (issue 5, Interaction): how alike their directions are, and where their
// vocabulary scores differ most.
import { cosine, topIndices } from './math'
import type { Convention, Trace } from './trace'

export interface TraceComparison {
  cosineV: number
  cosineU: number
  /** (W_E·a − W_E·b) for the chosen convention: the tokens a favours most, then those b favours most. */
  tokenScoreDiff: { convention: Convention; moreInA: { tokenId: number; diff: number }[]; moreInB: { tokenId: number; diff: number }[] }
}

export function compareTraces(a: Trace, b: Trace, convention: Convention = 'v', k = 20): TraceComparison {
  const sa = a[convention].tokenScores.scores
  const sb = b[convention].tokenScores.scores
  if (sa.length !== sb.length) throw new RangeError('the traces come from bundles with different vocabularies')
  const diff = new Float32Array(sa.length)
  for (let i = 0; i < diff.length; i++) diff[i] = sa[i] - sb[i]
  const entry = (i: number): { tokenId: number; diff: number } => ({ tokenId: i, diff: diff[i] })
  return {
    cosineV: cosine(a.v.vector, b.v.vector),
    cosineU: cosine(a.u.vector, b.u.vector),
    tokenScoreDiff: { convention, moreInA: topIndices(diff, k).map(entry), moreInB: topIndices(diff, k, false).map(entry) },
  }
}
