import { defineStore } from 'pinia'
import { markRaw, ref } from 'vue'
import type { AblationsJson, PromptViewJson, TraceComparisonJson, TraceConvention, TracePointJson, TracePointRequest, TraceScopeJson } from '../../common/contract'
import { call, errorMessage } from '../api'
import { isPointOf } from '../components/trace/format'
import { traceTabId } from './tabs'

/**
 * One trace tab's result, in two parts: the point (v, u, decompositions, circuits: fast) and the scope
 * (activation scores and fidelity over the batch: the first trace in a batch runs its forward pass).
 * Both are markRaw: they hold d_model vectors and scope-sized arrays.
 */
export interface TraceEntry {
  loading: boolean
  error: string | null
  result: TracePointJson | null
  scopeLoading: boolean
  scopeError: string | null
  scope: TraceScopeJson | null
}

export interface TraceRunOptions {
  head?: number
  sourcePos?: number
}

/** Whether a trace result is of this point (same feature, same token). */
function samePoint(t: TracePointJson, p: TracePointRequest): boolean {
  return t.feature === p.feature && isPointOf(t.point, p)
}

/**
 * Marks on the page's performance timeline (issue 14 §9): when a tab's trace was asked for and when each
 * part answered, so the time from an answer to its view on screen can be measured (test/e2e/responsiveness.test.ts).
 */
function mark(name: 'ft:trace.request' | 'ft:trace.point' | 'ft:trace.scope', tab: string): void {
  performance.mark(name, { detail: { tab } })
}

export const useTraceStore = defineStore('trace', () => {
  const entries = ref<Record<string, TraceEntry>>({})
  /** The latest request per tab: a slower earlier answer (e.g. for another head) must not overwrite a newer one. */
  const latest = new Map<string, number>()
  let requests = 0
  /** The two trace tabs the Compare tab shows (tab ids). */
  const compareA = ref<string | null>(null)
  const compareB = ref<string | null>(null)

  function entry(id: string): TraceEntry | undefined {
    return entries.value[id]
  }

  /** Per tab: the point whose scope part is being fetched, so a re-run for the same point does not ask again. */
  const scopeWanted = new Map<string, string>()

  /**
   * Traces `point` into tab `id`: the point part first, then the scope part, which does not depend on the
   * head or source position, so a re-run for those keeps the scope it has or is waiting for.
   */
  async function run(id: string, point: TracePointRequest, options: TraceRunOptions = {}): Promise<TracePointJson | null> {
    const mine = ++requests
    latest.set(id, mine)
    const key = traceTabId(point)
    const old = entries.value[id]
    const previous = old?.result ?? null
    const keepScope = old?.scope != null && previous !== null && samePoint(previous, point)
    // Another point's scope, still on its way, is no longer wanted here.
    if (scopeWanted.has(id) && scopeWanted.get(id) !== key) scopeWanted.delete(id)
    const current = (): TraceEntry => entries.value[id]
    mark('ft:trace.request', id)
    entries.value[id] = { loading: true, error: null, result: previous, scopeLoading: !keepScope, scopeError: null, scope: keepScope ? old.scope : null }
    let result: TracePointJson
    try {
      // The tab is the caller: its newer request (another head) supersedes this one in main.
      result = markRaw(await call('trace.point', { point, options, caller: id }))
    } catch (err) {
      if (latest.get(id) !== mine) return null
      const message = errorMessage(err)
      const waiting = scopeWanted.get(id) === key
      entries.value[id] = { ...current(), loading: false, error: message, scopeLoading: waiting, scopeError: waiting || keepScope ? null : message }
      return null
    }
    if (latest.get(id) !== mine) return null
    mark('ft:trace.point', id)
    entries.value[id] = { ...current(), loading: false, result }
    if (!keepScope && scopeWanted.get(id) !== key) void loadScope(id, point, key)
    return result
  }

  async function loadScope(id: string, point: TracePointRequest, key: string): Promise<void> {
    scopeWanted.set(id, key)
    let change: Partial<TraceEntry>
    try {
      change = { scopeLoading: false, scope: markRaw(await call('trace.scope', { point, caller: id })) }
    } catch (err) {
      change = { scopeLoading: false, scopeError: errorMessage(err) }
    }
    if (scopeWanted.get(id) !== key || !entries.value[id]) return
    mark('ft:trace.scope', id)
    scopeWanted.delete(id)
    entries.value[id] = { ...entries.value[id], ...change }
  }

  /** A closed tab: what it still waits for is stopped in main. */
  function forget(id: string): void {
    const e = entries.value[id]
    if (e?.loading || e?.scopeLoading) void call('trace.cancel', { caller: id }).catch(() => undefined)
    latest.delete(id)
    scopeWanted.delete(id)
    delete entries.value[id]
  }

  function reset(): void {
    latest.clear()
    scopeWanted.clear()
    entries.value = {}
    compareA.value = null
    compareB.value = null
  }

  async function compare(a: TracePointRequest, b: TracePointRequest, convention: TraceConvention, topK = 20): Promise<TraceComparisonJson> {
    return markRaw(await call('trace.compare', { a, b, convention, topK }))
  }

  async function prompt(text: string, feature: number | undefined, topK = 10): Promise<PromptViewJson> {
    return markRaw(await call('trace.prompt', feature === undefined ? { prompt: text, topK } : { prompt: text, topK, feature }))
  }

  /**
   * Asks main to run the forward passes of the batches holding these corpus sequences ahead of a click,
   * so a trace there shows its activation scores at once. Best effort: a failure only costs that speed.
   */
  function prefetch(samples: number[]): void {
    if (samples.length === 0) return
    // One at a time, and only the latest waiting: each holds the compute process for a forward pass.
    pendingPrefetch = samples.slice(0, 64)
    if (!prefetching) void pumpPrefetch()
  }
  let pendingPrefetch: number[] | null = null
  let prefetching = false
  async function pumpPrefetch(): Promise<void> {
    prefetching = true
    while (pendingPrefetch) {
      const samples = pendingPrefetch
      pendingPrefetch = null
      await call('trace.prefetch', { samples }).catch((err: unknown) => console.warn('trace prefetch failed:', errorMessage(err)))
    }
    prefetching = false
  }

  /**
   * Causal checks (trace.ablate) of a tab's point, asked for when its section opens; markRaw like the
   * trace. The tab is the caller, so a newer point's checks supersede an older one's.
   */
  async function ablate(id: string, point: TracePointRequest): Promise<AblationsJson> {
    return markRaw(await call('trace.ablate', { point, caller: id }))
  }

  return { entries, compareA, compareB, entry, run, forget, reset, compare, prompt, prefetch, ablate }
})
