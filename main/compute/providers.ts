// Execution-provider choice. ORT throws at session creation when a listed provider's library is missing
// (a ['cuda', 'cpu'] list fails rather than falling back), so each candidate gets its own attempt.
import { availableParallelism } from 'node:os'
import { InferenceSession, env } from 'onnxruntime-node'
import type { ExecutionProvider } from './api'

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

export interface CreatedSession {
  session: InferenceSession
  provider: ExecutionProvider
  /** Why better providers were skipped, for the log and the status line. */
  skipped: { provider: ExecutionProvider; reason: string }[]
}

/** Creates a session on the first provider in `providers` that works. */
export async function createSession(model: Uint8Array, providers: readonly ExecutionProvider[], opts: SessionOptions = {}): Promise<CreatedSession> {
  const skipped: CreatedSession['skipped'] = []
  const list = providers.includes('cpu') ? providers : [...providers, 'cpu' as const]
  for (const provider of list) {
    try {
      const session = await InferenceSession.create(model, {
        executionProviders: [provider],
        intraOpNumThreads: opts.intraOpNumThreads ?? availableParallelism(),
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
        logSeverityLevel: 3,
        extra: { session: { intra_op: { allow_spinning: opts.allowSpinning ? '1' : '0' } } },
      })
      return { session, provider, skipped }
    } catch (e) {
      if (provider === 'cpu') throw e
      skipped.push({ provider, reason: (e as Error).message.split('\n')[0] })
    }
  }
  throw new Error('unreachable: cpu is always tried')
}
