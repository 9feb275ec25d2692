// Traces (issue 5). Each shape of a trace is declared once here, generic in how it holds its arrays
// (TraceArrays): main/trace computes with typed arrays and vocabulary scores (its `TypedArrays`), and the
// page, the HTTP bridge and the CLI receive the wire form (`WireArrays`: plain number arrays, vocabulary
// tables), which main/trace/serialize.ts makes from the typed one. The *Json names are the wire forms.
import { z } from 'zod'
import { jobId, type JobProgress } from './jobs'
import { channel, featureId, nonNegInt } from './channel'
import type { ActivationRow, Histogram } from './features'

/** How a trace holds its arrays: the one thing its typed form (in main) and its wire form differ in. */
export interface TraceArrays {
  /** Float vectors and per-token values. */
  floats: ArrayLike<number>
  /** The token ids of a sequence. */
  tokenIds: ArrayLike<number>
  /** Global token indices into the corpus, sequence · seqLen + pos. */
  tokenIndices: ArrayLike<number>
  /** A score for every vocabulary token. */
  vocab: object
}

/** The wire form: plain number arrays, and vocabulary tables of top/bottom lists (every row when asked). */
export interface WireArrays extends TraceArrays {
  floats: number[]
  tokenIds: number[]
  tokenIndices: number[]
  vocab: VocabTableJson
}

/** One vocabulary entry: its id, its text with visible whitespace (· ↩ →), its score. */
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

/** One attention layer's terms of a decomposition. */
export interface AttentionTermsJson {
  layer: number
  /** [head][source s ≤ t], weighted by the attention pattern. */
  heads: number[][]
  /** [head][source s ≤ t] without the pattern weight (OV only). */
  headsOv: number[][]
  /** vec·b_O of the layer (0 for attn.hook_z, which has none). */
  b_O: number
}

/**
 * vec·R at the point term by term, R the trace's residual point (`resid`; main/trace/decompose.ts): every
 * component before it. For an attention hook (attn.hook_z, hook_attn_out), its value·W_enc[:,f] over its
 * layer's heads × sources instead, with no embedding terms (embed and pos null).
 */
export interface DecompositionJson {
  embed: number | null
  pos: number | null
  /** Every attention layer before R, first to last: its direct terms per head × source position, and b_O. */
  attn: AttentionTermsJson[]
  /** hook_mlp_out·vec of every MLP before R, first to last. */
  mlpOut: number[]
  total: number
  sumOfTerms: number
  /** total − sumOfTerms. */
  residual: number
}

/** A row of an activation-score grid: the token table's columns, with the score in place of the activation. */
export type ScoreRowJson = Omit<ActivationRow, 'activation'> & { score: number }

export type FidelityRowJson = ScoreRowJson & {
  /** pre(x0) + vec·(x − x0): the linear prediction of the pre-activation (`score` holds it too). */
  predicted: number
  preActivation: number
  activation: number
  /** predicted − preActivation */
  error: number
}

/**
 * One head's circuit tables along a convention's vector. A trace carries them for its `head` only (each is a
 * pass over the vocabulary); another head's come with a trace for that head (options.head).
 */
export interface HeadTablesOf<A extends TraceArrays> {
  /** The trace's `head`. */
  head: number
  /** W_E · W_V[h] W_O[h] vec (raw, as the seed's OV table). */
  ovTokens: A['vocab']
  /** LN1(W_E[x] + W_pos[sourcePos]) · W_V[h] W_O[h] vec + b_V[h] W_O[h] vec: exact. */
  lnOv: A['vocab']
  /** W_E · W_Q[h] W_K[h]ᵀ vec: the seed's QK definition, for comparison only. */
  qkSeed: A['vocab']
}
export type HeadTablesJson = HeadTablesOf<WireArrays>

export type TraceConvention = 'v' | 'u'

/** What a convention gives at the point. */
export interface ConventionPointOf<A extends TraceArrays> {
  convention: TraceConvention
  /** What the UI should say about this convention. */
  label: string
  vector: A['floats']
  /** vector · R at the point, R the trace's `resid` (≈ 0 for v where a LayerNorm is on the path, by its scale invariance). */
  dotResidMid: number
  /** W_E · vector. */
  tokenScores: A['vocab']
  /** Every head's terms (the heatmap, the head picker's list). */
  decomposition: DecompositionJson
  /** The circuit tables of the trace's `head`. */
  headTables: HeadTablesOf<A>
}
export type ConventionPointJson = ConventionPointOf<WireArrays>

