// THE IPC contract: every channel's request schema and response type, and the events main pushes.
// main (main/ipc/handlers.ts), preload and renderer all take their types from here, so a renamed field
// fails the type check on every side. The renderer type-checks this file (tsconfig.web.json): keep it
// free of Node imports — zod and plain types only.
//
// To add a domain, write a `const traceChannels = { ... }` block below and spread it into
// `contract`; the handler table then fails to type-check until main implements the new channels.
import { z } from 'zod'

/** A channel: the request's zod schema plus a phantom of the response type. */
export interface ChannelDef<Req extends z.ZodType, Res> {
  readonly request: Req
  /** Type-level only; never set at runtime. Wrapped in a tuple so `null`/`undefined` responses survive. */
  readonly __response?: [Res]
}

const channel =
  <Res>() =>
  <Req extends z.ZodType>(request: Req): ChannelDef<Req, Res> => ({ request })

// ---------------------------------------------------------------------------------------------------
// Shared shapes

export const featureId = z.number().int().nonnegative()
const empty = z.strictObject({})

/** Errors cross IPC as data; `code` is stable and machine-readable, `message` is for people. */
export type ErrorCode =
  | 'invalid_request' // the payload failed its schema; message names the field
  | 'unknown_channel'
  | 'not_found' // e.g. a feature id ≥ d_sae, a missing session file, an unknown job id
  | 'no_bundle' // no bundle is open, or the folder is not a valid bundle
  | 'bundle_invalid'
  | 'cache_missing' // the activation cache has not been built (or not finished)
  | 'cache_stale' // the cache was built for other model/SAE/token hashes or another schema version
  | 'cache_corrupt' // the cache file cannot be read (damaged, truncated, not SQLite): rebuild moves it aside
  | 'cache_foreign' // the file at the cache path is not this app's cache: it is never touched
  | 'busy' // a cache build is already running
  | 'session_corrupt'
  | 'session_future_version'
  | 'io'
  | 'unsupported' // this host cannot do it (e.g. a native file dialog in serve mode): fall back in the page
  | 'internal'

export interface IpcError {
  code: ErrorCode
  message: string
}

export type Result<T> = { ok: true; value: T } | { ok: false; error: IpcError }

export interface ModelConfig {
  n_layers: number
  d_model: number
  n_heads: number
  d_head: number
  d_mlp: number
  d_vocab: number
  n_ctx: number
  act_fn: string
  normalization_type: string
  eps: number
  positional_embedding_type: string
  dtype?: string
}

export interface SaeConfig {
  hook_point: string
  d_in: number
  d_sae: number
  kind: string
  dtype?: string
}

export interface DatasetConfig {
  name?: string
  n_seq: number
  seq_len: number
  prepend_bos: boolean
  bos_token_id?: number | null
}

export type ExecutionProviderName = 'cuda' | 'dml' | 'coreml' | 'cpu'

export type CacheStateName =
  | 'missing' // no cache file, or an empty one
  | 'partial' // some chunks committed, build not running (killed, cancelled or crashed): cache.build resumes
  | 'building'
  | 'ready'
  | 'stale' // built for different hashes or schema: queries refused, cache.build rebuilds
  | 'corrupt' // cannot be read, or claims to be complete and is not: cache.build moves it aside and starts over
  | 'foreign' // another program's SQLite file: left as it is; choose another cache path

export interface CacheProgress {
  jobId: string
  phase: 'compute' | 'finalize'
  doneTokens: number
  totalTokens: number
  tokensPerSec: number
  /** Seconds left at the current rate; null until the rate is known. */
  etaSec: number | null
}

export interface CacheState {
  state: CacheStateName
  path: string
  doneTokens: number
  totalTokens: number
  sizeBytes: number
  /** Why a cache is stale, corrupt or foreign, in words (which hash or version differs, what is damaged). */
  reason?: string
  /** ISO time the build finished (state 'ready'). */
  builtAt?: string
  /** The running job, when state is 'building'. */
  job?: CacheProgress
}

/** A file the app could not read and renamed, rather than overwrite: where it was, where it is now, why. */
export interface MovedAside {
  from: string
  to: string
  reason: string
}

/** Something the researcher must be told even though no request failed (shown as a banner until dismissed). */
export interface Notice {
  id: string
  /** ISO time. */
  at: string
  message: string
  movedAside?: MovedAside
}

export interface BundleInfo {
  path: string
  /** Identifies the bundle (from its provenance sha256s); sessions and labels are keyed by it. */
  hash: string
  name: string
  model: ModelConfig
  sae: SaeConfig
  dataset: DatasetConfig
  quality: Record<string, number>
  /**
   * The execution provider ONNX Runtime runs on: the app's compute worker's, else the one the cache was
   * built with; null while no engine has run for this bundle.
   */
  provider: ExecutionProviderName | null
  cache: CacheState
}

