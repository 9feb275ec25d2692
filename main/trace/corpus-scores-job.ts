// Main's side of a whole-corpus activation-scores job (issue 5 §2): a worker thread of its own, with its
// own bundle and engine (main/trace/corpus-scores-worker.ts), so neither main's event loop nor the compute
// worker that answers traces waits on a million-token pass. Progress is pushed with the job id; cancel
// terminates the thread.
import type { CorpusScoresJson, CorpusScoresProgress, TraceConvention, TracePointRequest } from '../../common/contract'
import { startWorkerJob, type JobMessage, type WorkerJob } from '../jobs/worker-job'

export interface CorpusScoresWorkerData {
  jobId: string
  /** Raised by main to cancel (main/jobs/worker-job.ts); the worker stops at its next progress report. */
  cancelFlag?: SharedArrayBuffer
  bundleDir: string
  point: TracePointRequest
  convention: TraceConvention
  rowLimit: number
  bins: number
  scatterPoints: number
  /** Tuning and test hooks (see CorpusScoresOptions). */
  chunkSeqs?: number
  pauseMsPerChunk?: number
}

export type CorpusScoresMessage = JobMessage<CorpusScoresProgress, CorpusScoresJson>
export type CorpusScoresJob = WorkerJob<CorpusScoresProgress, CorpusScoresJson>

/** corpus-scores-worker.ts from the sources; corpus-scores-worker.js, an entry of the electron-vite main build. */
const ENTRY = { source: './corpus-scores-worker.ts', built: ['./corpus-scores-worker.js', '../corpus-scores-worker.js'], label: 'corpus-scores worker' }

export function startCorpusScoresJob(data: Omit<CorpusScoresWorkerData, 'jobId'>, onProgress: (p: CorpusScoresProgress) => void): CorpusScoresJob {
  const here = import.meta.url
  return startWorkerJob(ENTRY, here, data, onProgress)
}
