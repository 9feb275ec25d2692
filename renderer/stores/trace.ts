import { defineStore } from 'pinia'
import { markRaw, ref } from 'vue'
import type { PromptViewJson, TraceComparisonJson, TraceConvention, TraceJson, TracePointRequest } from '../../main/ipc/contract'
import { call, errorMessage } from '../api'

/** One trace tab's result. The result is markRaw: it holds d_model vectors and scope-sized arrays. */
export interface TraceEntry {
  loading: boolean
  error: string | null
  result: TraceJson | null
}

export interface TraceRunOptions {
  head?: number
  sourcePos?: number
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

  async function run(id: string, point: TracePointRequest, options: TraceRunOptions = {}): Promise<TraceJson | null> {
    const mine = ++requests
    latest.set(id, mine)
    const previous = entries.value[id]?.result ?? null
    entries.value[id] = { loading: true, error: null, result: previous }
    try {
      const result = await call('trace.run', { point, options })
      if (latest.get(id) !== mine) return null
      entries.value[id] = { loading: false, error: null, result: markRaw(result) }
      return result
    } catch (err) {
      if (latest.get(id) !== mine) return null
      entries.value[id] = { loading: false, error: errorMessage(err), result: previous }
      return null
    }
  }

  function forget(id: string): void {
    latest.delete(id)
    delete entries.value[id]
  }

  function reset(): void {
    latest.clear()
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

  return { entries, compareA, compareB, entry, run, forget, reset, compare, prompt }
})
