// Main's side of the compute worker. ONNX Runtime's run() blocks its thread, so the engine lives in a
// worker that this supervisor starts, waits for and restarts after a crash. Requests queue here and go to
// the worker one at a time: a crash or a cancel then concerns exactly the request that was running.
// A cancelled (or disposed) running request is answered at once, but its worker is left to finish the
// run: terminating a thread inside onnxruntime-node's native run() aborts the whole process ("terminate
// called after throwing an instance of 'Napi::Error'"). A worker still busy after a grace period is
// retired instead: the queue continues on a new worker, and the old thread is terminated once its run
// has returned (never while it is inside it).
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import { BundleError, type BundleErrorCode } from '../bundle/errors'
import type { BlockProjectionRequest, ComputeEngine, ExecutionProvider, HookName, SparseActs, Tensor, TraceCompute, VocabProducts, VocabProductsRequest } from './api'
import type { OrtEngineOptions } from './ort-engine'
import type { ResultValue, WireError, WorkerInit, WorkerReply, WorkerRequest } from './protocol'

/** Where the worker's code is, and whether it is TypeScript to be loaded through tsx. */
export interface WorkerEntry {
  url: URL
  typescript?: boolean
}

/**
 * From TypeScript sources (vitest, tsx) the worker is worker.ts. In the electron-vite build it is
 * compute-worker.js, a separate entry of the main build, next to index.js (or one folder up when this
 * module ended up in a shared chunk).
 */
export function defaultWorkerEntry(here: string = import.meta.url): WorkerEntry {
  if (here.endsWith('.ts')) return { url: new URL('./worker.ts', here), typescript: true }
  for (const rel of ['./compute-worker.js', '../compute-worker.js']) {
    const url = new URL(rel, here)
    if (existsSync(fileURLToPath(url))) return { url }
  }
  throw new Error(`compute-worker.js not found next to ${here}: add main/compute/worker.ts as the compute-worker entry of the main build`)
}

/**
 * Node 20 ignores `--import tsx` in a Worker's execArgv for the worker's own entry module, so a TypeScript
 * worker starts from a tiny ESM-importing bootstrap that registers tsx's hooks in the new thread first.
 */
function spawn(entry: WorkerEntry, workerData: WorkerInit): Worker {
  if (!entry.typescript) return new Worker(entry.url, { workerData })
  const cjs = createRequire(import.meta.url).resolve('tsx/esm/api')
  const mjs = cjs.replace(/\.cjs$/, '.mjs')
  const api = existsSync(mjs) ? pathToFileURL(mjs).href : 'tsx/esm/api'
  const code = `import(${JSON.stringify(api)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.url.href)}) })`
  return new Worker(code, { eval: true, workerData })
}

export class ComputeCancelledError extends Error {
  override readonly name = 'ComputeCancelledError'
}

export class ComputeWorkerCrashedError extends Error {
  override readonly name = 'ComputeWorkerCrashedError'
}

export interface ComputeWorkerOptions {
  bundleDir: string
  engine?: OrtEngineOptions
  entry?: WorkerEntry
  /** How long a cancelled running request may keep the worker busy before it is retired (120 s). */
  finishGraceMs?: number
}

export interface RequestOptions {
  /**
   * Aborting cancels the request: dropped if queued; if running, rejected at once while the worker
   * finishes the run (retired, and a new worker started, only if it is still busy after the grace period).
   */
  signal?: AbortSignal
}

const FINISH_GRACE_MS = 120_000

type Payload = WorkerRequest extends infer R ? (R extends WorkerRequest ? Omit<R, 'id'> : never) : never

interface Job {
  id: number
  payload: Payload
  transfer: ArrayBuffer[]
  resolve(value: ResultValue): void
  reject(error: Error): void
  cleanup(): void
  /** Resolves when the worker is done with the job (its reply, a crash, or termination). */
  over: Promise<void>
  end(): void
  /** Set once the job is cancelled: its result, if any comes, is dropped. */
  cancelled?: boolean
  /** Set once the running job is cancelled: retires the worker if it is still busy by then. */
  grace?: ReturnType<typeof setTimeout>
}

interface Running {
  worker: Worker
  ready: Promise<void>
  isReady: boolean
}

function fromWire(e: WireError): Error {
  if (e.name === 'BundleError') return new BundleError((e.code ?? 'bad-config') as BundleErrorCode, e.message)
  const err = e.name === 'RangeError' ? new RangeError(e.message) : new Error(e.message)
  if (err.name !== e.name) err.name = e.name
  return err
}

