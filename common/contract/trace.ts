// Traces (issue 5): the JSON form of main/trace's Trace (main/trace/serialize.ts builds it), so the page,
// the HTTP bridge and the CLI all receive the same plain shape; typed arrays arrive as number arrays.
import { z } from 'zod'
import type { CacheProgress } from './cache'
import { channel, featureId, nonNegInt } from './channel'
import type { ActivationRow, Histogram } from './features'


/** One vocabulary entry: its id, its text with visible whitespace, its score. */
export interface TokenScoreJson {
  tokenId: number
  str_tokens: string
  score: number
}

/** A vocabulary table. `rows` (every token, highest score first) only when the request asked vocabRows 'all'. */
export interface VocabTableJson {
  top: TokenScoreJson[]
  bottom: TokenScoreJson[]
  rows?: [tokenId: number, str_tokens: string, score: number][]
}

/** vec·resid_mid at the point, term by term (main/trace/decompose.ts). */
export interface DecompositionJson {
  embed: number
  pos: number
  b_O: number
  earlierAttnOut: number[]
  earlierMlpOut: number[]
  /** [head][source s ≤ t], weighted by the attention pattern. */
  heads: number[][]
  /** [head][source s ≤ t] without the pattern weight (OV only). */
  headsOv: number[][]
  total: number
  sumOfTerms: number
  /** total − sumOfTerms. */
  residual: number
}

/** A row of an activation-score grid: the token table's columns, with the score in place of the activation. */
export type ScoreRowJson = Omit<ActivationRow, 'activation'> & { score: number }

export type FidelityRowJson = ScoreRowJson & { predicted: number; preActivation: number; activation: number; error: number }

export interface HeadTablesJson {
  head: number
  ovTokens: VocabTableJson
  lnOv: VocabTableJson
  qkSeed: VocabTableJson
}

export type TraceConvention = 'v' | 'u'

/** What a convention gives at the point. */
export interface ConventionPointJson {
  convention: TraceConvention
  /** What the UI should say about this convention. */
  label: string
  vector: number[]
  dotResidMid: number
  tokenScores: VocabTableJson
  decomposition: DecompositionJson
  heads: HeadTablesJson[]
}

/** What a convention gives over the scope (the point's 128-sequence batch, or the prompt). */
export interface ConventionScopeJson {
  /** vector·resid_mid for every token of the scope. */
  activationScores: number[]
  topRows: ScoreRowJson[]
  fidelity: { pearson: number; pearsonRelu: number; predicted: number[]; disagreements: FidelityRowJson[] }
}

export type ConventionTraceJson = ConventionPointJson & ConventionScopeJson

export interface QkGridJson {
  head: number
  queryToken: number
  queryPos: number
  tokens: number[]
  relativePositions: number[]
  /** [token][relative position]; null where the key position would precede the sequence. */
  scores: (number | null)[][]
}

/** The point part of a trace (trace.point): everything that needs only the point's own sequence. */
export interface TracePointJson {
  feature: number
  hookPoint: string
  layer: number
  point: { kind: 'corpus'; sample: number; pos: number } | { kind: 'prompt'; prompt: string; pos: number }
  tokenId: number
  sequence: number[]
  sequenceStrTokens: string[]
  activation: number
  preActivation: number
  ln2Scale: number
  cosineVU: number
  v: ConventionPointJson
  u: ConventionPointJson
  sourcePos: number
  head: number
  /** The exact QK table of each head. */
  qk: (VocabTableJson & { head: number })[]
  qkGrid: QkGridJson
  qkPairs: { head: number; queryToken: number; queryPos: number; keyToken: number; keyPos: number; score: number }[]
  /** null for an SAE on mlp.hook_pre. */
  logitEffect: VocabTableJson | null
  scope: TraceScopeKind
  timingsMs: Record<string, number>
}

/** Global sequences [start, start + count) of the corpus, or the typed prompt. */
export type TraceScopeKind = { kind: 'batch'; start: number; count: number; seqLen: number } | { kind: 'prompt'; seqLen: number }

/** The scope part of a trace (trace.scope): it needs the forward pass of the point's whole batch. */
export interface TraceScopeJson {
  scope: TraceScopeKind
  v: ConventionScopeJson
  u: ConventionScopeJson
  /** The feature's true pre-activation and activation for every token of the scope. */
  scopePreActivations: number[]
  scopeActivations: number[]
  timingsMs: Record<string, number>
}

/** A whole trace (trace.run, the CLI): the point part with the scope part merged in. */
export interface TraceJson extends Omit<TracePointJson, 'v' | 'u'> {
  v: ConventionTraceJson
  u: ConventionTraceJson
  scopePreActivations: number[]
  scopeActivations: number[]
}

export interface PromptViewJson {
  prompt: string
  tokens: { pos: number; tokenId: number; str_tokens: string; top: { feature: number; activation: number }[]; firing: number }[]
  strip: { feature: number; activations: number[] } | null
}

/** A vocabulary token's score in trace A minus its score in trace B. */
export interface TokenScoreDiffJson {
  tokenId: number
  /** The token's text with visible whitespace, as in every vocabulary table. */
  str_tokens: string
  diff: number
}

export interface TraceComparisonJson {
  cosineV: number
  cosineU: number
  tokenScoreDiff: { convention: TraceConvention; moreInA: TokenScoreDiffJson[]; moreInB: TokenScoreDiffJson[] }
}

/**
 * Activation scores over the whole corpus (issue 5 §2), a background job: vector·resid_mid for every token
 * of tokens.safetensors, and the fidelity of the linear prediction pre(x0) + vector·(x − x0) against the
 * feature's true pre-activation and activation at every token.
 */
