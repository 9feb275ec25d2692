// Two traces side by side (issue 5, Interaction; issue 14 §6): how alike their directions are, their
// decompositions term by term, where their vocabulary scores differ most (each token with its display text:
// the page cannot look up the vocabulary), and both directions' activation scores over A's scope. Only the
// scores need a batch's forward pass, the one A's own trace ran (the engine usually still holds it).
import type { Bundle } from '../bundle'
import type { DecompositionJson, ScoreScatterJson, TermPairJson, TokenScoreDiffJson, TraceComparisonJson, TraceScopeKind } from '../../common/contract'
import { tokenText } from '../../common/text'
import { bundleViews } from './locate'
import { cosine, pearson, stack, topIndices } from './math'
import { tracePlan } from './plan'
import { tracePoint } from './point'
import { scopeBlock, scopeOf } from './scope'
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

/**
 * The score scatter from R·[vec_A, vec_B] over A's scope (the engine's projection, interleaved per token).
 * `pointB`: B's index among the scope's tokens, or −1.
 */
export function scoreScatter(scope: TraceScopeKind, projections: ArrayLike<number>, pointA: number, pointB: number): ScoreScatterJson {
  const n = projections.length / 2
  const a = Array.from({ length: n }, (_, i) => projections[2 * i])
  const b = Array.from({ length: n }, (_, i) => projections[2 * i + 1])
  return { scope, a, b, pearson: pearson(a, b), pointA, pointB }
}

/** A point's index among a scope's tokens, or −1 when the scope does not hold it. */
export function indexInScope(scope: TraceScopeKind, point: TracePoint): number {
  if (scope.kind !== 'batch' || !('sample' in point)) return -1
  const seq = point.sample - scope.start
  return seq >= 0 && seq < scope.count && point.pos < scope.seqLen ? seq * scope.seqLen + point.pos : -1
}

/** `display`: the vocabulary's display strings (bundleViews(bundle).display); a missing entry reads `<id>`. */
export function compareTraces(a: Comparable, b: Comparable, convention: Convention = 'v', k = 20, display: readonly string[] = []): Omit<TraceComparison, 'scores'> {
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

/** Two points of one bundle compared (trace.compare): their point parts, and both vectors over A's scope. */
export async function comparePoints(bundle: Bundle, engine: TraceEngine, a: TracePoint, b: TracePoint, convention: Convention = 'v', k = 20): Promise<TraceComparison> {
  const ta = await tracePoint(bundle, engine, a)
  const tb = await tracePoint(bundle, engine, b)
  const s = scopeOf(bundle, a, ta.sequence)
  const [projections] = await engine.projectBlock({
    ...scopeBlock(s),
    projections: [{ hook: tracePlan(bundle).resid, vectors: stack([ta[convention].vector, tb[convention].vector], bundle.config.model.d_model) }],
  })
  const pointA = 'sample' in a ? indexInScope(s.scope, a) : a.token
  const scores = scoreScatter(s.scope, projections, pointA, indexInScope(s.scope, b))
  return { ...compareTraces(ta, tb, convention, k, bundleViews(bundle).display), scores }
}
