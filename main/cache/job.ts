// Main's side of a cache build: start the worker thread, relay its progress with the job id, and
// cancel by terminating it (ONNX Runtime's run() cannot be interrupted from inside). Whatever the
// worker committed before it stopped stays, and the next build resumes from there.
import { randomUUID } from 'node:crypto'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import type { CacheProgress, ExecutionProviderName, IpcError } from '../ipc/contract'

export interface BuildWorkerData {
  jobId: string
  bundleDir: string
  cachePath: string
  rebuild?: boolean
  chunkSeqs?: number
  pauseMsPerChunk?: number
}

export type WorkerMessage =
  | { type: 'progress'; progress: CacheProgress }
  | { type: 'done'; provider: ExecutionProviderName }
  | { type: 'error'; error: IpcError }

export type JobEnd =
  | { outcome: 'done'; provider: ExecutionProviderName }
  | { outcome: 'cancelled' }
  | { outcome: 'failed'; error: IpcError }

export interface CacheJob {
  readonly id: string
  readonly progress: CacheProgress | null
  /** Settles when the worker has exited (never rejects). */
  readonly ended: Promise<JobEnd>
  cancel(): Promise<void>
}

/**
 * Starts the build worker. From the sources (tsx, vitest) it is worker.ts, loaded through tsx's
 * register() because Node 20 does not apply a parent's loader to a worker's entry file. In the
 * electron-vite build it is cache-worker.js, an entry of its own next to the bundled main (or one folder
 * up when this module lands in a shared chunk); `worker.js` is accepted for builds that named it so.
 */
function startBuildWorker(workerData: BuildWorkerData): Worker {
  const here = import.meta.url
  if (here.endsWith('.ts')) {
    const ts = new URL('./worker.ts', here).href
    // The ESM build of tsx's API; require.resolve finds its CommonJS twin next to it.
    const tsxApi = pathToFileURL(createRequire(here).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href
    const boot = `import(${JSON.stringify(tsxApi)}).then(({ register }) => { register(); return import(${JSON.stringify(ts)}) })`
    return new Worker(boot, { eval: true, workerData })
  }
  for (const rel of ['./cache-worker.js', '../cache-worker.js', './worker.js']) {
    const url = new URL(rel, here)
    if (existsSync(fileURLToPath(url))) return new Worker(url, { workerData })
  }
  throw new Error(`cache-worker.js not found next to ${here}: add main/cache/worker.ts as the cache-worker entry of the main build`)
}

const EXIT_GRACE_MS = 5000

export function startCacheJob(
  options: Omit<BuildWorkerData, 'jobId'>,
  onProgress: (p: CacheProgress) => void,
): CacheJob {
  const id = randomUUID()
  const worker = startBuildWorker({ ...options, jobId: id })
  let progress: CacheProgress | null = null
  let end: JobEnd | null = null
  let cancelled = false
  const ended = new Promise<JobEnd>((resolve) => {
    worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'progress') {
        progress = m.progress
        onProgress(m.progress)
        return
      }
      end = m.type === 'done' ? { outcome: 'done', provider: m.provider } : { outcome: 'failed', error: m.error }
      // The worker has said its last word; a handle left open in a native library must not keep the
      // job (and the busy flag) alive, so it gets a moment to exit on its own and is then terminated.
      setTimeout(() => void worker.terminate(), EXIT_GRACE_MS).unref()
    })
    worker.on('error', (e) => {
      end ??= { outcome: 'failed', error: { code: 'internal', message: `cache build worker crashed: ${e.message}` } }
    })
    worker.on('exit', (code) => {
      if (cancelled) resolve({ outcome: 'cancelled' })
      else resolve(end ?? { outcome: 'failed', error: { code: 'internal', message: `cache build worker exited with code ${code}` } })
    })
  })
  return {
    id,
    get progress() {
      return progress
    },
    ended,
    async cancel() {
      cancelled = true
      await worker.terminate()
    },
  }
}
