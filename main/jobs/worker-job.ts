// A background job in a worker thread of its own (the cache build, whole-corpus activation scores): main
// starts the worker, relays its progress with the job id, and cancels by terminating it, since ONNX
// Runtime's run() cannot be interrupted from inside. The job's worker posts JobMessages; `ended` always
// settles, once the thread has exited.
import { randomUUID } from 'node:crypto'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import type { IpcError } from '../ipc/contract'

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
export function spawnJobWorker(entry: JobEntry, workerData: unknown, here: string): Worker {
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

/** Starts a job's worker with `{ ...data, jobId }` as its workerData. */
export function startWorkerJob<P, R>(entry: JobEntry, here: string, data: object, onProgress: (p: P) => void): WorkerJob<P, R> {
  const id = randomUUID()
  const worker = spawnJobWorker(entry, { ...data, jobId: id }, here)
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
      await worker.terminate()
    },
  }
}
