// A background job in a worker thread of its own (the cache build, whole-corpus activation scores): main
// starts the worker, relays its progress with the job id, and cancels it. The job's worker posts
// JobMessages; `ended` always settles, once the thread has exited.
//
// Cancelling is cooperative: main raises a flag in shared memory and the worker stops at its next
// progress report, between two ONNX Runtime runs. Terminating the thread while run() is inside native
// code aborts the whole process (onnxruntime-node throws a C++ Napi::Error that nothing catches:
// "terminate called after throwing an instance of 'Napi::Error'"; seen cancelling a demo-bundle build).
// terminate() stays as the last resort for a worker that does not stop within CANCEL_GRACE_MS.
import { randomUUID } from 'node:crypto'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import type { IpcError } from '../../common/contract'

/** What a job's worker posts to main. */
export type JobMessage<P, R> = { type: 'progress'; progress: P } | { type: 'done'; value: R } | { type: 'error'; error: IpcError }

export type JobEnd<R> = { outcome: 'done'; value: R } | { outcome: 'cancelled' } | { outcome: 'failed'; error: IpcError }

export interface WorkerJob<P, R> {
  readonly id: string
  /** The last progress the worker reported. */
  readonly progress: P | null
  /** Settles when the worker has exited (never rejects). */
  readonly ended: Promise<JobEnd<R>>
  cancel(): Promise<void>
}

/**
 * Where a job's worker code is, relative to the calling module (its import.meta.url, passed as `here`; kept
 * in a variable so that Vite leaves the `new URL` calls alone instead of bundling the files as assets).
 */
export interface JobEntry {
  /** The worker's TypeScript source, e.g. './worker.ts'. */
  source: string
  /** Candidate built files, first match wins: the worker is an entry of the main build (electron.vite.config.ts). */
  built: string[]
  /** What the worker is called in error messages ("cache build worker"). */
  label: string
}

/**
 * From TypeScript sources (tsx, vitest) the worker is the .ts file, started through tsx's register():
 * Node 20 does not apply a parent's loader to a worker's entry file. In the electron-vite build it is an
 * entry of its own next to the bundled main (or one folder up when the caller lands in a shared chunk).
 */
function spawnJobWorker(entry: JobEntry, workerData: unknown, here: string): Worker {
  if (here.endsWith('.ts')) {
    // The ESM build of tsx's API; require.resolve finds its CommonJS twin next to it.
    const tsxApi = pathToFileURL(createRequire(here).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href
    const source = new URL(entry.source, here).href
    const boot = `import(${JSON.stringify(tsxApi)}).then(({ register }) => { register(); return import(${JSON.stringify(source)}) })`
    return new Worker(boot, { eval: true, workerData })
  }
  for (const rel of entry.built) {
    const url = new URL(rel, here)
    if (existsSync(fileURLToPath(url))) return new Worker(url, { workerData })
  }
  throw new Error(`the ${entry.label} is not built: none of ${entry.built.join(', ')} exists next to ${here} (each job worker is an entry of the main build, electron.vite.config.ts)`)
}

const EXIT_GRACE_MS = 5000
const CANCEL_GRACE_MS = 120_000

/** Thrown inside a job's worker when main has asked it to stop; the worker then exits without a result. */
export class JobCancelledError extends Error {
  constructor() {
    super('the job was cancelled')
    this.name = 'JobCancelledError'
  }
}

/** For a job's worker: throws JobCancelledError once main has cancelled the job (call it between runs). */
export function throwIfCancelled(data: { cancelFlag?: SharedArrayBuffer }): void {
  if (data.cancelFlag && Atomics.load(new Int32Array(data.cancelFlag), 0) !== 0) throw new JobCancelledError()
}

/** Starts a job's worker with `{ ...data, jobId, cancelFlag }` as its workerData. */
export function startWorkerJob<P, R>(entry: JobEntry, here: string, data: object, onProgress: (p: P) => void): WorkerJob<P, R> {
  const id = randomUUID()
  const cancelFlag = new SharedArrayBuffer(4)
  const worker = spawnJobWorker(entry, { ...data, jobId: id, cancelFlag }, here)
  let progress: P | null = null
  let end: JobEnd<R> | null = null
  let cancelled = false
  const ended = new Promise<JobEnd<R>>((resolve) => {
    worker.on('message', (m: JobMessage<P, R>) => {
      if (m.type === 'progress') {
        progress = m.progress
        onProgress(m.progress)
        return
      }
      end = m.type === 'done' ? { outcome: 'done', value: m.value } : { outcome: 'failed', error: m.error }
      // The worker has said its last word; a handle left open in a native library must not keep the
      // job (and the busy flag) alive, so it gets a moment to exit on its own and is then terminated.
      setTimeout(() => void worker.terminate(), EXIT_GRACE_MS).unref()
    })
    worker.on('error', (e) => {
      end ??= { outcome: 'failed', error: { code: 'internal', message: `${entry.label} crashed: ${e.message}` } }
    })
    worker.on('exit', (code) => {
      if (cancelled && end?.outcome !== 'done') resolve({ outcome: 'cancelled' })
      else resolve(end ?? { outcome: 'failed', error: { code: 'internal', message: `${entry.label} exited with code ${code}` } })
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
      Atomics.store(new Int32Array(cancelFlag), 0, 1)
      const last = setTimeout(() => void worker.terminate(), CANCEL_GRACE_MS)
      await ended
      clearTimeout(last)
    },
  }
}
