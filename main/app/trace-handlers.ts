// The trace.* channels (issue 5): main/trace's functions on the open bundle and its compute engine, their
// results in the contract's JSON form. Bad input the trace code detects (a feature, position or token out
// of range, a prompt longer than n_ctx) comes back as `invalid_request` with the trace code's message.
// Whole-corpus activation scores are a job (the Workbench starts its worker): start, cancel, last result.
import { compareTraces, pointTraceToJson, prefetchScope, promptView, SCORE_BATCH, scopeTraceToJson, traceAt, isTraceInputError, tracePoint, traceScope, traceToJson, type TraceEngine, type TracePoint } from '../trace'
import { tokenText } from '../../common/text'
import { ComputeCancelledError } from '../compute/worker-client'
import type { TraceOptionsRequest, TracePointRequest } from '../../common/contract'
import type { HandlerTable } from './dispatch'
import { FtError } from '../../common/errors'
import type { OpenBundle, Workbench } from './workbench'

type TraceHandlers = Pick<HandlerTable, 'trace.run' | 'trace.point' | 'trace.scope' | 'trace.prefetch' | 'trace.prompt' | 'trace.compare' | 'trace.corpusScores' | 'trace.corpusScores.cancel' | 'trace.corpusScores.result'>

/**
 * Batches one prefetch warms at most. The engine keeps three demo batches (256 MiB), and each forward pass
 * holds the compute worker for a few hundred ms on 2 cores, which a trace asked for meanwhile waits out.
 */
const PREFETCH_BATCHES = 2

/**
 * Runs `work`, turning the trace code's input errors into `invalid_request`, and a request whose engine
 * was replaced while it ran (another bundle.open, or a superseding cancel) into `busy`: ask again.
 */
async function traceInput<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work()
  } catch (error) {
    if (isTraceInputError(error)) throw new FtError('invalid_request', error.message)
    if (error instanceof ComputeCancelledError) {
      throw new FtError('busy', 'this trace was stopped because the bundle was opened again (or the request was superseded) while it ran; ask again')
    }
    throw error
  }
}

function trace(open: OpenBundle, engine: TraceEngine, point: TracePointRequest, options?: Partial<TraceOptionsRequest>) {
  const { vocabRows: _, ...traceOptions } = options ?? {}
  return traceAt(open.bundle, engine, point satisfies TracePoint, traceOptions)
}

/**
 * Both engines as one, for a whole trace: the point's requests on the point engine, the batch's on the
 * scope engine (which keeps recent batches), so the two parts of traceAt run side by side.
 */
async function bothEngines(wb: Workbench): Promise<{ open: OpenBundle; engine: TraceEngine }> {
  const [{ open, engine: point }, { engine: scope }] = await Promise.all([wb.engine('point'), wb.engine('scope')])
  return {
    open,
    engine: {
      forward: (...args) => point.forward(...args),
      vocabProducts: (req) => point.vocabProducts(req),
      projectBlock: (req) => scope.projectBlock(req),
    },
  }
}

export function createTraceHandlers(wb: Workbench): TraceHandlers {
  return {
    'trace.run': async ({ point, options }) => {
      const { open, engine } = await bothEngines(wb)
      const display = open.view.display
      return traceInput(async () => traceToJson(await trace(open, engine, point, options), (id) => tokenText(display, id), { vocabRows: options.vocabRows }))
    },
    'trace.point': async ({ point, options }) => {
      const { open, engine } = await wb.engine('point')
      const display = open.view.display
      const { vocabRows, ...traceOptions } = options
      return traceInput(async () => pointTraceToJson(await tracePoint(open.bundle, engine, point, traceOptions), (id) => tokenText(display, id), { vocabRows }))
    },
    'trace.scope': async ({ point, rowLimit }) => {
      const { open, engine } = await wb.engine('scope')
      return traceInput(async () => scopeTraceToJson(await traceScope(open.bundle, engine, point, { rowLimit })))
    },
    'trace.prefetch': async ({ samples }) => {
      const { open, engine } = await wb.engine('scope')
      const first = new Map<number, number>()
      for (const s of samples) if (!first.has(Math.floor(s / SCORE_BATCH))) first.set(Math.floor(s / SCORE_BATCH), s)
      const picked = [...first.values()].slice(0, PREFETCH_BATCHES)
      await traceInput(async () => {
        for (const s of picked) await prefetchScope(open.bundle, engine, s)
      })
      return { batches: picked.length }
    },
    'trace.prompt': async ({ prompt, topK, feature }) => {
      const { open, engine } = await wb.engine('point')
      const dSae = open.bundle.config.sae.d_sae
      if (feature !== undefined && feature >= dSae) throw new FtError('invalid_request', `feature ${feature} outside [0, ${dSae})`)
      return traceInput(() => promptView(open.bundle, engine, prompt, { topK, feature }))
    },
    'trace.compare': async ({ a, b, convention, topK }) => {
      const { open, engine } = await bothEngines(wb)
      return traceInput(async () => compareTraces(await trace(open, engine, a), await trace(open, engine, b), convention, topK, open.view.display))
    },
    'trace.corpusScores': async (req) => ({ jobId: await wb.startCorpusScores(req) }),
    'trace.corpusScores.cancel': async ({ jobId }) => {
      const job = wb.runningCorpusScores(jobId)
      if (!job) return { cancelled: false }
      await job.cancel()
      return { cancelled: true }
    },
    'trace.corpusScores.result': ({ jobId }) => {
      const result = wb.corpusScoresResult(jobId)
      if (!result) throw new FtError('not_found', `no finished corpus-scores job ${jobId} (only the last one is kept)`)
      return result
    },
  }
}
