// THE IPC contract: every channel's request schema and response type, and the events main pushes, split
// by domain in this folder. main (main/app/handlers.ts), preload and renderer all take their types from
// here, so a renamed field fails the type check on every side. common/ is the leaf of the app: it imports
// nothing of main/, preload/ or renderer/, and the renderer type-checks it: zod and plain types only.
//
// To add a domain, write its channels in a file of its own here and spread them into `contract`; the
// handler table then fails to type-check until main implements the new channels.
import type { z } from 'zod'
import type { IpcError, Result } from '../errors'
import { appChannels, type Notice } from './app'
import { atlasChannels, type AtlasJson } from './atlas'
import { bundleChannels, type BundleProvider } from './bundle'
import { cacheChannels, type CacheState } from './cache'
import { dialogChannels } from './dialog'
import { featureChannels, labelChannels } from './features'
import { jobChannels, type JobOutcome, type JobProgress } from './jobs'
import { sessionChannels } from './session'
import { corpusScoreChannels, traceChannels, type CorpusScoresJson } from './trace'

export * from './app'
export * from './atlas'
export * from './bundle'
export * from './cache'
export * from './channel'
export * from './dialog'
export * from './features'
export * from './jobs'
export * from './session'
export * from './trace'
export type { ErrorCode, IpcError, Result } from '../errors'

export const contract = {
  ...appChannels,
  ...bundleChannels,
  ...cacheChannels,
  ...jobChannels,
  ...featureChannels,
  ...labelChannels,
  ...sessionChannels,
  ...traceChannels,
  ...corpusScoreChannels,
  ...atlasChannels,
  ...dialogChannels,
}

export type Contract = typeof contract
export type Channel = keyof Contract
export const channels = Object.keys(contract) as Channel[]

/** What a caller sends (defaults may be omitted). */
export type RequestIn<C extends Channel> = z.input<Contract[C]['request']>
/** What a handler receives, after validation and defaults. */
export type RequestOf<C extends Channel> = z.output<Contract[C]['request']>
export type ResponseOf<C extends Channel> = NonNullable<Contract[C]['__response']>[0]

/** The transport-agnostic call a preload or an HTTP client implements. */
export type Invoke = <C extends Channel>(channel: C, payload: RequestIn<C>) => Promise<Result<ResponseOf<C>>>

// ---------------------------------------------------------------------------------------------------
// Events main pushes to every window/client

/** How a job ended (once per job): finished, cancelled, or failed with the error; and what it leaves. */
export interface JobEnd {
  jobId: string
  outcome: JobOutcome
  error?: IpcError
}
export type JobDone =
  /** The cache's state after the build. */
  | (JobEnd & { kind: 'cache.build'; cache: CacheState })
  /** The result, when the job finished. */
  | (JobEnd & { kind: 'trace.corpusScores'; result?: CorpusScoresJson })
  | (JobEnd & { kind: 'trace.atlas'; result?: AtlasJson })

export interface Events {
  'job.progress': JobProgress
  'job.done': JobDone
  'workbench.notice': Notice
  'bundle.provider': BundleProvider
}
export type EventName = keyof Events
/** Every event name at runtime (a type test checks it lists exactly the keys of Events). */
export const eventNames = ['job.progress', 'job.done', 'workbench.notice', 'bundle.provider'] as const satisfies readonly EventName[]