export class ComputeWorkerClient implements ComputeEngine, TraceCompute {
  private current: Running | undefined
  private readonly queue: Job[] = []
  private active: Job | undefined
  private nextId = 1
  private disposed = false
  private _provider: ExecutionProvider = 'cpu'
  /** How many workers were started (1 + restarts), for diagnostics and tests. */
  starts = 0

  private constructor(private readonly opts: ComputeWorkerOptions) {}

  /** Starts the worker and waits until its engine is ready (so a bad bundle fails here, once). */
  static async start(opts: ComputeWorkerOptions): Promise<ComputeWorkerClient> {
    const client = new ComputeWorkerClient(opts)
    await client.ensureWorker()
    return client
  }

  get provider(): ExecutionProvider {
    return this._provider
  }

  private ensureWorker(): Promise<void> {
    if (this.current) return this.current.ready
    const entry = this.opts.entry ?? defaultWorkerEntry()
    const init: WorkerInit = { bundleDir: this.opts.bundleDir, engine: this.opts.engine ?? {} }
    const worker = spawn(entry, init)
    this.starts++
    const ready = new Promise<void>((resolve, reject) => {
      worker.on('message', (msg: WorkerReply) => {
        if (msg.type === 'ready') {
          this._provider = msg.provider
          if (this.current?.worker === worker) this.current.isReady = true
          resolve()
        } else if (msg.type === 'init-error') {
          this.forget(worker)
          void worker.terminate()
          reject(fromWire(msg.error))
        } else this.onReply(worker, msg)
      })
      worker.on('error', (e) => {
        reject(e)
        this.onGone(worker, `the compute worker crashed: ${e.message}`)
      })
      worker.on('exit', (code) => {
        reject(new ComputeWorkerCrashedError(`the compute worker exited (code ${code}) before it was ready`))
        this.onGone(worker, `the compute worker exited unexpectedly (code ${code})`)
      })
    })
    this.current = { worker, ready, isReady: false }
    return ready
  }

  /** Drops `worker` as the current one (its later events are then ignored). */
  private forget(worker: Worker): void {
    if (this.current?.worker === worker) this.current = undefined
  }

  private onReply(worker: Worker, msg: WorkerReply): void {
    const job = this.active
    if (worker !== this.current?.worker || !job || !('id' in msg) || msg.id !== job.id) return
    this.active = undefined
    this.ended(job)
    if (msg.type === 'result') job.resolve(msg.value)
    else if (msg.type === 'error') job.reject(fromWire(msg.error))
    this.pump()
  }

  /** The worker died on its own: fail the request it was running, then bring a fresh worker up at once. */
  private onGone(worker: Worker, reason: string): void {
    if (worker !== this.current?.worker) return
    const wasReady = this.current.isReady
    this.current = undefined
    const job = this.active
    this.active = undefined
    if (job) {
      this.ended(job)
      job.reject(new ComputeWorkerCrashedError(`${reason}; the request was lost, and a new worker serves the next one`))
    }
    if (this.disposed) return
    // Restart eagerly so the next request finds a warm worker (a failed start surfaces on that request);
    // a worker that never became ready is not restarted here, or a broken install would loop.
    if (wasReady) this.ensureWorker().catch(() => undefined)
    this.pump()
  }

  private pump(): void {
    if (this.active || this.disposed || this.queue.length === 0) return
    const job = this.queue.shift()!
    this.active = job
    this.ensureWorker().then(
      () => {
        if (this.active !== job || !this.current) return
        if (job.cancelled) {
          // Cancelled while the worker was starting: nothing was sent, so nothing is waited for.
          this.active = undefined
          this.ended(job)
          this.pump()
          return
        }
        this.current.worker.postMessage({ ...job.payload, id: job.id }, job.transfer)
      },
      (e: Error) => {
        if (this.active !== job) return
        this.active = undefined
        this.ended(job)
        job.reject(e)
        this.pump()
      },
    )
  }

  private request(payload: Payload, transfer: ArrayBuffer[], opts: RequestOptions = {}): Promise<ResultValue> {
    if (this.disposed) return Promise.reject(new ComputeCancelledError('the compute worker client has been disposed'))
    const { signal } = opts
    if (signal?.aborted) return Promise.reject(new ComputeCancelledError('the request was cancelled'))
    return new Promise<ResultValue>((resolve, reject) => {
      let end!: () => void
      const over = new Promise<void>((r) => (end = r))
      const job: Job = { id: this.nextId++, payload, transfer, resolve, reject, cleanup: () => signal?.removeEventListener('abort', onAbort), over, end }
      const onAbort = (): void => this.cancelJob(job)
      signal?.addEventListener('abort', onAbort, { once: true })
      this.queue.push(job)
      this.pump()
    })
  }

