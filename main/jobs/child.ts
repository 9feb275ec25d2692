// The one bootstrap of a host process, for every kind of host (the compute host, each long job): it finds
// the channel to its parent (Electron's process.parentPort in a utility process, Node's IPC channel in a
// forked one), waits for `init`, starts the service of that kind, then answers requests. Each request has
// an AbortSignal that main's `cancel` fires; a service stops at its next step (main/compute/run-gate.ts).
// Nothing here outlives the parent: a host whose parent is gone exits.
import type { IpcError } from '../../common/errors'
import type { FromHost, ToHost } from './protocol'

export interface RequestContext {
  signal: AbortSignal
  /** Sends a progress report for this request (a job's). */
  progress(progress: unknown): void
}

export interface HostService {
  /** What main is told once the host is ready (e.g. the execution provider). */
  info: unknown
  handle(op: string, payload: unknown, ctx: RequestContext): Promise<unknown>
}

/** Starts a service from its init data (loading the bundle, building the engine). */
export type ServiceFactory = (data: unknown) => Promise<HostService>

interface ParentPort {
  post(message: FromHost): void
  listen(listener: (message: ToHost) => void): void
}

interface UtilityParentPort {
  postMessage(message: unknown): void
  on(event: 'message', listener: (e: { data: unknown }) => void): void
}

function parentPort(): ParentPort {
  const utility = (process as unknown as { parentPort?: UtilityParentPort }).parentPort
  if (utility) return { post: (m) => utility.postMessage(m), listen: (l) => utility.on('message', (e) => l(e.data as ToHost)) }
  if (process.send) {
    // Forked: the parent's end of the channel closing means the parent is gone (or killed us off).
    process.on('disconnect', () => process.exit(0))
    return { post: (m) => void process.send?.(m), listen: (l) => void process.on('message', (m) => l(m as ToHost)) }
  }
  throw new Error('a host process must be started by main (utilityProcess.fork or child_process.fork)')
}

/**
 * Serves the host kinds of `services` on this process's parent channel. `toIpc` turns a thrown error into
 * the contract's form (the caller knows its domains' error types).
 */
export function serveHost(services: Record<string, ServiceFactory>, toIpc: (error: unknown) => IpcError): void {
  const port = parentPort()
  let service: Promise<HostService> | null = null
  const running = new Map<number, AbortController>()

  const handle = async (svc: HostService, m: Extract<ToHost, { type: 'request' }>): Promise<void> => {
    const ac = new AbortController()
    running.set(m.id, ac)
    try {
      const value = await svc.handle(m.op, m.payload, { signal: ac.signal, progress: (progress) => port.post({ type: 'progress', id: m.id, progress }) })
      if (!ac.signal.aborted) port.post({ type: 'result', id: m.id, value })
    } catch (e) {
      if (!ac.signal.aborted) port.post({ type: 'error', id: m.id, error: toIpc(e) })
    } finally {
      running.delete(m.id)
    }
  }

  port.listen((m) => {
    if (m.type === 'init') {
      const factory = services[m.kind]
      if (service || !factory) {
        port.post({ type: 'init-error', error: { code: 'internal', message: `cannot start a host of kind ${m.kind}` } })
        return
      }
      service = factory(m.data)
      service.then(
        (svc) => port.post({ type: 'ready', info: svc.info }),
        (e: unknown) => {
          port.post({ type: 'init-error', error: toIpc(e) })
          // Nothing to serve: let the message go out, then end.
          setTimeout(() => process.exit(1), 100)
        },
      )
    } else if (m.type === 'request') {
      if (!service) port.post({ type: 'error', id: m.id, error: { code: 'internal', message: 'request before init' } })
      else
        void service.then(
          (svc) => handle(svc, m),
          () => undefined, // init-error was sent; the process is ending
        )
    } else if (m.type === 'cancel') {
      running.get(m.id)?.abort()
    }
  })
}