/** One row of the features browser. Dead features have count 0 and null token fields. */
export interface FeatureSummary {
  id: number
  /** Firing fraction: tokens with a non-zero activation / all tokens in the corpus. */
  density: number
  /** Number of firings (non-zero activations) in the corpus. */
  count: number
  max: number
  /** Mean over firings (non-zero activations only), not over all tokens. */
  mean: number
  /** The most common token among the feature's firings (id and display text), or null. */
  topTokenId: number | null
  topToken: string | null
  /** Single-token classifier "fires ⇔ token is topToken": precision, recall, F1. */
  precision: number | null
  recall: number | null
  f1: number | null
  label: string
  notes: string
}

/** A row of the seed's token table: one (sequence, position) and the feature's activation there. */
export interface ActivationRow {
  /** The token's text, space → ·, newline → ↩, tab → →. */
  str_tokens: string
  /** `str_tokens/pos` */
  unique_token: string
  /** Five tokens before, `|token|`, one after. */
  context: string
  /** Sequence index in the corpus. */
  batch: number
  pos: number
  /** `batch/pos` */
  label: string
  activation: number
  token_id: number
}

export interface Histogram {
  scale: 'linear' | 'log'
  /** Bin edges, length counts.length + 1, over non-zero activations. */
  edges: number[]
  counts: number[]
}

export interface IntervalBin {
  /** Activation range [lo, hi) (the last bin includes hi). */
  lo: number
  hi: number
  /** Firings in this range. */
  count: number
  examples: ActivationRow[]
}

export interface LogitEffect {
  tokenId: number
  token: string
  /** (W_dec[f] · W_out · W_U)[token] for the hook layer's MLP. */
  effect: number
}

export interface FeatureDetail {
  stats: FeatureSummary
  histogram: Histogram
  top: ActivationRow[]
  intervals: IntervalBin[]
  logits: { top: LogitEffect[]; bottom: LogitEffect[] }
}

export interface TokenMatch {
  id: number
  /** Display text (visible whitespace). */
  token: string
  /** Occurrences of this token id in the corpus. */
  occurrences: number
}

export interface TokenFeature {
  id: number
  /** Firings of the feature on occurrences of the queried token(s). */
  count: number
  /** count / occurrences of the queried token(s). */
  fraction: number
  max: number
  mean: number
  label: string
}

// Sessions: main owns the file format (versioning, atomic writes); the UI state inside is opaque to it.
export const sessionTab = z.looseObject({ id: z.string(), kind: z.string() })
export const sessionState = z.object({
  tabs: z.array(sessionTab).default([]),
  activeTab: z.string().nullable().default(null),
  /** Grid sort/filter/column state, keyed by grid id (ag-grid's getState()). */
  grids: z.record(z.string(), z.unknown()).default({}),
  /** Anything else the UI wants back. */
  ui: z.record(z.string(), z.unknown()).default({}),
})
export type SessionState = z.infer<typeof sessionState>

export interface SessionFile {
  format: 'feature-tracer-session'
  version: number
  savedAt: string
  bundle: { path: string; hash: string }
  state: SessionState
  labels: Record<string, { label: string; notes: string }>
}

export interface SessionLoaded {
  path: string
  session: SessionFile
  /**
   * Labels/notes from the file that were copied into the per-bundle store (those the store lacked); 0 when
   * the session belongs to another bundle than the open one (they are imported once that bundle is open).
   */
  labelsImported: number
  /** Entries skipped because their feature id does not exist in the SAE. */
  labelsSkipped: number
}

// Traces (issue 5): the JSON form of main/trace's Trace (main/trace/serialize.ts builds it), so the page,
// the HTTP bridge and the CLI all receive the same plain shape; typed arrays arrive as number arrays.

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

// ---------------------------------------------------------------------------------------------------
// Channels

/** A path the user typed or picked: absolute (checked by the handler), at most PATH_MAX long. */
const userPath = z.string().min(1).max(4096)

const appChannels = {
  /** What the researcher must be told since the app started (files moved aside, …); also pushed as 'workbench.notice'. */
  'workbench.notices': channel<{ notices: Notice[] }>()(empty),
}

const bundleChannels = {
  'bundle.info': channel<BundleInfo>()(empty),
  /** Open another bundle folder; it becomes the one every other channel talks about. */
  'bundle.open': channel<BundleInfo>()(z.strictObject({ path: userPath })),
}

const cacheChannels = {
  'cache.status': channel<CacheState>()(empty),
  /** Starts (or resumes) a build; `rebuild` discards an existing or stale cache first. */
  'cache.build': channel<{ jobId: string; movedAside?: MovedAside }>()(z.strictObject({ rebuild: z.boolean().default(false) })),
  'cache.cancel': channel<{ cancelled: boolean }>()(z.strictObject({ jobId: z.string().min(1) })),
}

const limit = z.number().int().min(1).max(10_000).default(100)

