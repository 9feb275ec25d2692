// The trace channels as the compute process serves them (main/app/compute-host.ts): main/trace's
// functions on the bundle and one OrtEngine, answered in the contract's JSON form. The bundle is read,
// checked and converted once in this process, and every ONNX session shares its weights. Requests run
// side by side; their ONNX runs go one at a time through the engine's gate, a click's ('point' lane)
// before a batch's ('scope' lane), and a cancelled request (superseded, or its tab closed) stops at its
// next run. Bad input the trace code detects comes back as `invalid_request`.
import type { Bundle } from '../bundle'
import { loadBundle } from '../bundle'
import { corpusViewOf } from '../bundle/corpus'
import type { ComputeEngine, Lane, RunContext, TraceCompute } from '../compute/api'
import { OrtEngine, type OrtEngineOptions } from '../compute/ort-engine'
import { comparePoints, featureSequences, traceAblations, pointTraceToJson, prefetchScope, promptView, SCORE_BATCH, scopeTraceToJson, traceAt, tracePoint, traceScope, traceToJson, type TraceEngine } from '../trace'
import type { ExecutionProviderName, FeatureDetail, RequestOf, ResponseOf } from '../../common/contract'
import { logitWeightsOf } from '../cache/bundle-link'
import { topLogitEffects } from '../cache/logits'
import { FtError } from '../../common/errors'
import { tokenText } from '../../common/text'
import type { HostService } from '../jobs/child'

export interface ComputeInit {
  bundleDir: string
  engine?: OrtEngineOptions
  /**
   * Once ready, trace the corpus's first point in the background ('scope' lane, so a click's runs go
   * first): the first click then finds the point trace's sessions built (seconds for a 12-layer model)
   * and its code compiled. For a process started with the bundle, before anyone clicks.
   */
  warmUp?: boolean
}

/** What the compute process reports when it is ready. */
export interface ComputeInfo {
  provider: ExecutionProviderName
}

/** The engine's counters ('stats', besides the channels): diagnostics, and tests that see a request stop. */
export interface ComputeStats {
  runs: number
}

/** The channels the compute process answers. */
export type ComputeChannel = 'trace.run' | 'trace.point' | 'trace.scope' | 'trace.prefetch' | 'trace.prompt' | 'trace.compare' | 'trace.ablate' | 'feature.sequences'

/** A batch's forward pass waits for a click's runs: scope and prefetch are the 'scope' lane. */
const LANES: Record<ComputeChannel, Lane> = {
  'trace.run': 'point',
  'trace.point': 'point',
  'trace.scope': 'scope',
  'trace.prefetch': 'scope',
  'trace.prompt': 'point',
  'trace.compare': 'point',
  'trace.ablate': 'point',
  // The shading of the examples a feature tab shows: a few short SAE runs, wanted as soon as the rows are.
  'feature.sequences': 'point',
}

/**
 * Batches one prefetch warms at most. The engine keeps three demo batches (256 MiB), and each forward pass
 * holds the compute process for a few hundred ms on 2 cores.
 */
const PREFETCH_BATCHES = 2

type Engine = TraceEngine & Pick<ComputeEngine, 'saeActs'>

/** The engine with one request's lane and signal bound to every call. */
function forRequest(engine: ComputeEngine & TraceCompute, ctx: RunContext): Engine {
  return {
    forward: (tokens, nSeq, seqLen, outputs) => engine.forward(tokens, nSeq, seqLen, outputs, ctx),
    saeActs: (tokens, nSeq, seqLen) => engine.saeActs(tokens, nSeq, seqLen, ctx),
    vocabProducts: (req) => engine.vocabProducts(req, ctx),
    projectBlock: (req) => engine.projectBlock(req, ctx),
    saeTopPre: (req) => engine.saeTopPre!(req, ctx),
  }
}

type Handlers = { [C in ComputeChannel]: (req: RequestOf<C>, engine: Engine) => Promise<ResponseOf<C>> }

