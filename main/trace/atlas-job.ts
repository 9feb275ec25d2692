// The atlas as a job (issue 15 §1): main/app picks the points from the cache (main holds the cache, the job
// holds the weights) and starts this in a process of its own with its own bundle and engine, like the
// corpus scores; progress is the points' sequences run so far; cancelling ends the process.
import type { AtlasJson, CorpusScoresProgress } from '../../common/contract'
import { loadBundle } from '../bundle'
import { OrtEngine } from '../compute/ort-engine'
import { computeAtlas, type AtlasPointIn } from './atlas'

export interface AtlasJobData {
  jobId: string
  bundleDir: string
  feature: number
  points: AtlasPointIn[]
  topK: number
}

export async function runAtlas(data: AtlasJobData, onProgress: (p: CorpusScoresProgress) => void): Promise<AtlasJson> {
  const bundle = await loadBundle(data.bundleDir)
  const engine = await OrtEngine.create(bundle, { maxBlockBytes: 0 })
  try {
    const atlas = await computeAtlas(bundle, engine, data.feature, data.points, { topK: data.topK, jobId: data.jobId, onProgress })
    // Plain numbers and arrays already: nothing to convert for the wire.
    return { jobId: data.jobId, ...atlas.json }
  } finally {
    await engine.dispose()
  }
}
