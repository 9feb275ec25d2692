// Two traces side by side (issue 5, Interaction): how alike their directions are, and where their
// vocabulary scores differ most, each token with its display text (the page cannot look up the vocabulary).
// Both read only the point part of a trace, so comparePoints never runs a batch's forward pass.
import type { Bundle } from '../bundle'
import type { TokenScoreDiffJson, TraceComparisonJson } from '../../common/contract'
import { tokenText } from '../../common/text'
import { bundleViews } from './locate'
import { cosine, topIndices } from './math'
import { tracePoint } from './point'
import type { Convention, PointTrace, TraceEngine, TracePoint } from './types'

export type TokenScoreDiff = TokenScoreDiffJson
export type TraceComparison = TraceComparisonJson

/** What a comparison reads of a trace: v and u with their W_E token scores (a point part or a whole trace). */
type Comparable = Pick<PointTrace, 'v' | 'u'>

/** `display`: the vocabulary's display strings (bundleViews(bundle).display); a missing entry reads `<id>`. */
export function compareTraces(a: Comparable, b: Comparable, convention: Convention = 'v', k = 20, display: readonly string[] = []): TraceComparison {
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

/** Two points of one bundle compared from their point parts (trace.compare). */
export async function comparePoints(bundle: Bundle, engine: TraceEngine, a: TracePoint, b: TracePoint, convention: Convention = 'v', k = 20): Promise<TraceComparison> {
  const ta = await tracePoint(bundle, engine, a)
  const tb = await tracePoint(bundle, engine, b)
  return compareTraces(ta, tb, convention, k, bundleViews(bundle).display)
}
