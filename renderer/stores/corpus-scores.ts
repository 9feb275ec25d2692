import { defineStore } from 'pinia'
import { computed, markRaw, ref } from 'vue'
import type { CorpusScoresJson, JobDone, JobProgress, TraceConvention, TracePointRequest } from '../../common/contract'
import { call, errorMessage } from '../api'
import { isPointOf } from '../components/trace/format'
import { cancelEntryJob, startEntryJob, useJobsStore } from './jobs'

type Done = Extract<JobDone, { kind: 'trace.corpusScores' }>

/** What a trace tab shows for one convention: the last result, and how the last job ended if not done. */
export interface CorpusScoresEntry {
  /** markRaw: a d_model vector, hundreds of rows and thousands of scatter points. */
  result: CorpusScoresJson | null
  outcome: Done['outcome'] | null
  error: string | null
}

/** The running job, and the trace tab (and convention) it is for. */
export interface RunningCorpusScores {
  key: string
  jobId: string
  progress: JobProgress
}

/** A trace tab's results are kept per convention: v and u score along different directions. */
export function corpusScoresKey(tabId: string, convention: TraceConvention): string {
  return `${tabId}|${convention}`
}

/** Whether a saved value is a corpus-scores result of this point and convention, with the fields the panel reads. */
function isCorpusScores(r: unknown, point: TracePointRequest, convention: TraceConvention): r is CorpusScoresJson {
  if (!r || typeof r !== 'object') return false
  const o = r as Partial<CorpusScoresJson>
  const p = o.point
  const samePoint = !!p && isPointOf(p, point)
  const sc = o.fidelity?.scatter
  const arrays = [o.vector, o.top, o.bottom, o.histogram?.counts, o.histogram?.edges, o.fidelity?.disagreements, sc?.token, sc?.predicted, sc?.preActivation]
  const numbers = [o.nSeq, o.seqLen, o.elapsedSec, o.preActivation, o.dotResidMid]
  return (
    o.feature === point.feature &&
    o.convention === convention &&
    samePoint &&
    arrays.every(Array.isArray) &&
    // Saved before the firing list existed: no list, not a malformed one.
    (o.fidelity?.firingDisagreements === undefined || Array.isArray(o.fidelity.firingDisagreements)) &&
    numbers.every((x) => typeof x === 'number') &&
    o.histogram!.edges.length === o.histogram!.counts.length + 1
  )
}

/**
 * Whole-corpus activation scores (trace.corpusScores): a job of the jobs store (main runs one at a time),
 * owned by the trace tab and convention that started it, and each trace tab's last result.
 */
export const useCorpusScoresStore = defineStore('corpusScores', () => {
  const jobs = useJobsStore()
  const entries = ref<Record<string, CorpusScoresEntry>>({})
  const running = computed<RunningCorpusScores | null>(() => {
    const job = jobs.ofKind('trace.corpusScores')
    return job ? { key: job.owner ?? '', jobId: job.jobId, progress: job.progress } : null
  })
  /** The rate of the last job, kept after it ends. */
  const lastRate = computed(() => jobs.lastRate['trace.corpusScores'] ?? null)
  /** Keys of closed tabs whose job is still ending: its outcome is not kept. */
  const dropped = new Set<string>()
  let listening = false

  function entry(key: string): CorpusScoresEntry | undefined {
    return entries.value[key]
  }

  function listen(): void {
    if (listening) return
    listening = true
    jobs.listen()
    jobs.onDone((e, job) => {
      if (e.kind === 'trace.corpusScores' && job?.owner) void finish(job.owner, e)
    })
  }

  async function finish(key: string, e: Done): Promise<void> {
    const previous = entries.value[key]?.result ?? null
    let result = previous
    let error = e.outcome === 'failed' ? (e.error?.message ?? 'the corpus-scores job failed') : null
    if (e.outcome === 'done') {
      try {
        result = markRaw(e.result ?? (await call('trace.corpusScores.result', { jobId: e.jobId })))
      } catch (err) {
        error = errorMessage(err)
      }
    }
    if (!dropped.delete(key)) entries.value[key] = { result, outcome: e.outcome, error }
  }

  async function start(tabId: string, point: TracePointRequest, convention: TraceConvention, totalTokens: number): Promise<void> {
    if (running.value) return
    listen()
    const key = corpusScoresKey(tabId, convention)
    await startEntryJob(entries.value, key, entries.value[key]?.result ?? null, () =>
      jobs.start('trace.corpusScores', { point, convention }, { totalTokens, owner: key }),
    )
  }

  async function cancel(): Promise<void> {
    const job = running.value
    if (job) await cancelEntryJob(entries.value, job.key, () => jobs.cancel(job.jobId))
  }

  /** A closed trace tab: its results go, and a job it started is cancelled. */
  function forget(tabId: string): void {
    for (const key of Object.keys(entries.value)) if (key.startsWith(`${tabId}|`)) delete entries.value[key]
    const job = running.value
    if (job?.key.startsWith(`${tabId}|`)) {
      dropped.add(job.key)
      void cancel()
    }
  }

  /** The finished results of a trace tab, per convention, as a session keeps them. */
  function saved(tabId: string): Partial<Record<TraceConvention, CorpusScoresJson>> {
    const out: Partial<Record<TraceConvention, CorpusScoresJson>> = {}
    for (const c of ['v', 'u'] as const) {
      const r = entries.value[corpusScoresKey(tabId, c)]?.result
      if (r) out[c] = r
    }
    return out
  }

  /**
   * Puts back a trace tab's results from a session file. The file is the user's and may come from another
   * version: a result that is not for this point and convention, or lacks what the panel reads, is skipped.
   * Returns how many were restored.
   */
  function restoreSaved(tabId: string, point: TracePointRequest, value: unknown): number {
    if (!value || typeof value !== 'object') return 0
    let n = 0
    for (const c of ['v', 'u'] as const) {
      const r = (value as Record<string, unknown>)[c]
      if (!isCorpusScores(r, point, c)) continue
      entries.value[corpusScoresKey(tabId, c)] = { result: markRaw(r), outcome: null, error: null }
      n++
    }
    return n
  }

  return { entries, running, lastRate, entry, listen, start, cancel, forget, saved, restoreSaved }
})
