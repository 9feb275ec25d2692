// Main's side of the compute process for the open bundle: the trace channels go there (compute-service.ts)
// and come back as the contract's JSON. Started on the first trace, restarted after a crash (requests that
// were waiting answer `busy`: ask again), ended when another bundle opens. A request that names its caller
// supersedes that caller's previous request of the same channel: the older one answers `busy` at once and
// the compute process stops it before its next ONNX run.
import { FtError } from '../../common/errors'
import type { ExecutionProviderName, FeatureDetail, RequestOf, ResponseOf } from '../../common/contract'
import { locateEntry, nodeLauncher, type HostEntry, type HostLauncher } from '../jobs/launcher'
import { ProcessHost } from '../jobs/process-host'
import type { OrtEngineOptions } from '../compute/ort-engine'
import type { ComputeChannel, ComputeInfo, ComputeInit, ComputeStats, LogitsOp } from './compute-service'

export interface ComputeOptions {
  /** How host processes start: utilityProcess in the Electron app (main/index.ts), child_process.fork otherwise. */
  launcher?: HostLauncher
  /** Engine options for the compute process (thread count; tests: pauseMsPerRun). */
  engine?: OrtEngineOptions
  /** Trace one point in the background once ready (ComputeInit.warmUp): set when it starts with the bundle. */
  warmUp?: boolean
}

/**
 * The host entry: compute-host.ts from the sources; compute-host.js next to the built main (or one folder
 * up from a shared chunk, or in out/main from another build's folder such as out/cli).
 */
export function hostEntry(here: string = import.meta.url): HostEntry {
  return locateEntry(here, './compute-host.ts', ['./compute-host.js', '../compute-host.js', '../main/compute-host.js'])
}

const ON_OPEN = 'the bundle was opened again while this request ran; ask again'

export class Compute {
  private readonly host: ProcessHost
  /** Running requests that named their caller, by channel and caller. */
  private readonly byCaller = new Map<string, AbortController>()

  constructor(bundleDir: string, opts: ComputeOptions = {}) {
    const init: ComputeInit = { bundleDir, engine: opts.engine, warmUp: opts.warmUp }
    this.host = new ProcessHost({ launcher: opts.launcher ?? nodeLauncher, entry: hostEntry(), kind: 'compute', data: init, name: 'the compute process', restart: true })
  }

  /** The provider the compute process runs on, once it has started. */
  get provider(): ExecutionProviderName | null {
    return (this.host.info as ComputeInfo | null)?.provider ?? null
  }

  /** The process id (tests end it to play a crash). */
  get pid(): number | undefined {
    return this.host.pid
  }

  /** Processes started so far (1 + restarts). */
  get starts(): number {
    return this.host.starts
  }

  /** Starts the process (if it is not running) and waits until it is ready. */
  async ready(): Promise<void> {
    await this.host.start()
  }

  async call<C extends ComputeChannel>(channel: C, req: RequestOf<C>): Promise<ResponseOf<C>> {
    const caller = 'caller' in req ? req.caller : undefined
    const key = caller === undefined ? null : `${channel}\n${caller}`
    const ac = new AbortController()
    if (key) {
      this.byCaller.get(key)?.abort(new FtError('busy', `superseded by a newer ${channel} request from the same caller; this one was stopped`))
      this.byCaller.set(key, ac)
    }
    try {
      return (await this.host.request(channel, req, { signal: ac.signal })) as ResponseOf<C>
    } finally {
      if (key && this.byCaller.get(key) === ac) this.byCaller.delete(key)
    }
  }

  /** A feature's logit effects from the weights (LogitsOp), for a cache that has none stored yet. */
  async logits(feature: number): Promise<FeatureDetail['logits']> {
    return (await this.host.request('feature.logits' satisfies LogitsOp, { feature })) as FeatureDetail['logits']
  }

  /** The engine's counters (diagnostics, tests). */
  async stats(): Promise<ComputeStats> {
    return (await this.host.request('stats', null)) as ComputeStats
  }

  /** Stops every running request of `caller` (each answers busy); how many there were. */
  cancel(caller: string): number {
    let n = 0
    for (const [key, ac] of this.byCaller) {
      if (key.slice(key.indexOf('\n') + 1) !== caller) continue
      ac.abort(new FtError('busy', 'cancelled by its caller'))
      this.byCaller.delete(key)
      n++
    }
    return n
  }

  /** Ends the process; requests still waiting answer busy. */
  dispose(reason = ON_OPEN): void {
    this.host.dispose(reason)
  }
}
