// The cache build's thread: it opens its own bundle, engine and database connection, so main's event
// loop never waits on ONNX Runtime or SQLite. A cancel stops it after the chunk in hand; the committed
// chunks stay.
import { parentPort, workerData } from 'node:worker_threads'
import { loadBundle } from '../bundle'
import type { ComputeEngine } from '../compute/api'
import { createEngine } from '../compute/engine'
import { runBuild } from './build'
import { cacheKeyOf, logitWeightsOf } from './bundle-link'
import { computeLogitTable } from './logit-table'
import { inspectCacheFile, openCacheDb } from './schema'
import { FtError } from '../../common/errors'
import type { BuildWorkerData, WorkerMessage } from './job'
import { toIpcError } from '../../common/errors'
import { JobCancelledError, throwIfCancelled } from '../jobs/worker-job'

async function main(data: BuildWorkerData): Promise<void> {
  const post = (m: WorkerMessage): void => parentPort?.postMessage(m)
  let engine: ComputeEngine | null = null
  let db: ReturnType<typeof openCacheDb> | null = null
  try {
    const bundle = await loadBundle(data.bundleDir)
    // main checked this before starting the job; the file may have been replaced since.
    const file = inspectCacheFile(data.cachePath)
    if (file.kind === 'foreign' || file.kind === 'corrupt') {
      throw new FtError(file.kind === 'foreign' ? 'cache_foreign' : 'cache_corrupt', `the cache file cannot be built into: ${file.reason}; it was left as it is`)
    }
    engine = await createEngine(bundle)
    db = openCacheDb(data.cachePath)
    await runBuild({
      db,
      engine,
      key: cacheKeyOf(bundle),
      corpus: bundle.tokens.data,
      vocabSize: bundle.config.model.d_vocab,
      rebuild: data.rebuild,
      chunkSeqs: data.chunkSeqs,
      jobId: data.jobId,
      pauseMsPerChunk: data.pauseMsPerChunk,
      onProgress: (progress) => {
        post({ type: 'progress', progress })
        throwIfCancelled(data)
      },
      logitTable: async () => {
        const weights = logitWeightsOf(bundle)
        return weights ? computeLogitTable(weights) : null
      },
    })
    post({ type: 'done', value: { provider: engine.provider } })
  } catch (error) {
    if (!(error instanceof JobCancelledError)) post({ type: 'error', error: toIpcError(error) })
  } finally {
    db?.close()
    await engine?.dispose()
  }
}

void main(workerData as BuildWorkerData)
