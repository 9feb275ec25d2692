// Whole-corpus activation scores (issue 5 §2) as a job: main/app starts it in a process of its own (the
// compute host entry, main/app/compute-host.ts), with its own bundle and engine, so neither main nor the
// compute process that answers traces waits on a million-token pass. Progress goes out with the job id;
// cancelling ends the process.
import type { CorpusScoresJson, CorpusScoresProgress, TraceConvention, TracePointRequest } from '../../common/contract'
import { loadBundle } from '../bundle'
import { OrtEngine } from '../compute/ort-engine'
import { corpusScores, corpusScoresToJson } from './corpus-scores'

export interface CorpusScoresJobData {
  jobId: string
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

export async function runCorpusScores(data: CorpusScoresJobData, onProgress: (p: CorpusScoresProgress) => void): Promise<CorpusScoresJson> {
  const bundle = await loadBundle(data.bundleDir)
  // Each chunk is projected once: keep no block beyond the newest (the engine's LRU is for traces).
  const engine = await OrtEngine.create(bundle, { maxBlockBytes: 0 })
  try {
    const result = await corpusScores(bundle, engine, data.point, {
      convention: data.convention,
      rowLimit: data.rowLimit,
      bins: data.bins,
      scatterPoints: data.scatterPoints,
      chunkSeqs: data.chunkSeqs,
      pauseMsPerChunk: data.pauseMsPerChunk,
      jobId: data.jobId,
      onProgress,
    })
    return corpusScoresToJson(result, data.jobId)
  } finally {
    await engine.dispose()
  }
}
