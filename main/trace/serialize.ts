// A trace (its point part, its scope part, or corpus scores) in its wire form: IPC, the HTTP bridge and the
// CLI's `trace --json` (the contract's WireArrays). Both forms are instances of one declaration per shape
// (common/contract/trace.ts), so converting is one walk over the value: typed arrays become number arrays,
// and each vocabulary's scores become its table, every token as [token id, str_tokens, score], highest
// score first (when vocabRows is 'all'). Everything else is copied as it is, in the same key order.
import type { TraceJson, TracePointJson, TraceScopeJson, VocabTableJson } from '../../common/contract'
import type { PointTrace, ScopeTrace, Trace, VocabScores } from './types'

export interface TraceJsonOptions {
  /** 'all': every vocabulary row of every table (the CLI's default); 'top': only the top/bottom lists. */
  vocabRows?: 'all' | 'top'
}

/** What `toWire` makes of a value of the typed form. */
export type Wired<T> = T extends ArrayBufferView
  ? number[]
  : T extends VocabScores
    ? Omit<T, 'scores'> & VocabTableJson
    : T extends readonly (infer E)[]
      ? Wired<E>[]
      : T extends object
        ? { [K in keyof T]: Wired<T[K]> }
        : T

/**
 * A typed array as a plain number array. Pushed one by one, so V8 keeps it a packed double array, which
 * JSON.stringify writes about a quarter faster than the holey one `new Array(n)` makes.
 */
export function numbers(a: ArrayLike<number>): number[] {
  const out: number[] = []
  for (let i = 0; i < a.length; i++) out.push(a[i])
  return out
}

const isVocabScores = (x: object): x is VocabScores => 'scores' in x && x.scores instanceof Float32Array && 'top' in x && 'bottom' in x

/** The wire form of a value; `table` turns a vocabulary's scores into its table. */
export function toWire<T>(x: T, table: (v: VocabScores) => VocabTableJson = topTable): Wired<T> {
  const walk = (y: unknown): unknown => {
    if (typeof y !== 'object' || y === null) return y
    if (ArrayBuffer.isView(y)) return numbers(y as unknown as ArrayLike<number>)
    if (Array.isArray(y)) return y.map(walk)
    if (isVocabScores(y)) {
      const { scores: _s, top: _t, bottom: _b, ...rest } = y
      return { ...(walk(rest) as object), ...table(y) }
    }
    return Object.fromEntries(Object.entries(y).map(([k, v]) => [k, walk(v)]))
  }
  return walk(x) as Wired<T>
}

const topTable = (v: VocabScores): VocabTableJson => ({ top: v.top, bottom: v.bottom })

function vocabTable(display: (id: number) => string, opts: TraceJsonOptions): (v: VocabScores) => VocabTableJson {
  if ((opts.vocabRows ?? 'all') !== 'all') return topTable
  return (v) => {
    const order = Array.from(v.scores.keys()).sort((a, b) => v.scores[b] - v.scores[a] || a - b)
    return { top: v.top, bottom: v.bottom, rows: order.map((id) => [id, display(id), v.scores[id]]) }
  }
}

export function pointTraceToJson(trace: PointTrace, display: (id: number) => string, opts: TraceJsonOptions = {}): TracePointJson {
  return toWire(trace, vocabTable(display, opts))
}

export function scopeTraceToJson(trace: ScopeTrace): TraceScopeJson {
  return toWire(trace)
}

/** A whole trace: the point's fields with the scope's (each convention has both). */
export function traceToJson(trace: Trace, display: (id: number) => string, opts: TraceJsonOptions = {}): TraceJson {
  return toWire(trace, vocabTable(display, opts))
}
