// Long jobs (the cache build, whole-corpus activation scores, any later one): one model for all. The page
// chooses a job's id (crypto.randomUUID()) and sends it with the channel that starts the job; main pushes
// 'job.progress' with the kind and id, then one 'job.done'; 'job.cancel' ends a job of any kind. Each job
// runs in a process of its own in main, so cancelling ends that process (what it committed stays).
import { z } from 'zod'
import { channel } from './channel'

/** Each kind is named after the channel that starts it. */
export type JobKind = 'cache.build' | 'trace.corpusScores' | 'trace.atlas'

/** A job id the page chose: 1-64 letters, digits, '-' or '_' (a UUID). */
export const jobId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'a job id is 1-64 letters, digits, - or _ (e.g. crypto.randomUUID())')

/**
 * The cache build computes, then finalizes (the summary answers from then on), then stores every feature's
 * logit effects ('logits'); corpus scores only compute.
 */
export type JobPhase = 'compute' | 'finalize' | 'logits'

export interface JobProgress {
  kind: JobKind
  jobId: string
  phase: JobPhase
  doneTokens: number
  totalTokens: number
  tokensPerSec: number
  /** Seconds left at the current rate; null until the rate is known. */
  etaSec: number | null
}

export type JobOutcome = 'done' | 'cancelled' | 'failed'

export const jobChannels = {
  /** Cancels a running job of any kind: `cancelled` is false when no job with this id runs. */
  'job.cancel': channel<{ cancelled: boolean }>()(z.strictObject({ jobId })),
}
