// Activation scores over the whole corpus (issue 5 §2): a trace point's linearized direction (v or u)
// against resid_mid of every token of the bundle's corpus, and the fidelity of the linear prediction
// pre(x0) + vec·(x − x0) against the feature's true pre-activation and activation at every token. The
// corpus goes through the engine chunk by chunk: one forward pass per chunk, then resid_mid·vec and
// hook·W_enc[:,f] as one GEMM each on the ONNX session; only those two floats per token are kept. Which
// thread runs this is the caller's business: the app runs it in a job process of its own (main/trace/corpus-scores-job.ts).
import type { Bundle } from '../bundle'
import { histogram } from './histogram'
import type { BlockProjectionRequest, ComputeEngine, HookName, TraceCompute } from '../compute/api'
import type { CorpusScoresJson, CorpusScoresOf, CorpusScoresProgress } from '../../common/contract'
import { bundleViews, pointDirection } from './locate'
import { tracePlan } from './plan'
import { preBias } from './gate'
import { gateOf, topKRivals } from './scope'
import { fidelity, scoreRows, type ScopeView } from './scores'
import { toWire } from './serialize'
import type { Convention, TracePoint, TypedArrays } from './types'
import { encoderColumn } from './weights'

/** Tokens per engine call when the caller does not say (the cache build's chunk size). */
export const CORPUS_CHUNK_TOKENS = 8192

export type CorpusScoresEngine = Pick<ComputeEngine, 'forward'> & Pick<TraceCompute, 'projectBlock' | 'saeTopPre'>

export interface CorpusScoresOptions {
  convention: Convention
  /** Rows of the top, bottom and disagreement grids (100). */
  rowLimit?: number
  /** Histogram bins (50). */
  bins?: number
  /** Points of the fidelity scatter plot (4000). */
  scatterPoints?: number
  /** Sequences per engine call (default: CORPUS_CHUNK_TOKENS' worth). The result does not depend on it. */
  chunkSeqs?: number
  jobId?: string
  onProgress?: (p: CorpusScoresProgress) => void
  /** Test hook: a pause after each chunk, so that a test can cancel the job mid-way. */
  pauseMsPerChunk?: number
}

export type CorpusScatter = CorpusScores['fidelity']['scatter']

/** The contract's shape with typed arrays, and the per-token arrays the wire leaves out. */
export interface CorpusScores extends CorpusScoresOf<TypedArrays> {
  /** vec·resid_mid for every token of the corpus (global index sequence · seqLen + pos). */
  scores: Float32Array
  /** The feature's true pre-activation at every token. */
  preActivations: Float32Array
}

/** k indices spread evenly over [0, n) (all of them when n ≤ k). */
function evenly(n: number, k: number): number[] {
  if (n <= k) return Array.from({ length: n }, (_, i) => i)
  return Array.from({ length: k }, (_, j) => Math.floor(((j + 0.5) * n) / k))
}

/**
 * Scatter points: half spread over the whole corpus, half over the tokens where the feature fires or is
 * predicted to, which a uniform sample of a large corpus would almost never hit.
 */
export function scatterSample(predicted: Float32Array, pre: Float32Array, points: number): CorpusScatter {
  const n = predicted.length
  const active: number[] = []
  for (let i = 0; i < n; i++) if (pre[i] > 0 || predicted[i] > 0) active.push(i)
  const fromActive = evenly(active.length, Math.floor(points / 2)).map((j) => active[j])
  const picks = [...new Set([...evenly(n, points - fromActive.length), ...fromActive])].sort((a, b) => a - b)
  return {
    token: Uint32Array.from(picks),
    predicted: Float32Array.from(picks, (i) => predicted[i]),
    preActivation: Float32Array.from(picks, (i) => pre[i]),
  }
}