export interface FidelityOf<A extends TraceArrays> {
  /** Pearson r of the linear prediction against the true pre-activation over the scope. */
  pearson: number
  /** Pearson r of ReLU(prediction) against the true activation. */
  pearsonRelu: number
  /** The linear prediction for every token of the scope. */
  predicted: A['floats']
  /** The tokens where prediction and truth disagree most, |error| descending. */
  disagreements: FidelityRowJson[]
  /** The same among the tokens where the feature fires (activation > 0), |error| descending. */
  firingDisagreements: FidelityRowJson[]
}

/** What a convention gives over the scope (the point's 128-sequence batch, or the prompt). */
export interface ConventionScopeOf<A extends TraceArrays> {
  /** vector·R (the trace's resid) for every token of the scope. */
  activationScores: A['floats']
  /** The highest-scoring rows. */
  topRows: ScoreRowJson[]
  fidelity: FidelityOf<A>
}
export type ConventionScopeJson = ConventionScopeOf<WireArrays>

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

/** One query token/position against one key token/position (the seed's do_single_token_qk, exact). */
export interface QkPairJson {
  head: number
  queryToken: number
  queryPos: number
  keyToken: number
  keyPos: number
  score: number
}

/** Where a trace sits: a corpus token, or a token of a typed prompt. */
export type TracePlaceJson = { kind: 'corpus'; sample: number; pos: number } | { kind: 'prompt'; prompt: string; pos: number }

/** Global sequences [start, start + count) of the corpus, or the typed prompt. */
export type TraceScopeKind = { kind: 'batch'; start: number; count: number; seqLen: number } | { kind: 'prompt'; seqLen: number }

/** The point part of a trace (trace.point): everything that needs only the point's own sequence. */
export interface TracePointOf<A extends TraceArrays> {
  feature: number
  hookPoint: string
  /** The SAE's layer. */
  layer: number
  /** The attention layer of the circuit tables (OV, LN+OV, QK): the last one before `resid`, or the SAE's own for an attention hook. */
  circuitLayer: number
  point: TracePlaceJson
  tokenId: number
  /** The point's sequence (the prompt's token ids for a prompt), and each token's visible text. */
  sequence: A['tokenIds']
  sequenceStrTokens: string[]
  activation: number
  preActivation: number
  /** The residual-stream hook v and u live at and the scores project (e.g. blocks.1.hook_resid_mid). */
  resid: string
  /** The LayerNorm u freezes and its scale at the point; null where none is on the path (residual hooks: u = v). */
  frozenLn: { name: 'ln1' | 'ln2'; scale: number } | null
  /** cosine(v, u) at this point. */
  cosineVU: number
  v: ConventionPointOf<A>
  u: ConventionPointOf<A>
  /** Source position of the LN+OV and QK tables. */
  sourcePos: number
  /** Head of the circuit tables (each convention's headTables, qk), the QK grid and pairs. */
  head: number
  /** The exact QK table of `head`: the point's query against every token x at sourcePos. */
  qk: A['vocab'] & { head: number }
  qkGrid: QkGridJson
  qkPairs: QkPairJson[]
  /** W_dec[f] · W_out · W_U (null for an SAE on mlp.hook_pre, where it has no meaning). */
  logitEffect: A['vocab'] | null
  /** The scope of activation scores and fidelity. */
  scope: TraceScopeKind
  timingsMs: Record<string, number>
}
export type TracePointJson = TracePointOf<WireArrays>

/** The scope part of a trace (trace.scope): it needs the forward pass of the point's whole batch. */
export interface TraceScopeOf<A extends TraceArrays> {
  scope: TraceScopeKind
  v: ConventionScopeOf<A>
  u: ConventionScopeOf<A>
  /** The feature's true pre-activation and activation for every token of the scope. */
  scopePreActivations: A['floats']
  scopeActivations: A['floats']
  timingsMs: Record<string, number>
}
export type TraceScopeJson = TraceScopeOf<WireArrays>

/** A whole trace (trace.run, the CLI): the point part with the scope part merged in. */
export type TraceOf<A extends TraceArrays> = Omit<TracePointOf<A>, 'v' | 'u'> & {
  v: ConventionPointOf<A> & ConventionScopeOf<A>
  u: ConventionPointOf<A> & ConventionScopeOf<A>
  scopePreActivations: A['floats']
  scopeActivations: A['floats']
}
export type TraceJson = TraceOf<WireArrays>

