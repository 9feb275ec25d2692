// Main's side of a host process: starts it (through the injected launcher), waits for it to be ready,
// sends requests by id, relays progress, and watches it. Native code (ONNX Runtime, a job's SQLite) runs
// there, not in main: if it aborts, or is killed, only that process ends. Its requests then fail as `busy`
// with what happened, and a long-lived host (restart: true) starts again at once, so the next request
// finds it ready. Ending the process is also how a job is cancelled: it is safe at any moment.
import { FtError } from '../../common/errors'
import type { HostEntry, HostHandle, HostLauncher } from './launcher'
import type { FromHost } from './protocol'

export interface ProcessHostOptions {
  launcher: HostLauncher
  entry: HostEntry
  /** The service the process runs (main/jobs/child.ts) and its init data. */
  kind: string
  data: unknown
  /** What the process is, in messages: "the compute process", "the cache build process". */
  name: string
  /** Start a new process as soon as a ready one stops (a long-lived host); a job's is never restarted. */
  restart: boolean
}

export interface RequestOptions {
  /** Aborting drops the request: it rejects at once (with the signal's reason when that is an Error). */
  signal?: AbortSignal
  onProgress?: (progress: unknown) => void
}

/** The host process ended while requests were waiting (a crash, a kill, a native abort). */
export class HostStoppedError extends FtError {
  constructor(message: string) {
    super('busy', message)
  }
}

interface Pending {
  resolve(value: unknown): void
  reject(error: Error): void
  onProgress?: (progress: unknown) => void
}

interface Running {
  handle: HostHandle
  ready: Promise<unknown>
  isReady: boolean
  /** Rejects `ready` (a no-op once it has settled). */
  notReady(error: Error): void
  pending: Map<number, Pending>
}

export class ProcessHost {
  private current: Running | null = null
  private nextId = 1
  private disposed: string | null = null
  private lastInfo: unknown = null
  /** How many processes were started (1 + restarts), for tests and diagnostics. */
  starts = 0

  constructor(private readonly opts: ProcessHostOptions) {}

  /** The running process's id (tests kill it to play a crash). */
  get pid(): number | undefined {
    return this.current?.handle.pid
  }

  /** What the last ready process reported. */
  get info(): unknown {
    return this.lastInfo
  }

  /** Starts the process if none runs; resolves with its info once it is ready. */
  start(): Promise<unknown> {
    if (this.disposed) return Promise.reject(new FtError('busy', this.disposed))
    if (this.current) return this.current.ready
    const handle = this.opts.launcher(this.opts.entry, this.opts.name)
    this.starts++
    let ready!: { resolve(info: unknown): void; reject(e: Error): void }
    const running: Running = {
      handle,
      ready: new Promise((resolve, reject) => (ready = { resolve, reject })),
      isReady: false,
      notReady: (e) => ready.reject(e),
      pending: new Map(),
    }
    // Whoever waits for it sees the rejection; an eager restart that nobody waits for must not be unhandled.
    running.ready.catch(() => undefined)
    this.current = running
    handle.onMessage((m: FromHost) => {
      if (this.current !== running) return
      if (m.type === 'ready') {
        running.isReady = true
        this.lastInfo = m.info
        ready.resolve(m.info)
      } else if (m.type === 'init-error') {
        this.current = null
        handle.kill()
        ready.reject(new FtError(m.error.code, m.error.message))
      } else {
        const p = running.pending.get(m.id)
        if (!p) return
        if (m.type === 'progress') p.onProgress?.(m.progress)
        else {
          running.pending.delete(m.id)
          if (m.type === 'result') p.resolve(m.value)
          else p.reject(new FtError(m.error.code, m.error.message))
        }
      }
    })
    handle.onExit((how) => this.onExit(running, how))
    handle.send({ type: 'init', kind: this.opts.kind, data: this.opts.data })
    return running.ready
  }

  /** The process ended: fail what waited on it, and bring a new one up if this host is long-lived. */
  private onExit(running: Running, how: string): void {
    if (this.current !== running) return
    this.current = null
    const restart = this.opts.restart && running.isReady && !this.disposed
    const stopped = new HostStoppedError(
      `${this.opts.name} stopped (${how})${restart ? '; it was restarted, ask again' : running.isReady ? '' : ' before it was ready'}`,
    )
    for (const p of running.pending.values()) p.reject(stopped)
    running.pending.clear()
    running.notReady(stopped)
    // A process that never became ready is not restarted here: a broken install would loop.
    if (restart) void this.start()
  }

  /** Sends a request once the process is ready; resolves with the host's answer. */
  async request(op: string, payload: unknown, opts: RequestOptions = {}): Promise<unknown> {
    const { signal } = opts
    const cancelled = (): Error => (signal?.reason instanceof Error ? signal.reason : new FtError('busy', 'the request was cancelled'))
    if (signal?.aborted) throw cancelled()
    await this.start()
    if (signal?.aborted) throw cancelled()
    const running = this.current
    if (!running) throw new HostStoppedError(`${this.opts.name} stopped; ask again`)
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        if (!running.pending.delete(id)) return
        running.handle.send({ type: 'cancel', id })
        reject(cancelled())
      }
      running.pending.set(id, {
        resolve: (v) => (signal?.removeEventListener('abort', onAbort), resolve(v)),
        reject: (e) => (signal?.removeEventListener('abort', onAbort), reject(e)),
        onProgress: opts.onProgress,
      })
      signal?.addEventListener('abort', onAbort, { once: true })
      running.handle.send({ type: 'request', id, op, payload })
    })
  }

  /** Ends the process at once; whatever waits on it fails as `busy` with `reason`. No restart follows. */
  dispose(reason = `${this.opts.name} was stopped`): void {
    if (this.disposed) return
    this.disposed = reason
    const running = this.current
    this.current = null
    if (!running) return
    running.handle.kill()
    const error = new FtError('busy', reason)
    for (const p of running.pending.values()) p.reject(error)
    running.pending.clear()
    running.notReady(error)
  }
}
