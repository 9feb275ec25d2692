// The activation cache: its states, build progress, and the channels that build and cancel it.
import { z } from 'zod'
import type { MovedAside } from './app'
import { channel, empty } from './channel'

export type CacheStateName =
  | 'missing' // no cache file, or an empty one
  | 'partial' // some chunks committed, build not running (killed, cancelled or crashed): cache.build resumes
  | 'building'
  | 'ready'
  | 'stale' // built for different hashes or schema: queries refused, cache.build rebuilds
  | 'corrupt' // cannot be read, or claims to be complete and is not: cache.build moves it aside and starts over
  | 'foreign' // another program's SQLite file: left as it is; choose another cache path

export interface CacheProgress {
  jobId: string
  phase: 'compute' | 'finalize'
  doneTokens: number
  totalTokens: number
  tokensPerSec: number
  /** Seconds left at the current rate; null until the rate is known. */
  etaSec: number | null
}

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
  /** The running job, when state is 'building'. */
  job?: CacheProgress
}

export const cacheChannels = {
  'cache.status': channel<CacheState>()(empty),
  /** Starts (or resumes) a build; `rebuild` discards an existing or stale cache first. */
  'cache.build': channel<{ jobId: string; movedAside?: MovedAside }>()(z.strictObject({ rebuild: z.boolean().default(false) })),
  'cache.cancel': channel<{ cancelled: boolean }>()(z.strictObject({ jobId: z.string().min(1) })),
}
