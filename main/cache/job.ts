// Main's side of a cache build: a job in its own worker thread (main/jobs/worker-job.ts) that relays the
// worker's progress with the job id and cancels by terminating it (ONNX Runtime's run() cannot be
// interrupted from inside). Whatever the worker committed before it stopped stays, and the next build
// resumes from there.
import type { CacheProgress, ExecutionProviderName } from '../../common/contract'
import { startWorkerJob, type JobMessage, type WorkerJob } from '../jobs/worker-job'

export interface BuildWorkerData {
  jobId: string
  /** Raised by main to cancel (main/jobs/worker-job.ts); the worker stops at its next progress report. */
  cancelFlag?: SharedArrayBuffer
  bundleDir: string
  cachePath: string
  rebuild?: boolean
  chunkSeqs?: number
  pauseMsPerChunk?: number
}

export type WorkerMessage = JobMessage<CacheProgress, { provider: ExecutionProviderName }>
export type CacheJob = WorkerJob<CacheProgress, { provider: ExecutionProviderName }>

/** worker.ts from the sources; cache-worker.js in the electron-vite build (`worker.js` for builds that named it so). */
const ENTRY = { source: './worker.ts', built: ['./cache-worker.js', '../cache-worker.js', './worker.js'], label: 'cache build worker' }

export function startCacheJob(options: Omit<BuildWorkerData, 'jobId'>, onProgress: (p: CacheProgress) => void): CacheJob {
  const here = import.meta.url
  return startWorkerJob(ENTRY, here, options, onProgress)
}
