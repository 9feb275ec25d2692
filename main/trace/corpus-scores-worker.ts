// The corpus-scores job's thread: its own bundle and engine (ONNX Runtime's run() blocks the thread it is
// called on), main/trace's corpusScores over the whole corpus, and the result in the contract's JSON form.
import { parentPort, workerData } from 'node:worker_threads'
import { loadBundle } from '../bundle'
import { OrtEngine } from '../compute/ort-engine'
import { toIpcError } from '../../common/errors'
import { corpusScores, corpusScoresToJson, isTraceInputError } from '.'
import type { CorpusScoresMessage, CorpusScoresWorkerData } from './corpus-scores-job'
import { JobCancelledError, throwIfCancelled } from '../jobs/worker-job'

async function main(data: CorpusScoresWorkerData): Promise<void> {
  const post = (m: CorpusScoresMessage): void => parentPort?.postMessage(m)
  let engine: OrtEngine | null = null
  try {
    const bundle = await loadBundle(data.bundleDir)
    // Each chunk is projected once: keep no block beyond the newest (the engine's LRU is for traces), and
    // build no SAE session (the job never runs the SAE graph).
    engine = await OrtEngine.create(bundle, { maxBlockBytes: 0, eagerSae: false })
    const result = await corpusScores(bundle, engine, data.point, {
      convention: data.convention,
      rowLimit: data.rowLimit,
      bins: data.bins,
      scatterPoints: data.scatterPoints,
      chunkSeqs: data.chunkSeqs,
      pauseMsPerChunk: data.pauseMsPerChunk,
      jobId: data.jobId,
      onProgress: (progress) => {
        post({ type: 'progress', progress })
        throwIfCancelled(data)
      },
    })
    post({ type: 'done', value: corpusScoresToJson(result, data.jobId) })
  } catch (error) {
    if (error instanceof JobCancelledError) return
    // Main checks the point before it starts the job; a point the trace code still refuses is bad input.
    post({ type: 'error', error: isTraceInputError(error) ? { code: 'invalid_request', message: error.message } : toIpcError(error) })
  } finally {
    await engine?.dispose()
  }
}

void main(workerData as CorpusScoresWorkerData)