export interface PromptViewJson {
  prompt: string
  tokens: {
    pos: number
    tokenId: number
    /** The token's text with whitespace made visible (· ↩ →). */
    str_tokens: string
    /** Every firing feature of this token, strongest first, up to the limit asked for. */
    top: { feature: number; activation: number }[]
    /** How many features fire on this token in all (top may hold fewer). */
    firing: number
  }[]
  /** The chosen feature's activation on every token, when one was asked for. */
  strip: { feature: number; activations: number[] } | null
}

/** A vocabulary token's score in trace A minus its score in trace B. */
export interface TokenScoreDiffJson {
  tokenId: number
  /** The token's text with visible whitespace, as in every vocabulary table. */
  str_tokens: string
  diff: number
}

/**
 * One term of two decompositions matched (issue 14 §6): the same kind, layer and head, and for an
 * attention term the same relative source (offset = source − destination position, 0 = the token itself,
 * −1 = the one before). A term only one point has counts 0 on the other side (a shorter prefix).
 */
export interface TermPairJson {
  kind: 'embed' | 'pos' | 'attn' | 'b_O' | 'mlp_out'
  /** The component's layer; null for embed and pos. */
  layer: number | null
  head: number | null
  offset: number | null
  /** The source token's text on each side (attention terms), else null. */
  tokenA: string | null
  tokenB: string | null
  a: number
  b: number
  /** a − b */
  diff: number
}

/**
 * Both points' activation scores over the same tokens (issue 14 §6): A's scope (its batch, or its prompt)
 * scored by A's vector and by B's, in the compared convention; a token every direction reads alike lies on
 * a line, one only A's reads lies along x.
 */
export interface ScoreScatterJson {
  scope: TraceScopeKind
  /** vec_A·R and vec_B·R for every token of the scope (R the trace's residual point). */
  a: number[]
  b: number[]
  /** Pearson r of a against b. */
  pearson: number
  /** A's point among the scope's tokens, and B's where it is one of them (else −1). */
  pointA: number
  pointB: number
}

export interface TraceComparisonJson {
  cosineV: number
  cosineU: number
  /** The two directions' activation scores over A's scope. */
  scores: ScoreScatterJson
  /** Both decompositions (of `tokenScoreDiff.convention`'s vector) term by term, matched, |diff| descending. */
  terms: TermPairJson[]
  /** (W_E·a − W_E·b) for the chosen convention: the tokens a favours most, then those b favours most. */
  tokenScoreDiff: { convention: TraceConvention; moreInA: TokenScoreDiffJson[]; moreInB: TokenScoreDiffJson[] }
}

/**
 * One causal check (trace.ablate): a head × source term of u's decomposition (`source` null: the whole head,
 * every source) removed from the residual point at the point's position, the rest of the way to the SAE run
 * again. Both numbers are the term's contribution: predicted = u·term, actual = pre(x) − pre(x − term).
 * The mean-ablation replaces the term by its mean over the corpus sample instead (null where there is none).
 */
export interface AblationJson {
  layer: number
  head: number
  source: number | null
  predicted: number
  actual: number
  meanPredicted: number | null
  meanActual: number | null
}

/** Causal checks at a trace point: the largest head × source terms, then every whole head (docs/BUNDLE.md). */
export interface AblationsJson {
  feature: number
  point: TracePlaceJson
  hookPoint: string
  /** The trace's residual point R. */
  resid: string
  /** Where the terms are removed: R, or an attention hook's own value (whose heads × sources sum to it). */
  removedFrom: string
  /** The feature's pre-activation at the point, as the checks compute it. */
  preActivation: number
  ablations: AblationJson[]
  /** Pearson r of predicted against actual over the checks (null when undefined: fewer than two, or constant). */
  pearson: number | null
  meanPearson: number | null
  /** Corpus sequences 0…n−1 the mean-ablation averages over; null without one. */
  meanSequences: number | null
  timingsMs: Record<string, number>
}

/**
 * Activation scores over the whole corpus (issue 5 §2), a background job: vector·resid_mid for every token
 * of tokens.safetensors, and the fidelity of the linear prediction pre(x0) + vector·(x − x0) against the
 * feature's true pre-activation and activation at every token.
 */