const featureChannels = {
  'features.list': channel<{ features: FeatureSummary[] }>()(empty),
  'feature.get': channel<FeatureDetail>()(
    z.strictObject({
      id: featureId,
      /** Top activation rows to return (the cache stores 100). */
      topK: z.number().int().min(1).max(100).default(100),
    }),
  ),
  /** The histogram of all of a feature's non-zero activations with other binning. */
  'feature.histogram': channel<Histogram>()(
    z.strictObject({
      id: featureId,
      bins: z.number().int().min(1).max(1000).default(40),
      scale: z.enum(['linear', 'log']).default('linear'),
    }),
  ),
  /** Which features fire on a token: by id, or by text (tokenized; every resulting id is searched). */
  'features.byToken': channel<{ tokens: TokenMatch[]; features: TokenFeature[] }>()(
    z.union([
      z.strictObject({ tokenId: z.number().int().nonnegative(), limit }),
      z.strictObject({ text: z.string().min(1), limit }),
    ]),
  ),
}

const labelChannels = {
  'labels.set': channel<{ id: number; label: string }>()(z.strictObject({ id: featureId, label: z.string().max(1000) })),
  'notes.set': channel<{ id: number; notes: string }>()(z.strictObject({ id: featureId, notes: z.string().max(100_000) })),
}

const sessionChannels = {
  /**
   * Write a .ftsession file (atomically); labels and notes of the open bundle go in with the UI state. The
   * path is absolute and ends in .ftsession; an existing file is replaced only if it is a session.
   */
  'session.save': channel<{ path: string; savedAt: string }>()(z.strictObject({ path: userPath, state: sessionState })),
  /** Read a .ftsession file; labels are imported when it belongs to the open bundle. */
  'session.load': channel<SessionLoaded>()(z.strictObject({ path: userPath })),
  /**
   * The open bundle's autosave slot: its session (null when there is none), or, when the file there cannot
   * be read, where it was moved; and the folder a new session file is suggested in.
   */
  'session.autosaved': channel<{ loaded: SessionLoaded | null; movedAside: MovedAside | null; defaultDir: string }>()(empty),
  /** Save to the open bundle's autosave slot in the user-data folder. */
  'session.autosave': channel<{ path: string; savedAt: string; movedAside: MovedAside | null }>()(z.strictObject({ state: sessionState })),
}

const nonNegInt = z.number().int().nonnegative()
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

const traceChannels = {
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

const corpusScoreChannels = {
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

/** What a native file dialog picks: a bundle folder, a session file, or a CSV file. */
export const dialogTarget = z.enum(['bundle', 'session', 'csv'])
export type DialogTarget = z.infer<typeof dialogTarget>

const dialogChannels = {
  /**
   * A native dialog (Electron) that picks an existing bundle folder or file; `path` is null when the user
   * cancelled. Hosts without one (serve mode, the CLI) answer `unsupported`: the page asks for a typed path.
   */
  'dialog.open': channel<{ path: string | null }>()(
    z.strictObject({ target: dialogTarget, title: z.string().max(200).optional(), defaultPath: z.string().max(4096).optional() }),
  ),
  /** A native save dialog for a session or CSV file; as 'dialog.open'. */
  'dialog.save': channel<{ path: string | null }>()(
    z.strictObject({ target: dialogTarget.exclude(['bundle']), title: z.string().max(200).optional(), defaultPath: z.string().max(4096).optional() }),
  ),
}

export const contract = {
  ...appChannels,
  ...bundleChannels,
  ...cacheChannels,
  ...featureChannels,
  ...labelChannels,
  ...sessionChannels,
  ...traceChannels,
  ...corpusScoreChannels,
  ...dialogChannels,
}

export type Contract = typeof contract
export type Channel = keyof Contract
export const channels = Object.keys(contract) as Channel[]

/** What a caller sends (defaults may be omitted). */
export type RequestIn<C extends Channel> = z.input<Contract[C]['request']>
/** What a handler receives, after validation and defaults. */
export type RequestOf<C extends Channel> = z.output<Contract[C]['request']>
export type ResponseOf<C extends Channel> = NonNullable<Contract[C]['__response']>[0]

/** The transport-agnostic call a preload or an HTTP client implements. */
export type Invoke = <C extends Channel>(channel: C, payload: RequestIn<C>) => Promise<Result<ResponseOf<C>>>

// ---------------------------------------------------------------------------------------------------
// Events main pushes to every window/client

export interface Events {
  'cache.progress': CacheProgress
  /** A job ended: finished, cancelled, or failed (with the error). */
  'cache.done': { jobId: string; outcome: 'done' | 'cancelled' | 'failed'; error?: IpcError; cache: CacheState }
  'trace.corpusScores.progress': CorpusScoresProgress
  /** A corpus-scores job ended; `result` when it finished. */
  'trace.corpusScores.done': { jobId: string; outcome: 'done' | 'cancelled' | 'failed'; error?: IpcError; result?: CorpusScoresJson }
  'workbench.notice': Notice
}
export type EventName = keyof Events
/** Every event name at runtime (a type test checks it lists exactly the keys of Events). */
export const eventNames = ['cache.progress', 'cache.done', 'trace.corpusScores.progress', 'trace.corpusScores.done', 'workbench.notice'] as const satisfies readonly EventName[]
