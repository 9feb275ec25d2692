// The compute host: the entry of every process main starts for native work (main/jobs/child.ts is its
// bootstrap). One kind of process answers the trace channels for the open bundle (compute-service.ts);
// each long job runs in a process of its own kind, ended to cancel it. Loaded as TypeScript through tsx
// from the sources, and as compute-host.js, an entry of the electron-vite main build, in the app.
// Each kind's code is imported when a process of that kind starts: the compute process never loads SQLite.
import { FtError, toIpcError, type IpcError } from '../../common/errors'
import { serveHost, type HostService, type ServiceFactory } from '../jobs/child'
import { RunCancelledError } from '../compute/run-gate'
import { isTraceInputError } from '../trace'
import type { BuildJobData } from '../cache/job'
import type { CorpusScoresJobData } from '../trace/corpus-scores-job'
import type { AtlasJobData } from '../trace/atlas-job'
import type { ComputeInit } from './compute-service'

/** A job's service: its one request, 'run', runs the job and reports its progress. */
function job<D>(run: (data: D, progress: (p: unknown) => void) => Promise<unknown>): ServiceFactory {
  return async (data) => {
    const service: HostService = { info: null, handle: (_op, _payload, ctx) => run(data as D, (p) => ctx.progress(p)) }
    return service
  }
}

/** Errors as the contract carries them: the trace code's input errors are the request's fault. */
function hostError(error: unknown): IpcError {
  if (isTraceInputError(error)) return { code: 'invalid_request', message: (error as Error).message }
  if (error instanceof RunCancelledError) return toIpcError(new FtError('busy', error.message))
  return toIpcError(error)
}

serveHost(
  {
    compute: async (data) => (await import('./compute-service')).startComputeService(data as ComputeInit),
    'cache.build': job(async (data: BuildJobData, progress) => (await import('../cache/job')).runCacheBuild(data, progress)),
    'trace.corpusScores': job(async (data: CorpusScoresJobData, progress) => (await import('../trace/corpus-scores-job')).runCorpusScores(data, progress)),
    'trace.atlas': job(async (data: AtlasJobData, progress) => (await import('../trace/atlas-job')).runAtlas(data, progress)),
  },
  hostError,
)
