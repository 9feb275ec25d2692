// The cache build as a job: main/app starts it in a process of its own (the compute host entry,
// main/app/compute-host.ts), which opens its own bundle, engine and database connection, so neither main's
// event loop nor its memory waits on ONNX Runtime or SQLite. Cancelling ends that process; whatever it
// committed stays (each chunk commits on its own, the summary in one transaction, the logit effects in
// another), and the next build resumes from there.
import type { CacheProgress, ExecutionProviderName } from '../../common/contract'
import { FtError } from '../../common/errors'
import { loadBundle } from '../bundle'
import { OrtEngine } from '../compute/ort-engine'
import { runBuild, type Shard } from './build'
import { cacheKeyOf, logitWeightsOf } from './bundle-link'
import { computeLogitTable } from './logit-table'
import { inspectCacheFile, openCacheDb } from './schema'

export interface BuildJobData {
  jobId: string
  bundleDir: string
  cachePath: string
  rebuild?: boolean
  /** Keep the full table of every firing (BuildInput.full). */
  full?: boolean
  /** Tuning and test hooks (see BuildInput). */
  chunkSeqs?: number
  pauseMsPerChunk?: number
  /** Finalize's memory bound (BuildInput.maxEntriesPerPass). */
  maxEntriesPerPass?: number
  /** Build only this shard's chunks, for `cache merge` (BuildInput.shard). */
  shard?: Shard
  /** How often the partial summary is written (BuildInput.partialEveryMs). */
  partialEveryMs?: number | null
}

/** Builds (or resumes) the cache; resolves with the provider it ran on. */
export async function runCacheBuild(data: BuildJobData, onProgress: (p: CacheProgress) => void): Promise<{ provider: ExecutionProviderName }> {
  const bundle = await loadBundle(data.bundleDir)
  // main checked this before starting the job; the file may have been replaced since.
  const file = inspectCacheFile(data.cachePath)
  if (file.kind === 'foreign' || file.kind === 'corrupt') {
    throw new FtError(file.kind === 'foreign' ? 'cache_foreign' : 'cache_corrupt', `the cache file cannot be built into: ${file.reason}; it was left as it is`)
  }
  const engine = await OrtEngine.create(bundle, { eagerSae: true })
  const db = openCacheDb(data.cachePath)
  try {
    await runBuild({
      db,
      engine,
      key: cacheKeyOf(bundle),
      corpus: bundle.tokens.data,
      vocabSize: bundle.config.model.d_vocab,
      rebuild: data.rebuild,
      full: data.full,
      chunkSeqs: data.chunkSeqs,
      jobId: data.jobId,
      pauseMsPerChunk: data.pauseMsPerChunk,
      shard: data.shard,
      maxEntriesPerPass: data.maxEntriesPerPass,
      partialEveryMs: data.partialEveryMs,
      onProgress,
      logitTable: async () => {
        const weights = logitWeightsOf(bundle)
        return weights ? computeLogitTable(weights) : null
      },
    })
    return { provider: engine.provider }
  } finally {
    db.close()
    await engine.dispose()
  }
}
