// A Trace (or its point or scope part) as plain JSON (the CLI's `trace --json`, IPC): typed arrays become number arrays, and every
// vocabulary table lists every token as [token id, str_tokens, score], highest score first.
import type { ConventionPointJson, ConventionScopeJson, HeadTablesJson, TraceJson, TracePointJson, TraceScopeJson, VocabTableJson } from '../../common/contract'
import { joinTraceParts, type ConventionPoint, type ConventionScope, type HeadTables, type PointTrace, type ScopeTrace, type Trace, type VocabScores } from './trace'

export interface TraceJsonOptions {
  /** 'all': every vocabulary row of every table (the CLI's default); 'top': only the top/bottom lists. */
  vocabRows?: 'all' | 'top'
}

type VocabRow = NonNullable<VocabTableJson['rows']>[number]

/**
 * A typed array as a plain number array. Pushed one by one, so V8 keeps it a packed double array, which
 * JSON.stringify writes about a quarter faster than the holey one `new Array(n)` makes.
 */
export function numbers(a: ArrayLike<number>): number[] {
  const out: number[] = []
  for (let i = 0; i < a.length; i++) out.push(a[i])
  return out
}

function vocabJson(v: VocabScores, display: (id: number) => string, opts: TraceJsonOptions): VocabTableJson {
  const out: VocabTableJson = { top: v.top, bottom: v.bottom }
  if ((opts.vocabRows ?? 'all') === 'all') {
    const order = Array.from(v.scores.keys()).sort((a, b) => v.scores[b] - v.scores[a] || a - b)
    out.rows = order.map((id): VocabRow => [id, display(id), v.scores[id]])
  }
  return out
}

export function pointTraceToJson(trace: PointTrace, display: (id: number) => string, opts: TraceJsonOptions = {}): TracePointJson {
  const vj = (v: VocabScores): VocabTableJson => vocabJson(v, display, opts)
  const heads = (hs: HeadTables[]): HeadTablesJson[] => hs.map((h) => ({ head: h.head, ovTokens: vj(h.ovTokens), lnOv: vj(h.lnOv), qkSeed: vj(h.qkSeed) }))
  const conv = (c: ConventionPoint): ConventionPointJson => ({
    convention: c.convention,
    label: c.label,
    vector: numbers(c.vector),
    dotResidMid: c.dotResidMid,
    tokenScores: vj(c.tokenScores),
    decomposition: c.decomposition,
    heads: heads(c.heads),
  })
  return {
    feature: trace.feature,
    hookPoint: trace.hookPoint,
    layer: trace.layer,
    point: trace.point,
    tokenId: trace.tokenId,
    sequence: numbers(trace.sequence),
    sequenceStrTokens: trace.sequenceStrTokens,
    activation: trace.activation,
    preActivation: trace.preActivation,
    ln2Scale: trace.ln2Scale,
    cosineVU: trace.cosineVU,
    v: conv(trace.v),
    u: conv(trace.u),
    sourcePos: trace.sourcePos,
    head: trace.head,
    qk: trace.qk.map((q, h) => ({ head: h, ...vj(q) })),
    qkGrid: trace.qkGrid,
    qkPairs: trace.qkPairs,
    logitEffect: trace.logitEffect && vj(trace.logitEffect),
    scope: trace.scope,
    timingsMs: trace.timingsMs,
  }
}

export function scopeTraceToJson(trace: ScopeTrace): TraceScopeJson {
  const conv = (c: ConventionScope): ConventionScopeJson => ({
    activationScores: numbers(c.activationScores),
    topRows: c.topRows,
    fidelity: { pearson: c.fidelity.pearson, pearsonRelu: c.fidelity.pearsonRelu, predicted: numbers(c.fidelity.predicted), disagreements: c.fidelity.disagreements },
  })
  return {
    scope: trace.scope,
    v: conv(trace.v),
    u: conv(trace.u),
    scopePreActivations: numbers(trace.scopePreActivations),
    scopeActivations: numbers(trace.scopeActivations),
    timingsMs: trace.timingsMs,
  }
}

/** A whole trace: the point's JSON with the scope's merged in (each convention gets its scope fields). */
export function traceToJson(trace: Trace, display: (id: number) => string, opts: TraceJsonOptions = {}): TraceJson {
  return joinTraceParts(pointTraceToJson(trace, display, opts), scopeTraceToJson(trace))
}
