import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import type { CacheProgress, CacheState, Events } from '../../common/contract'
import { call, errorMessage, onPush } from '../api'

export const useCacheStore = defineStore('cache', () => {
  const state = ref<CacheState | null>(null)
  const progress = ref<CacheProgress | null>(null)
  const lastOutcome = ref<Events['cache.done'] | null>(null)
  const error = ref<string | null>(null)
  /** The rate of the last build, kept after it ends: the one figure worth comparing between machines. */
  const lastRate = ref<number | null>(null)
  const doneListeners = new Set<(e: Events['cache.done']) => void>()
  let listening = false

  const ready = computed(() => state.value?.state === 'ready')
  const building = computed(() => state.value?.state === 'building' || progress.value !== null)
  const fraction = computed(() => {
    const p = progress.value ?? state.value?.job
    if (p) return p.totalTokens > 0 ? p.doneTokens / p.totalTokens : 0
    const s = state.value
    return s && s.totalTokens > 0 ? s.doneTokens / s.totalTokens : 0
  })

  function listen(): void {
    if (listening) return
    listening = true
    onPush('cache.progress', (p) => {
      progress.value = p
      if (state.value) state.value = { ...state.value, state: 'building', doneTokens: p.doneTokens, totalTokens: p.totalTokens, job: p }
    })
    onPush('cache.done', (e) => {
      if (progress.value && progress.value.tokensPerSec > 0) lastRate.value = progress.value.tokensPerSec
      progress.value = null
      state.value = e.cache
      lastOutcome.value = e
      error.value = e.outcome === 'failed' ? (e.error?.message ?? 'the cache build failed') : null
      doneListeners.forEach((cb) => cb(e))
    })
  }

  function onDone(cb: (e: Events['cache.done']) => void): () => void {
    doneListeners.add(cb)
    return () => doneListeners.delete(cb)
  }

  function set(s: CacheState): void {
    state.value = s
    progress.value = s.state === 'building' ? (s.job ?? null) : null
  }

  async function refresh(): Promise<void> {
    try {
      set(await call('cache.status', {}))
    } catch (err) {
      error.value = errorMessage(err)
    }
  }

  async function build(rebuild = false): Promise<void> {
    listen()
    error.value = null
    lastOutcome.value = null
    try {
      const { jobId } = await call('cache.build', { rebuild })
      // Show the bar at once; the first progress push fills in the rate.
      const s = state.value
      if (!progress.value || progress.value.jobId !== jobId) {
        // A resumed build starts from the chunks already committed; a rebuild from zero.
        const done = rebuild ? 0 : (s?.doneTokens ?? 0)
        progress.value = { jobId, phase: 'compute', doneTokens: done, totalTokens: s?.totalTokens ?? 0, tokensPerSec: 0, etaSec: null }
      }
    } catch (err) {
      error.value = errorMessage(err)
    }
  }

  async function cancel(): Promise<void> {
    const jobId = progress.value?.jobId ?? state.value?.job?.jobId
    if (!jobId) return
    try {
      await call('cache.cancel', { jobId })
    } catch (err) {
      error.value = errorMessage(err)
    }
  }

  return { state, progress, lastOutcome, error, lastRate, ready, building, fraction, listen, onDone, set, refresh, build, cancel }
})
