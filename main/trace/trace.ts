// One trace (issue 5), assembled from the pure functions of this folder, in two parts:
// - the point (point.ts, tracePoint): the point's own sequence through the model, then v and u,
//   decompositions, circuit tables and every vocabulary product;
// - the scope (scope.ts, traceScope): resid_mid·[v, u] and the feature's pre-activation for every token of
//   the 128-sequence batch, which needs that batch's forward pass.
// traceAt runs both, overlapping them. The app asks for the point first and the scope after, so a click
// shows v's tables at once and the batch grids fill in when their forward pass is done.
import type { Bundle } from '../bundle'
import { pointForward, pointPart } from './point'
import { scopeOf, scopePart, scopeProjections, type ScopeInput } from './scope'
import type { Trace, TraceEngine, TraceOptions, TracePoint } from './types'

/** A whole trace: the point and the scope, the scope's engine request sent first so both overlap. */
export async function traceAt(bundle: Bundle, engine: TraceEngine, point: TracePoint, opts: TraceOptions = {}): Promise<Trace> {
  const t0 = performance.now()
  const at = await pointForward(bundle, engine, point)
  const s: ScopeInput = { feature: point.feature, lin: at.lin, ...scopeOf(bundle, point, at.sequence) }
  const projections = scopeProjections(bundle, engine, s)
  // Awaited below; until then a failure must not count as unhandled (the vocabulary products may throw first).
  projections.catch(() => undefined)
  const pt = await pointPart(bundle, engine, at, s.scope, opts)
  const t = performance.now()
  const sc = scopePart(bundle, s, await projections, opts.rowLimit ?? 100)
  const timingsMs: Record<string, number> = { ...at.timingsMs, ...pt.timingsMs, scope: performance.now() - t }
  timingsMs.total = performance.now() - t0
  return { ...joinTraceParts(pt, sc), timingsMs }
}

type Parts = { v: object; u: object }

/** A point part and a scope part as one trace: each convention gets its scope fields (typed or JSON form alike). */
export function joinTraceParts<P extends Parts, S extends Parts & { scopePreActivations: unknown; scopeActivations: unknown }>(
  pt: P,
  sc: S,
): Omit<P, 'v' | 'u'> & { v: P['v'] & S['v']; u: P['u'] & S['u']; scopePreActivations: S['scopePreActivations']; scopeActivations: S['scopeActivations'] } {
  return { ...pt, v: { ...pt.v, ...sc.v }, u: { ...pt.u, ...sc.u }, scopePreActivations: sc.scopePreActivations, scopeActivations: sc.scopeActivations }
}
