// Execution-provider choice. ORT throws at session creation when a listed provider's library is missing
// (a ['cuda', 'cpu'] list fails rather than falling back), so each candidate gets its own attempt.
import { availableParallelism } from 'node:os'
import { InferenceSession, Tensor as OrtTensor, env } from 'onnxruntime-node'
import type { ExecutionProvider } from './api'
import type { BuiltGraph, WeightsAs } from './onnx-builder'

// ORT logs a failed provider probe to stderr before it throws; the exception (kept in `skipped`) says the
// same, so a CPU-only machine would print an alarming error on every start. Must be set before the first
// session, when ORT initialises its environment.
env.logLevel = 'fatal'

/** What to try, best first, on this platform; CPU always comes last and always works. */
export function candidateProviders(platform: NodeJS.Platform = process.platform): ExecutionProvider[] {
  if (platform === 'linux') return ['cuda', 'cpu']
  if (platform === 'win32') return ['cuda', 'dml', 'cpu']
  if (platform === 'darwin') return ['coreml', 'cpu']
  return ['cpu']
}

export interface SessionOptions {
  /** Defaults to os.availableParallelism(); a caller sharing the machine (the cache job) may want fewer. */
  intraOpNumThreads?: number
  /**
   * Let ORT's intra-op threads busy-wait for the next piece of work (ORT's default). Off by default here:
   * a trace interleaves short runs with JavaScript, and the spinning threads then compete with that
   * JavaScript (and with anything else on the machine) for the cores; on the demo bundle with 2 cores,
   * turning it off halves a warm trace's CPU time and cuts its latency by a third.
   */
  allowSpinning?: boolean
}

/** Where the weights go for each provider (onnx-builder.ts says why). */
export const weightsAsFor = (provider: ExecutionProvider): WeightsAs => (provider === 'cpu' ? 'inputs' : 'initializers')

/**
 * A session, with the weights it is fed at every run when its graph takes them as inputs. A session
 * released while requests still use it (evicted from the engine's LRU meanwhile) is released once the
 * last of them is done.
 */
export class GraphSession {
  private readonly fed: Record<string, OrtTensor> = {}
  private users = 0
  private released = false

  constructor(
    private readonly session: InferenceSession,
    graph: BuiltGraph,
    fed: readonly string[],
  ) {
    // Wrapping a typed array in an ORT tensor copies nothing; the wrappers are made once per session.
    for (const name of fed) {
      const t = graph.weights.get(name)!
      this.fed[name] = new OrtTensor('float32', t.data, t.dims)
    }
  }

  /** Holds the session for `work` (which may run it several times): it is not released meanwhile. */
  async use<T>(work: (session: GraphSession) => Promise<T>): Promise<T> {
    if (this.released) throw new Error('the session was released')
    this.users++
    try {
      return await work(this)
    } finally {
      if (--this.users === 0 && this.released) void this.session.release()
    }
  }

  run(feeds: InferenceSession.FeedsType, fetches?: readonly string[]): Promise<InferenceSession.ReturnType> {
    const all = { ...feeds, ...this.fed }
    return fetches ? this.session.run(all, fetches) : this.session.run(all)
  }

  release(): Promise<void> {
    if (this.released) return Promise.resolve()
    this.released = true
    return this.users === 0 ? this.session.release() : Promise.resolve()
  }
}

export interface CreatedSession {
  session: GraphSession
  provider: ExecutionProvider
  /** Why better providers were skipped, for the log and the status line. */
  skipped: { provider: ExecutionProvider; reason: string }[]
}

/** Creates a session on the first provider in `providers` that works. */
export async function createSession(graph: BuiltGraph, providers: readonly ExecutionProvider[], opts: SessionOptions = {}): Promise<CreatedSession> {
  const skipped: CreatedSession['skipped'] = []
  const list = providers.includes('cpu') ? providers : [...providers, 'cpu' as const]
  for (const provider of list) {
    try {
      const { model, externalData, fed } = graph.encode(weightsAsFor(provider))
      const session = await InferenceSession.create(model, {
        externalData,
        executionProviders: [provider],
        // No arena: a batch's forward pass needs hundreds of MB for a moment, which an arena would keep.
        enableCpuMemArena: false,
        intraOpNumThreads: opts.intraOpNumThreads ?? availableParallelism(),
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
        logSeverityLevel: 3,
        extra: { session: { intra_op: { allow_spinning: opts.allowSpinning ? '1' : '0' } } },
      })
      return { session: new GraphSession(session, graph, fed), provider, skipped }
    } catch (e) {
      if (provider === 'cpu') throw e
      skipped.push({ provider, reason: (e as Error).message.split('\n')[0] })
    }
  }
  throw new Error('unreachable: cpu is always tried')
}