function handlers(bundle: Bundle): Handlers {
  const { display } = corpusViewOf(bundle)
  const text = (id: number): string => tokenText(display, id)
  return {
    'trace.run': async ({ point, options }, engine) => {
      const { vocabRows, ...traceOptions } = options
      return traceToJson(await traceAt(bundle, engine, point, traceOptions), text, { vocabRows })
    },
    'trace.point': async ({ point, options }, engine) => {
      const { vocabRows, ...traceOptions } = options
      return pointTraceToJson(await tracePoint(bundle, engine, point, traceOptions), text, { vocabRows })
    },
    'trace.scope': async ({ point, rowLimit }, engine) => scopeTraceToJson(await traceScope(bundle, engine, point, { rowLimit })),
    'trace.prefetch': async ({ samples }, engine) => {
      const first = new Map<number, number>()
      for (const s of samples) if (!first.has(Math.floor(s / SCORE_BATCH))) first.set(Math.floor(s / SCORE_BATCH), s)
      const picked = [...first.values()].slice(0, PREFETCH_BATCHES)
      for (const s of picked) await prefetchScope(bundle, engine, s)
      return { batches: picked.length }
    },
    // promptView checks the feature (invalid_request, the shared message).
    'trace.prompt': async ({ prompt, topK, feature }, engine) => promptView(bundle, engine, prompt, { topK, feature }),
    'trace.compare': async ({ a, b, convention, topK }, engine) => comparePoints(bundle, engine, a, b, convention, topK),
    'trace.ablate': async ({ point, terms, mean }, engine) => traceAblations(bundle, engine, point, { terms, mean }),
    'feature.sequences': async ({ feature, samples }, engine) => ({ feature, sequences: await featureSequences(bundle, engine, feature, samples) }),
  }
}

/**
 * An op besides the channels: a feature's logit effects from the weights this process holds, for a feature view
 * while the cache has none stored yet (CacheReader.logitsPending; main holds no weights).
 */
export type LogitsOp = 'feature.logits'

/** Loads the bundle and builds the engine; the trace channels are then answered by `handle`. */
export async function startComputeService(init: ComputeInit): Promise<HostService> {
  // Main checks every weight's values when it opens the bundle (this process may start alongside, see
  // Workbench.open): not a second time here, where the first trace waits for it.
  const bundle = await loadBundle(init.bundleDir, { checkValues: false })
  const engine = await OrtEngine.create(bundle, init.engine)
  const table = handlers(bundle)
  const weights = logitWeightsOf(bundle)
  const { display } = corpusViewOf(bundle)
  const featureLogits = (payload: unknown): FeatureDetail['logits'] => {
    const feature = (payload as { feature?: unknown } | null)?.feature
    if (!Number.isSafeInteger(feature) || (feature as number) < 0 || (feature as number) >= bundle.config.sae.d_sae) throw new FtError('invalid_request', `no feature ${String(feature)}`)
    return weights ? topLogitEffects(weights, feature as number, display) : { top: [], bottom: [] }
  }
  const info: ComputeInfo = { provider: engine.provider }
  if (init.warmUp) {
    const ctx: RunContext = { lane: 'scope' }
    const point = { feature: 0, sample: 0, pos: Math.min(1, bundle.tokens.seqLen - 1) }
    // Nothing depends on it: a bundle with nothing to trace (an SAE on the embeddings) refuses, and that is all.
    void engine.during(ctx, () => tracePoint(bundle, forRequest(engine, ctx), point)).catch(() => undefined)
  }
  return {
    info,
    handle: async (op, payload, { signal }) => {
      if (op === 'stats') return { runs: engine.runs } satisfies ComputeStats
      if (op === ('feature.logits' satisfies LogitsOp)) return featureLogits(payload)
      if (!(op in LANES)) throw new FtError('internal', `the compute process has no channel ${op}`)
      const channel = op as ComputeChannel
      const handler = table[channel] as (req: unknown, engine: Engine) => Promise<unknown>
      const ctx = { signal, lane: LANES[channel] }
      return engine.during(ctx, () => handler(payload, forRequest(engine, ctx)))
    },
  }
}
