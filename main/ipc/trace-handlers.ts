// The trace.* channels (issue 5): main/trace's functions on the open bundle and its compute engine, their
// results in the contract's JSON form. Bad input the trace code detects (a feature, position or token out
// of range, a prompt longer than n_ctx) comes back as `invalid_request` with the trace code's message.
// Whole-corpus activation scores are a job (the Workbench starts its worker): start, cancel, last result.
import { compareTraces, promptView, traceAt, TraceInputError, traceToJson, type TracePoint } from '../trace'
import type { TraceOptionsRequest, TracePointRequest } from './contract'
import type { HandlerTable } from './dispatch'
import { FtError } from './errors'
import type { OpenBundle, Workbench, WorkbenchEngine } from './workbench'

type TraceHandlers = Pick<HandlerTable, 'trace.run' | 'trace.prompt' | 'trace.compare' | 'trace.corpusScores' | 'trace.corpusScores.cancel' | 'trace.corpusScores.result'>

/** Runs `work`, turning the trace code's input errors into `invalid_request`. */
async function traceInput<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work()
  } catch (error) {
    if (error instanceof TraceInputError || error instanceof RangeError) throw new FtError('invalid_request', error.message)
    throw error
  }
}

function trace(open: OpenBundle, engine: WorkbenchEngine, point: TracePointRequest, options?: Partial<TraceOptionsRequest>) {
  const { vocabRows: _, ...traceOptions } = options ?? {}
  return traceAt(open.bundle, engine, point satisfies TracePoint, traceOptions)
}

export function createTraceHandlers(wb: Workbench): TraceHandlers {
  return {
    'trace.run': async ({ point, options }) => {
      const { open, engine } = await wb.engine()
      const display = open.view.display
      return traceInput(async () => traceToJson(await trace(open, engine, point, options), (id) => display[id] ?? `<${id}>`, { vocabRows: options.vocabRows }))
    },
    'trace.prompt': async ({ prompt, topK, feature }) => {
      const { open, engine } = await wb.engine()
      const dSae = open.bundle.config.sae.d_sae
      if (feature !== undefined && feature >= dSae) throw new FtError('invalid_request', `feature ${feature} outside [0, ${dSae})`)
      return traceInput(() => promptView(open.bundle, engine, prompt, { topK, feature }))
    },
    'trace.compare': async ({ a, b, convention, topK }) => {
      const { open, engine } = await wb.engine()
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
