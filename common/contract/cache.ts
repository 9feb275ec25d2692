// The activation cache: its states, and the channel that builds it (a job: common/contract/jobs.ts).
import { z } from 'zod'
import type { MovedAside } from './app'
import { channel, empty } from './channel'
import { jobId, type JobProgress } from './jobs'

export type CacheStateName =
  | 'missing' // no cache file, or an empty one
  | 'partial' // some chunks committed, build not running (killed, cancelled or crashed): cache.build resumes
  | 'building'
  | 'ready'
  | 'stale' // built for different hashes or schema: queries refused, cache.build rebuilds
  | 'corrupt' // cannot be read, or claims to be complete and is not: cache.build moves it aside and starts over
  | 'foreign' // another program's SQLite file: left as it is; choose another cache path

/** A build's progress as the build reports it (main adds the job kind). */
export type CacheProgress = Omit<JobProgress, 'kind'>

export interface CacheState {
  state: CacheStateName
  path: string
  doneTokens: number
  totalTokens: number
  sizeBytes: number
  /** Why a cache is stale, corrupt or foreign, in words (which hash or version differs, what is damaged). */
  reason?: string
  /** ISO time the build finished (state 'ready'). */
  builtAt?: string
  /**
   * State 'ready': whether it holds every activation (the full table) besides the summary that the feature
   * views read (stats, histogram, top activations, intervals, logit effects, token index).
   */
  fullTable?: boolean
  /**
   * State 'ready' whose build stopped after the summary and before its logit step (killed, cancelled):
   * the views answer, each feature's logit effects computed from the weights; cache.build finishes the step.
   */
  logitsPending?: boolean
  /**
   * While this cache is not ready: the summary shipped in the bundle folder, which the feature views read
   * meanwhile (read-only; a build writes the cache at `path`, which then takes over).
   */
  shipped?: { path: string; builtAt: string; fullTable: boolean; sizeBytes: number }
  /** The running job, when state is 'building'. */
  job?: JobProgress
}

export const cacheChannels = {
  'cache.status': channel<CacheState>()(empty),
  /**
   * Starts (or resumes) a build as job `jobId` (one build at a time: `busy` while another runs);
   * `rebuild` discards an existing or stale cache first; `full` keeps every activation besides the summary
   * (a finished summary cache asked for it is built again). Cancel it with job.cancel.
   */
  'cache.build': channel<{ jobId: string; movedAside?: MovedAside }>()(
    z.strictObject({ jobId, rebuild: z.boolean().default(false), full: z.boolean().default(false) }),
  ),
}
