import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import type { CacheState, JobDone, JobProgress } from '../../common/contract'
import { call, errorMessage } from '../api'
import { useJobsStore } from './jobs'

type BuildDone = Extract<JobDone, { kind: 'cache.build' }>

/** The activation cache's state; its build is a job of the jobs store (progress, rate, cancel). */
export const useCacheStore = defineStore('cache', () => {
  const jobs = useJobsStore()
  const state = ref<CacheState | null>(null)
  const lastOutcome = ref<BuildDone | null>(null)
  const error = ref<string | null>(null)
  const doneListeners = new Set<(e: BuildDone) => void>()
  let listening = false

  const progress = computed<JobProgress | null>(() => jobs.ofKind('cache.build')?.progress ?? null)
  /** The rate of the last build, kept after it ends. */
  const lastRate = computed(() => jobs.lastRate['cache.build'] ?? null)
  /** This app's own cache is finished. */
  const built = computed(() => state.value?.state === 'ready')
  /** The feature views can be answered: by the built cache, or meanwhile by the summary shipped in the bundle. */
  const ready = computed(() => built.value || !!state.value?.shipped)
  /** The feature views read the bundle's shipped summary (the app's own cache is not built yet). */
  const fromShipped = computed(() => !built.value && !!state.value?.shipped)
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
    jobs.listen()
    jobs.onProgress((p) => {
      if (p.kind === 'cache.build' && state.value) state.value = { ...state.value, state: 'building', doneTokens: p.doneTokens, totalTokens: p.totalTokens, job: p }
    })
    jobs.onDone((e) => {
      if (e.kind !== 'cache.build') return
      state.value = e.cache
      lastOutcome.value = e
      error.value = e.outcome === 'failed' ? (e.error?.message ?? 'the cache build failed') : null
      doneListeners.forEach((cb) => cb(e))
    })
  }

  function onDone(cb: (e: BuildDone) => void): () => void {
    doneListeners.add(cb)
    return () => doneListeners.delete(cb)
  }

  function set(s: CacheState): void {
    state.value = s
    // A build that runs already (another window's, or from before a reload) is followed like one started here.
    if (s.state === 'building' && s.job) jobs.adopt(s.job)
  }

  async function refresh(): Promise<void> {
    try {
      set(await call('cache.status', {}))
    } catch (err) {
      error.value = errorMessage(err)
    }
  }

  async function build(rebuild = false, full = false): Promise<void> {
    listen()
    error.value = null
    lastOutcome.value = null
    const s = state.value
    try {
      // A resumed build starts from the chunks already committed; a rebuild from zero.
      await jobs.start('cache.build', { rebuild, full }, { doneTokens: rebuild ? 0 : (s?.doneTokens ?? 0), totalTokens: s?.totalTokens ?? 0 })
    } catch (err) {
      error.value = errorMessage(err)
    }
  }

  async function cancel(): Promise<void> {
    const jobId = progress.value?.jobId ?? state.value?.job?.jobId
    if (!jobId) return
    try {
      await jobs.cancel(jobId)
    } catch (err) {
      error.value = errorMessage(err)
    }
  }

  return { state, progress, lastOutcome, error, lastRate, built, ready, fromShipped, building, fraction, listen, onDone, set, refresh, build, cancel }
})
