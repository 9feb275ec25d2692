import { defineStore } from 'pinia'
import { ref } from 'vue'
import type { JobDone, JobKind, JobOutcome, JobProgress, RequestIn, ResponseOf } from '../../common/contract'
import { call, errorMessage, onPush } from '../api'

/** A job main is running: its latest progress, and who in the page started it (e.g. a trace tab's key). */
export interface RunningJob {
  kind: JobKind
  jobId: string
  progress: JobProgress
  owner: string | null
}

/** What starting a job needs besides its request: where its bar begins, and who owns it. */
export interface JobStart {
  doneTokens?: number
  totalTokens: number
  owner?: string
}

/**
 * Every long job (the cache build, whole-corpus scores) the one way: the page picks the job's id, asks the
 * channel of its kind to start it, and follows it by id through main's 'job.progress' and 'job.done'
 * pushes; job.cancel ends any of them. The cache and corpus-scores stores build their views on this one.
 */
export const useJobsStore = defineStore('jobs', () => {
  /** By job id; markRaw is not needed: a handful of small objects. */
  const running = ref<Record<string, RunningJob>>({})
  /** The rate of the last job of each kind, kept after it ends: the figure worth comparing between machines. */
  const lastRate = ref<Partial<Record<JobKind, number>>>({})
  const progressListeners = new Set<(p: JobProgress) => void>()
  const doneListeners = new Set<(e: JobDone, job: RunningJob | null) => void>()
  let listening = false

  /** Follows a job the page did not start (another window's, or one that ran before a reload). */
  function adopt(p: JobProgress): void {
    const known = running.value[p.jobId]
    running.value[p.jobId] = { kind: p.kind, jobId: p.jobId, progress: p, owner: known?.owner ?? null }
  }

  function listen(): void {
    if (listening) return
    listening = true
    onPush('job.progress', (p) => {
      adopt(p)
      progressListeners.forEach((cb) => cb(p))
    })
    onPush('job.done', (e) => {
      const job = running.value[e.jobId] ?? null
      if (job && job.progress.tokensPerSec > 0) lastRate.value = { ...lastRate.value, [e.kind]: job.progress.tokensPerSec }
      delete running.value[e.jobId]
      doneListeners.forEach((cb) => cb(e, job))
    })
  }

  /** The running job of a kind (main runs one of each at a time). */
  function ofKind(kind: JobKind): RunningJob | null {
    return Object.values(running.value).find((j) => j.kind === kind) ?? null
  }

  /**
   * Starts a job of `kind` with an id made here; its bar shows at once. Throws what main answers (e.g.
   * `busy` while another job of the kind runs).
   */
  async function start<K extends JobKind>(kind: K, request: Omit<RequestIn<K>, 'jobId'>, at: JobStart): Promise<ResponseOf<K>> {
    listen()
    const jobId = crypto.randomUUID()
    const progress: JobProgress = { kind, jobId, phase: 'compute', doneTokens: at.doneTokens ?? 0, totalTokens: at.totalTokens, tokensPerSec: 0, etaSec: null }
    // Known before main answers: a fast job's pushes may arrive first.
    running.value[jobId] = { kind, jobId, progress, owner: at.owner ?? null }
    try {
      return await call(kind, { ...request, jobId } as RequestIn<K>)
    } catch (err) {
      delete running.value[jobId]
      throw err
    }
  }

  async function cancel(jobId: string): Promise<boolean> {
    return (await call('job.cancel', { jobId })).cancelled
  }

  function onProgress(cb: (p: JobProgress) => void): () => void {
    progressListeners.add(cb)
    return () => progressListeners.delete(cb)
  }

  /** `job` is the page's record of it (with its owner), when the page followed it. */
  function onDone(cb: (e: JobDone, job: RunningJob | null) => void): () => void {
    doneListeners.add(cb)
    return () => doneListeners.delete(cb)
  }

  return { running, lastRate, listen, adopt, ofKind, start, cancel, onProgress, onDone }
})

/** What a job's owner in the page (a feature, a trace tab) shows: its last result, how its last job ended. */
export interface JobEntry<R> {
  result: R | null
  outcome: JobOutcome | null
  error: string | null
}

/**
 * Starts an owner's job: its entry keeps `previous` (the last result) and loses the last outcome; a start
 * main refuses (e.g. `busy`: another window started a job) becomes the entry's failure.
 */
export async function startEntryJob<K extends string | number, R>(entries: Record<K, JobEntry<R>>, key: K, previous: R | null, start: () => Promise<unknown>): Promise<void> {
  entries[key] = { result: previous, outcome: null, error: null }
  try {
    await start()
  } catch (err) {
    entries[key] = { result: entries[key]?.result ?? null, outcome: 'failed', error: errorMessage(err) }
  }
}

/** Cancels an owner's running job; a cancel main refuses becomes the entry's error. */
export async function cancelEntryJob<K extends string | number, R>(entries: Record<K, JobEntry<R>>, key: K, cancel: () => Promise<unknown>): Promise<void> {
  try {
    await cancel()
  } catch (err) {
    entries[key] = { ...(entries[key] ?? { result: null, outcome: null }), error: errorMessage(err) }
  }
}