export interface CorpusScoresJson {
  jobId: string
  feature: number
  point: TraceJson['point']
  convention: TraceConvention
  /** The linearized direction (v or u at the point) every token was scored along. */
  vector: number[]
  preActivation: number
  dotResidMid: number
  nSeq: number
  seqLen: number
  /** The highest and lowest scores of the corpus, the seed's token-table columns. */
  top: ScoreRowJson[]
  bottom: ScoreRowJson[]
  /** Every token's score, equal-width bins over [min, max] (`scale` is always 'linear'). */
  histogram: Histogram
  fidelity: {
    pearson: number
    pearsonRelu: number
    /** The tokens where prediction and truth disagree most, |error| descending. */
    disagreements: FidelityRowJson[]
    /**
     * Points for a scatter plot, far fewer than the corpus: evenly spaced tokens of the whole corpus, and
     * evenly spaced tokens among those where the feature fires or is predicted to (rare in a large corpus).
     * `token` is the global index, sequence · seqLen + pos.
     */
    scatter: { token: number[]; predicted: number[]; preActivation: number[] }
  }
  elapsedSec: number
}

/** A corpus-scores job's progress: a cache build's, without phases. */
export type CorpusScoresProgress = Omit<CacheProgress, 'phase'>

/** Prompt text; its token count is checked against n_ctx by the handler (a clear message, never a cut). */
const promptText = z.string().min(1, 'the prompt is empty: type some text to trace').max(100_000)

/** Where a trace sits: a corpus token (sequence `sample`, position `pos`), or token `token` of a typed prompt. */
export const tracePoint = z.union([
  z.strictObject({ feature: featureId, sample: nonNegInt, pos: nonNegInt }),
  z.strictObject({ feature: featureId, prompt: promptText, token: nonNegInt }),
])
export type TracePointRequest = z.infer<typeof tracePoint>

/** Rows of an activation-score or disagreement grid. */
const rowLimit = z.number().int().min(1).max(10_000).default(100)

export const traceOptions = z.strictObject({
  /** Source position of the LN+OV and QK tables (default: the largest term of v's decomposition). */
  sourcePos: nonNegInt.optional(),
  /** Head of the QK grid and pairs (default: the head with the largest Σ|term|). */
  head: nonNegInt.optional(),
  /** Tokens of the QK grid (default: the five before the point). */
  gridTokens: z.array(nonNegInt).min(1).max(64).optional(),
  /** Rows per top/bottom vocabulary list. */
  topK: z.number().int().min(1).max(1000).default(20),
  /** Rows of the activation-score and disagreement grids. */
  rowLimit,
  /** 'all' adds every vocabulary row to every table (d_vocab rows each: large); 'top' keeps the top/bottom lists. */
  vocabRows: z.enum(['all', 'top']).default('top'),
})
export type TraceOptionsRequest = z.infer<typeof traceOptions>

export const traceChannels = {
  /** One trace: v and u, their decompositions, circuit tables, activation scores and fidelity. */
  'trace.run': channel<TraceJson>()(z.strictObject({ point: tracePoint, options: traceOptions.prefault({}) })),
  /**
   * The point part of a trace: all of trace.run but the scope's arrays. It never runs the batch's forward
   * pass, so it answers fast on a batch not seen before; the app asks for the scope after it.
   */
  'trace.point': channel<TracePointJson>()(z.strictObject({ point: tracePoint, options: traceOptions.prefault({}) })),
  /** The scope part of a trace: activation scores and fidelity over the point's batch (or its prompt). */
  'trace.scope': channel<TraceScopeJson>()(
    z.strictObject({ point: tracePoint, rowLimit }),
  ),
  /**
   * Runs the forward passes of the batches holding these corpus sequences (the first two distinct ones),
   * so traces there get their scope without one; the app asks when a feature's top activations show.
   */
  'trace.prefetch': channel<{ batches: number }>()(z.strictObject({ samples: z.array(nonNegInt).min(1).max(64) })),
  /** A typed prompt: its tokens, each token's top features, and one feature's heat strip. */
  'trace.prompt': channel<PromptViewJson>()(
    z.strictObject({ prompt: promptText, topK: z.number().int().min(1).max(1000).default(10), feature: featureId.optional() }),
  ),
  /** Two traces side by side: cosine of v and of u, and where their W_E token scores differ most. */
  'trace.compare': channel<TraceComparisonJson>()(
    z.strictObject({ a: tracePoint, b: tracePoint, convention: z.enum(['v', 'u']).default('v'), topK: z.number().int().min(1).max(1000).default(20) }),
  ),
}

export const corpusScoreChannels = {
  /**
   * Starts the whole-corpus activation scores of a trace point (one job at a time: `busy` while another
   * runs). Progress and the result arrive as 'trace.corpusScores.progress' / 'trace.corpusScores.done'.
   */
  'trace.corpusScores': channel<{ jobId: string }>()(
    z.strictObject({
      point: tracePoint,
      convention: z.enum(['v', 'u']).default('v'),
      /** Rows of the top, bottom and disagreement grids. */
      rowLimit,
      bins: z.number().int().min(1).max(1000).default(50),
      /** Points of the fidelity scatter plot. */
      scatterPoints: z.number().int().min(0).max(100_000).default(4000),
    }),
  ),
  'trace.corpusScores.cancel': channel<{ cancelled: boolean }>()(z.strictObject({ jobId: z.string().min(1) })),
  /** The result of the last finished job again (e.g. after the event stream reconnected); `not_found` for any other id. */
  'trace.corpusScores.result': channel<CorpusScoresJson>()(z.strictObject({ jobId: z.string().min(1) })),
}