export interface CorpusScoresOf<A extends TraceArrays> {
  feature: number
  point: TracePlaceJson
  convention: TraceConvention
  /** The linearized direction (v or u at the point) every token was scored along. */
  vector: A['floats']
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
    /** The same among the tokens where the feature fires (absent in session files saved before it existed). */
    firingDisagreements?: FidelityRowJson[]
    /**
     * Points for a scatter plot, far fewer than the corpus: evenly spaced tokens of the whole corpus, and
     * evenly spaced tokens among those where the feature fires or is predicted to (rare in a large corpus).
     */
    scatter: { token: A['tokenIndices']; predicted: A['floats']; preActivation: A['floats'] }
  }
  elapsedSec: number
}

/** A finished corpus-scores job's result (its per-token arrays stay in the job: too many to send). */
export interface CorpusScoresJson extends CorpusScoresOf<WireArrays> {
  jobId: string
}

/** A corpus-scores job's progress as the job reports it (main adds the kind, and its one phase). */
export type CorpusScoresProgress = Omit<JobProgress, 'kind' | 'phase'>

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

/**
 * Who asks (the page sends its trace tab's id): a newer request of the same channel from the same caller
 * supersedes one still running, which is stopped and answers `busy` ("superseded by a newer request").
 * Without it nothing is superseded. trace.cancel stops a caller's requests.
 */
const caller = z.string().min(1).max(200).optional()

export const traceOptions = z.strictObject({
  /** Source position of the LN+OV and QK tables (default: the largest term of v's decomposition). */
  sourcePos: nonNegInt.optional(),
  /**
   * Head of the circuit tables (OV, LN+OV, QK, the seed's QK), the QK grid and pairs: only this head's tables
   * are computed (default: the head with the largest Σ|term| of v's decomposition at the circuit layer).
   */
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
  'trace.point': channel<TracePointJson>()(z.strictObject({ point: tracePoint, options: traceOptions.prefault({}), caller })),
  /** The scope part of a trace: activation scores and fidelity over the point's batch (or its prompt). */
  'trace.scope': channel<TraceScopeJson>()(
    z.strictObject({ point: tracePoint, rowLimit, caller }),
  ),
  /**
   * Runs the forward passes of the batches holding these corpus sequences (the first two distinct ones),
   * so traces there get their scope without one; the app asks when a feature's top activations show.
   */
  'trace.prefetch': channel<{ batches: number }>()(z.strictObject({ samples: z.array(nonNegInt).min(1).max(64) })),
  /** A typed prompt: its tokens, each token's top features, and one feature's heat strip. */
  'trace.prompt': channel<PromptViewJson>()(
    z.strictObject({ prompt: promptText, topK: z.number().int().min(1).max(1000).default(10), feature: featureId.optional(), caller }),
  ),
  /** Two traces side by side: cosine of v and of u, and where their W_E token scores differ most. */
  'trace.compare': channel<TraceComparisonJson>()(
    z.strictObject({ a: tracePoint, b: tracePoint, convention: z.enum(['v', 'u']).default('v'), topK: z.number().int().min(1).max(1000).default(20) }),
  ),
  /**
   * Causal checks (issue 15 §2): the `terms` largest head × source terms of u's decomposition and every whole
   * head, each removed from the residual point and the pre-activation computed again; with `mean`, the same
   * with the term replaced by its corpus mean.
   */
  'trace.ablate': channel<AblationsJson>()(
    z.strictObject({ point: tracePoint, terms: z.number().int().min(1).max(1000).default(20), mean: z.boolean().default(true), caller }),
  ),
  /** Stops every trace request of this caller still running (a closed tab's); each answers `busy`. */
  'trace.cancel': channel<{ cancelled: number }>()(z.strictObject({ caller: z.string().min(1).max(200) })),
}

export const corpusScoreChannels = {
  /**
   * Starts the whole-corpus activation scores of a trace point as job `jobId` (one at a time: `busy` while
   * another runs). Progress and the result arrive as 'job.progress' / 'job.done'; job.cancel stops it.
   */
  'trace.corpusScores': channel<{ jobId: string }>()(
    z.strictObject({
      jobId,
      point: tracePoint,
      convention: z.enum(['v', 'u']).default('v'),
      /** Rows of the top, bottom and disagreement grids. */
      rowLimit,
      bins: z.number().int().min(1).max(1000).default(50),
      /** Points of the fidelity scatter plot. */
      scatterPoints: z.number().int().min(0).max(100_000).default(4000),
    }),
  ),
  /** The result of the last finished job again (e.g. after the event stream reconnected); `not_found` for any other id. */
  'trace.corpusScores.result': channel<CorpusScoresJson>()(z.strictObject({ jobId: z.string().min(1) })),
}
