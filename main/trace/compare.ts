// Two traces side by side (issue 5, Interaction): how alike their directions are, and where their
// vocabulary scores differ most, each token with its display text (the page cannot look up the vocabulary).
// Both read only the point part of a trace, so comparePoints never runs a batch's forward pass.
import type { Bundle } from '../bundle'
import type { DecompositionJson, TermPairJson, TokenScoreDiffJson, TraceComparisonJson } from '../../common/contract'
import { tokenText } from '../../common/text'
import { bundleViews } from './locate'
import { cosine, topIndices } from './math'
import { tracePoint } from './point'
import type { Convention, PointTrace, TraceEngine, TracePoint } from './types'

export type TokenScoreDiff = TokenScoreDiffJson
export type TraceComparison = TraceComparisonJson

/** What a comparison reads of a trace: v and u with their W_E token scores (a point part or a whole trace). */
type Comparable = Pick<PointTrace, 'v' | 'u' | 'point' | 'sequenceStrTokens'>

/** What a side of a term match reads: a decomposition, the point's position and its sequence's tokens. */
export interface DecomposedPoint {
  decomposition: Pick<DecompositionJson, 'embed' | 'pos' | 'attn' | 'mlpOut'>
  pos: number
  strTokens: readonly string[]
}

/**
 * Two decompositions term by term (issue 14 §6): embed, pos, each MLP's mlp_out, each attention layer's
 * b_O and its heads × relative sources (offset = source − destination), so the head that looks one token
 * back at A is set beside the one that looks one token back at B. |a − b| descending, then by key.
 */
export function matchTerms(a: DecomposedPoint, b: DecomposedPoint): TermPairJson[] {
  const rows = new Map<string, TermPairJson>()
  const add = (side: 'a' | 'b', kind: TermPairJson['kind'], layer: number | null, head: number | null, offset: number | null, value: number, token: string | null) => {
    const key = `${kind}|${layer}|${head}|${offset}`
    let r = rows.get(key)
    if (!r) rows.set(key, (r = { kind, layer, head, offset, tokenA: null, tokenB: null, a: 0, b: 0, diff: 0 }))
    r[side] += value
    if (side === 'a') r.tokenA = token
    else r.tokenB = token
  }
  for (const [side, p] of [['a', a], ['b', b]] as const) {
    const d = p.decomposition
    if (d.embed !== null) add(side, 'embed', null, null, null, d.embed, null)
    if (d.pos !== null) add(side, 'pos', null, null, null, d.pos, null)
    d.mlpOut.forEach((v, layer) => add(side, 'mlp_out', layer, null, null, v, null))
    for (const layer of d.attn) {
      add(side, 'b_O', layer.layer, null, null, layer.b_O, null)
      layer.heads.forEach((sources, head) => sources.forEach((v, s) => add(side, 'attn', layer.layer, head, s - p.pos, v, p.strTokens[s] ?? null)))
    }
  }
  const out = [...rows.values()]
  for (const r of out) r.diff = r.a - r.b
  return out.sort((x, y) => Math.abs(y.diff) - Math.abs(x.diff) || (x.layer ?? -1) - (y.layer ?? -1) || (x.head ?? -1) - (y.head ?? -1) || (y.offset ?? 0) - (x.offset ?? 0))
}

/** `display`: the vocabulary's display strings (bundleViews(bundle).display); a missing entry reads `<id>`. */
export function compareTraces(a: Comparable, b: Comparable, convention: Convention = 'v', k = 20, display: readonly string[] = []): TraceComparison {
  const sa = a[convention].tokenScores.scores
  const sb = b[convention].tokenScores.scores
  if (sa.length !== sb.length) throw new RangeError('the traces come from bundles with different vocabularies')
  const diff = new Float32Array(sa.length)
  for (let i = 0; i < diff.length; i++) diff[i] = sa[i] - sb[i]
  const entry = (i: number): TokenScoreDiff => ({ tokenId: i, str_tokens: tokenText(display, i), diff: diff[i] })
  const side = (t: Comparable): DecomposedPoint => ({ decomposition: t[convention].decomposition, pos: t.point.pos, strTokens: t.sequenceStrTokens })
  return {
    cosineV: cosine(a.v.vector, b.v.vector),
    cosineU: cosine(a.u.vector, b.u.vector),
    terms: matchTerms(side(a), side(b)),
    tokenScoreDiff: { convention, moreInA: topIndices(diff, k).map(entry), moreInB: topIndices(diff, k, false).map(entry) },
  }
}

/** Two points of one bundle compared from their point parts (trace.compare). */
export async function comparePoints(bundle: Bundle, engine: TraceEngine, a: TracePoint, b: TracePoint, convention: Convention = 'v', k = 20): Promise<TraceComparison> {
  const ta = await tracePoint(bundle, engine, a)
  const tb = await tracePoint(bundle, engine, b)
  return compareTraces(ta, tb, convention, k, bundleViews(bundle).display)
}