  /** The worker is done with `job` (or gone): stop its grace timer and wake whoever waits for it. */
  private ended(job: Job): void {
    if (job.grace) clearTimeout(job.grace)
    job.cleanup()
    job.end()
  }

  private cancelJob(job: Job): void {
    job.cancelled = true
    const queued = this.queue.indexOf(job)
    if (queued >= 0) {
      this.queue.splice(queued, 1)
      this.ended(job)
    } else if (this.active === job) {
      // Answered now; the worker finishes the run (its result is dropped) unless it is still busy after
      // the grace period. The queue waits for it: the worker runs one request at a time.
      job.cleanup()
      job.grace ??= setTimeout(() => this.retireStuck(job), this.opts.finishGraceMs ?? FINISH_GRACE_MS)
      job.grace.unref?.()
    } else return
    job.reject(new ComputeCancelledError('the request was cancelled'))
  }

  /**
   * A cancelled request whose worker is still busy after the grace period: the queue moves on to a new
   * worker, and the old thread is terminated when its run returns (its reply), which is safe; a thread
   * that never returns is left alone rather than risk aborting the process.
   */
  private retireStuck(job: Job): void {
    if (this.active !== job) return
    this.active = undefined
    const worker = this.current?.worker
    if (worker) {
      this.forget(worker)
      worker.unref() // it must not keep the process alive
      worker.once('message', () => void worker.terminate())
    }
    job.end()
    this.pump()
  }

  /** Copies the tokens into a buffer of their own, so transferring it never detaches the caller's array. */
  private static ownTokens(tokens: Int32Array): Int32Array {
    return tokens.slice()
  }

  async saeActs(tokens: Int32Array, nSeq: number, seqLen: number, opts?: RequestOptions): Promise<SparseActs> {
    const own = ComputeWorkerClient.ownTokens(tokens)
    return (await this.request({ op: 'saeActs', tokens: own, nSeq, seqLen }, [own.buffer as ArrayBuffer], opts)) as SparseActs
  }

  async forward(tokens: Int32Array, nSeq: number, seqLen: number, outputs: HookName[], opts?: RequestOptions): Promise<Record<string, Tensor>> {
    const own = ComputeWorkerClient.ownTokens(tokens)
    return (await this.request({ op: 'forward', tokens: own, nSeq, seqLen, outputs }, [own.buffer as ArrayBuffer], opts)) as Record<string, Tensor>
  }

  async vocabProducts(req: VocabProductsRequest, opts?: RequestOptions): Promise<VocabProducts> {
    return (await this.request({ op: 'vocabProducts', req }, [], opts)) as VocabProducts
  }

  /** The worker keeps recent blocks' hook values under their keys, so repeated keys skip the forward pass. */
  async projectBlock(req: BlockProjectionRequest, opts?: RequestOptions): Promise<Float32Array[]> {
    const own = { ...req, tokens: ComputeWorkerClient.ownTokens(req.tokens) }
    return (await this.request({ op: 'projectBlock', req: own }, [own.tokens.buffer as ArrayBuffer], opts)) as Float32Array[]
  }

  /** Supervision tests only: makes the worker die as a fault would. */
  async crashForTest(how: 'throw' | 'exit' = 'throw'): Promise<void> {
    await this.request({ op: 'crash', how }, [])
  }

  /** Supervision tests only: holds the worker's thread for `ms`, as a long run() does. */
  async blockForTest(ms: number, opts?: RequestOptions): Promise<void> {
    await this.request({ op: 'block', ms }, [], opts)
  }

  /** Cancels everything queued or running. */
  cancelAll(): void {
    for (const job of [...this.queue, ...(this.active ? [this.active] : [])]) this.cancelJob(job)
  }

  /** Cancels everything, waits for a running request's native run to end (see the top), then stops the worker. */
  async dispose(): Promise<void> {
    if (this.disposed) return
    this.disposed = true
    const running = this.active
    this.cancelAll()
    if (running) await running.over
    const worker = this.current?.worker
    this.current = undefined
    if (worker) await worker.terminate()
  }
}