export async function corpusScores(bundle: Bundle, engine: CorpusScoresEngine, point: TracePoint, opts: CorpusScoresOptions): Promise<CorpusScores> {
  const started = performance.now()
  const { sae, display } = bundleViews(bundle)
  const feature = point.feature
  const rowLimit = opts.rowLimit ?? 100

  // The direction: v or u at the point, from the point's own sequence.
  const { ref, lin } = await pointDirection(bundle, engine, point)
  const resid = tracePlan(bundle).resid
  const vector = opts.convention === 'v' ? lin.v : lin.u
  const dotResidMid = opts.convention === 'v' ? lin.vDotResid : lin.uDotResid
  const e = encoderColumn(sae, feature)
  const bias = preBias(sae, feature, e)

  // Every token of the corpus: vector·resid_mid and the true pre-activation W_enc[:,f]·(hook − b_dec) + b_enc[f]
  // (and, for a TopK SAE, the rival each token's gate compares with: gate.ts).
  const { nSeq, seqLen, data } = bundle.tokens
  const totalTokens = nSeq * seqLen
  const scores = new Float32Array(totalTokens)
  const preActivations = new Float32Array(totalTokens)
  const topK = bundle.config.sae.kind === 'topk'
  const rivals = topK ? { value: new Float32Array(totalTokens), index: new Int32Array(totalTokens), selected: new Uint8Array(totalTokens) } : undefined
  const chunkSeqs = Math.max(1, opts.chunkSeqs ?? Math.floor(CORPUS_CHUNK_TOKENS / seqLen))
  const projections: BlockProjectionRequest['projections'] = [
    { hook: resid, vectors: vector },
    { hook: bundle.config.sae.hook_point as HookName, vectors: e },
  ]
  const computeStarted = performance.now()
  const report = (doneTokens: number): void => {
    const secs = (performance.now() - computeStarted) / 1000
    const rate = secs > 0 ? doneTokens / secs : 0
    opts.onProgress?.({ jobId: opts.jobId ?? '', doneTokens, totalTokens, tokensPerSec: rate, etaSec: rate > 0 ? (totalTokens - doneTokens) / rate : null })
  }
  report(0)
  for (let s0 = 0; s0 < nSeq; s0 += chunkSeqs) {
    const n = Math.min(chunkSeqs, nSeq - s0)
    const first = s0 * seqLen
    const tokens = data.subarray(first, first + n * seqLen)
    const req = { key: `corpus:${s0}:${n}`, tokens, nSeq: n, seqLen }
    const [chunkScores, hookProj] = await engine.projectBlock({ ...req, projections })
    const chunkRivals = await topKRivals(bundle, engine, req, feature)
    if (rivals && chunkRivals) {
      rivals.value.set(chunkRivals.value, first)
      rivals.index.set(chunkRivals.index, first)
      rivals.selected.set(chunkRivals.selected, first)
    }
    scores.set(chunkScores, first)
    for (let i = 0; i < tokens.length; i++) preActivations[first + i] = hookProj[i] + bias
    report(first + tokens.length)
    if (opts.pauseMsPerChunk) await new Promise((r) => setTimeout(r, opts.pauseMsPerChunk))
  }

  const view: ScopeView = { corpus: data, seqLen, display, firstToken: 0 }
  const fid = fidelity(view, scores, lin.preActivation, dotResidMid, preActivations, rowLimit, gateOf(bundle, feature, rivals))
  return {
    feature,
    point: ref,
    convention: opts.convention,
    vector,
    preActivation: lin.preActivation,
    dotResidMid,
    nSeq,
    seqLen,
    scores,
    preActivations,
    top: scoreRows(view, scores, rowLimit),
    bottom: scoreRows(view, scores, rowLimit, false),
    histogram: histogram(scores, opts.bins ?? 50, 'linear'),
    fidelity: {
      pearson: fid.pearson,
      pearsonRelu: fid.pearsonRelu,
      disagreements: fid.disagreements,
      firingDisagreements: fid.firingDisagreements,
      scatter: scatterSample(fid.predicted, preActivations, opts.scatterPoints ?? 4000),
    },
    elapsedSec: (performance.now() - started) / 1000,
  }
}

/** The contract's JSON form (the per-token arrays stay behind: a million tokens are too many to send). */
export function corpusScoresToJson(r: CorpusScores, jobId: string): CorpusScoresJson {
  const { scores: _s, preActivations: _p, ...sent } = r
  return { jobId, ...toWire(sent) }
}
