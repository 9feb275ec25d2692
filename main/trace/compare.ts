// Two traces side by side (issue 5, Interaction): how alike their directions are, and where their
// vocabulary scores differ most, each token with its display text (the page cannot look up the vocabulary).
import { tokenText } from '../../common/text'
import { cosine, topIndices } from './math'
import type { Convention, Trace } from './trace'

export interface TokenScoreDiff {
  tokenId: number
  /** The token's text with visible whitespace, as every vocabulary table shows it. */
  str_tokens: string
  diff: number
}

export interface TraceComparison {
  cosineV: number
  cosineU: number
  /** (W_E·a − W_E·b) for the chosen convention: the tokens a favours most, then those b favours most. */
  tokenScoreDiff: { convention: Convention; moreInA: TokenScoreDiff[]; moreInB: TokenScoreDiff[] }
}

/** `display`: the vocabulary's display strings (bundleViews(bundle).display); a missing entry reads `<id>`. */
export function compareTraces(a: Trace, b: Trace, convention: Convention = 'v', k = 20, display: readonly string[] = []): TraceComparison {
  const sa = a[convention].tokenScores.scores
  const sb = b[convention].tokenScores.scores
  if (sa.length !== sb.length) throw new RangeError('the traces come from bundles with different vocabularies')
  const diff = new Float32Array(sa.length)
  for (let i = 0; i < diff.length; i++) diff[i] = sa[i] - sb[i]
  const entry = (i: number): TokenScoreDiff => ({ tokenId: i, str_tokens: tokenText(display, i), diff: diff[i] })
  return {
    cosineV: cosine(a.v.vector, b.v.vector),
    cosineU: cosine(a.u.vector, b.u.vector),
    tokenScoreDiff: { convention, moreInA: topIndices(diff, k).map(entry), moreInB: topIndices(diff, k, false).map(entry) },
  }
}
