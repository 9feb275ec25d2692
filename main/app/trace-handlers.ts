// The trace.* channels (issue 5). Traces are computed in the compute process (compute-service.ts), never
// here: ONNX Runtime must not share a process with every open tab's state. A request that names its
// caller supersedes that caller's previous one of the same channel; trace.cancel stops a caller's
// requests. Whole-corpus activation scores are a job (jobs.ts): start it here, cancel it with job.cancel,
// and fetch the last result again. feature.sequences (the examples' shading) runs there too: it needs the SAE.
import type { HandlerTable } from './dispatch'
import { FtError } from '../../common/errors'
import type { Workbench } from './workbench'
import type { ComputeChannel } from './compute-service'

type TraceHandlers = Pick<HandlerTable, ComputeChannel | 'trace.cancel' | 'trace.corpusScores' | 'trace.corpusScores.result'>

export function createTraceHandlers(wb: Workbench): TraceHandlers {
  const compute = async <C extends ComputeChannel>(channel: C, req: Parameters<HandlerTable[C]>[0]) => (await wb.compute()).compute.call(channel, req)
  return {
    'trace.run': (req) => compute('trace.run', req),
    'trace.point': (req) => compute('trace.point', req),
    'trace.scope': (req) => compute('trace.scope', req),
    'trace.prefetch': (req) => compute('trace.prefetch', req),
    'trace.prompt': (req) => compute('trace.prompt', req),
    'trace.compare': (req) => compute('trace.compare', req),
    'trace.ablate': (req) => compute('trace.ablate', req),
    'feature.sequences': (req) => compute('feature.sequences', req),
    'trace.cancel': ({ caller }) => ({ cancelled: wb.cancelTraces(caller) }),
    'trace.corpusScores': async (req) => ({ jobId: await wb.startCorpusScores(req) }),
    'trace.corpusScores.result': ({ jobId }) => {
      const result = wb.corpusScoresResult(jobId)
      if (!result) throw new FtError('not_found', `no finished corpus-scores job ${jobId} (only the last one is kept)`)
      return result
    },
  }
}
