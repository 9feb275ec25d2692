import { defineStore } from 'pinia'
import { computed, markRaw, ref } from 'vue'
import type { AtlasJson, JobDone, JobProgress } from '../../common/contract'
import { call, errorMessage } from '../api'
import { cancelEntryJob, startEntryJob, useJobsStore } from './jobs'
import { useSessionStore } from './session'

type Done = Extract<JobDone, { kind: 'trace.atlas' }>

/** A feature's atlas as its tab shows it: the last result (markRaw: N×N matrices), how the last job ended. */
export interface AtlasEntry {
  result: AtlasJson | null
  outcome: Done['outcome'] | null
  error: string | null
}

/** The default cut: clusters whose members' directions are on average within 1 − cos ≤ 0.5 of each other. */
export const DEFAULT_ATLAS_THRESHOLD = 0.5

/** The session key of a feature's atlas (its result and threshold, in the session's free-form `ui`). */
export const atlasSessionKey = (feature: number): string => `atlas:${feature}`

/** Whether a saved value is an atlas of this feature with the fields the panel reads (files come from any version). */
function isAtlas(r: unknown, feature: number): r is AtlasJson {
  if (!r || typeof r !== 'object') return false
  const o = r as Partial<AtlasJson>
  const n = o.points?.length ?? -1
  return (
    o.feature === feature &&
    n > 0 &&
    [o.cosineU, o.cosineV, o.crossFidelity, o.linkage, o.order, o.nodes, o.explainedShare].every(Array.isArray) &&
    o.cosineU!.length === n &&
    o.linkage!.length === n - 1 &&
    o.nodes!.length === 2 * n - 1 &&
    typeof o.bestShare === 'number'
  )
}

/**
 * Mechanism atlases (trace.atlas): a job of the jobs store (main runs one at a time), owned by the feature
 * that started it. A finished atlas and the user's threshold go into the session (session.ui), so a
 * restored session shows them as they were without running the job again.
 */
export const useAtlasStore = defineStore('atlas', () => {
  const jobs = useJobsStore()
  const session = useSessionStore()
  const entries = ref<Record<number, AtlasEntry>>({})
  const running = computed<{ feature: number; jobId: string; progress: JobProgress } | null>(() => {
    const job = jobs.ofKind('trace.atlas')
    return job ? { feature: Number(job.owner ?? -1), jobId: job.jobId, progress: job.progress } : null
  })
  let listening = false

  function saved(feature: number): { result?: unknown; threshold?: unknown } {
    const v = session.ui[atlasSessionKey(feature)]
    return v && typeof v === 'object' ? (v as { result?: unknown; threshold?: unknown }) : {}
  }

  /** The feature's entry, from the session when this page has none yet. */
  function entry(feature: number): AtlasEntry | undefined {
    if (!entries.value[feature]) {
      const r = saved(feature).result
      if (isAtlas(r, feature)) entries.value[feature] = { result: markRaw(r), outcome: null, error: null }
    }
    return entries.value[feature]
  }

  function threshold(feature: number): number {
    const t = saved(feature).threshold
    return typeof t === 'number' && t >= 0 && t <= 2 ? t : DEFAULT_ATLAS_THRESHOLD
  }

  function keep(feature: number, patch: { result?: AtlasJson; threshold?: number }): void {
    const key = atlasSessionKey(feature)
    session.ui = { ...session.ui, [key]: { ...saved(feature), ...patch } }
  }

  function setThreshold(feature: number, t: number): void {
    keep(feature, { threshold: t })
  }

  function listen(): void {
    if (listening) return
    listening = true
    jobs.listen()
    jobs.onDone((e, job) => {
      if (e.kind === 'trace.atlas' && job?.owner) void finish(Number(job.owner), e)
    })
  }

  async function finish(feature: number, e: Done): Promise<void> {
    let result = entries.value[feature]?.result ?? null
    let error = e.outcome === 'failed' ? (e.error?.message ?? 'the atlas failed') : null
    if (e.outcome === 'done') {
      try {
        result = markRaw(e.result ?? (await call('trace.atlas.result', { jobId: e.jobId })))
        keep(feature, { result })
      } catch (err) {
        error = errorMessage(err)
      }
    }
    entries.value[feature] = { result, outcome: e.outcome, error }
  }

  async function start(feature: number, top = 64, quantileSamples = 32): Promise<void> {
    if (running.value) return
    listen()
    await startEntryJob(entries.value, feature, entry(feature)?.result ?? null, () =>
      jobs.start('trace.atlas', { feature, top, quantileSamples }, { totalTokens: 0, owner: String(feature) }),
    )
  }

  async function cancel(): Promise<void> {
    const job = running.value
    if (job) await cancelEntryJob(entries.value, job.feature, () => jobs.cancel(job.jobId))
  }

  return { entries, running, entry, threshold, setThreshold, listen, start, cancel }
})
