// One trace (issue 5), assembled from the pure functions of this folder, in two parts:
// - the point (tracePoint): the point's own sequence through the model (hook values for the linearization
//   and the decomposition), then v and u, decompositions, circuit tables and every vocabulary product;
// - the scope (traceScope): resid_mid·[v, u] and the feature's pre-activation for every token of the
//   128-sequence batch, which needs that batch's forward pass (16,384 tokens: most of a cold trace's time;
//   the engine keeps recent blocks, so more traces in the same batch skip it).
// traceAt runs both, overlapping them. The app asks for the point first and the scope after, so a click
// shows v's tables at once and the batch grids fill in when their forward pass is done.
import type { Bundle } from '../bundle'
import type { ComputeEngine, HookName, TraceCompute } from '../compute/api'
import { displayStrings } from '../bundle/corpus'
import { tokenText } from '../../common/text'
import { headVectors, qkGrid, qkKeyVectors, qkPair, queries, type QkGrid } from './circuits'
import { decomposeAt, strongestSourceAndHead, type Decomposition } from './decompose'
import { linearizeFeature, type Linearization } from './linearize'
import { cosine, dot, row, topIndices } from './math'
import { fidelity, scoreRows, type Fidelity, type ScopeView, type ScoreRow } from './scores'
import { encoderColumn, modelWeights, saeView, type ModelWeights, type SaeView } from './weights'

/** The seed's BATCH_SIZE: activation scores cover the 128-sequence batch holding the point. */
export const SCORE_BATCH = 128

export type TraceEngine = Pick<ComputeEngine, 'forward'> & TraceCompute

export type TracePoint = { feature: number; sample: number; pos: number } | { feature: number; prompt: string; token: number }

export interface TraceOptions {
  /** Source position of the LN+OV and QK tables; default: the largest |term| of the v decomposition. */
  sourcePos?: number
  /** Head of the QK grid and pairs; default: the head with the largest Σ|term| of the v decomposition. */
  head?: number
  /** Tokens of the QK grid; default: the five tokens before the point. */
  gridTokens?: number[]
  /** Rows per top/bottom vocabulary list (20). */
  topK?: number
  /** Rows of the activation-score and disagreement grids (100). */
  rowLimit?: number
}

export class TraceInputError extends Error {
  override readonly name = 'TraceInputError'
}

/** Whether an error is bad input the trace code detected (its own checks, or a range the engine refused). */
export function isTraceInputError(error: unknown): error is Error {
  return error instanceof TraceInputError || error instanceof RangeError
}

export interface TokenScore {
  tokenId: number
  /** The token's text with whitespace made visible (· ↩ →). */
  str_tokens: string
  score: number
}

export interface VocabScores {
  /** One score per vocabulary id. */
  scores: Float32Array
  top: TokenScore[]
  bottom: TokenScore[]
}

export interface HeadTables {
  head: number
  /** W_E · W_V[h] W_O[h] vec (raw, as the seed's OV table). */
  ovTokens: VocabScores
  /** LN1(W_E[x] + W_pos[sourcePos]) · W_V[h] W_O[h] vec + b_V[h] W_O[h] vec: exact. */
  lnOv: VocabScores
  /** W_E · W_Q[h] W_K[h]ᵀ vec: the seed's QK definition, for comparison only. */
  qkSeed: VocabScores
}

export type Convention = 'v' | 'u'

/** What a convention gives at the point. */
export interface ConventionPoint {
  convention: Convention
  /** What the UI should say about this convention. */
  label: string
  vector: Float32Array
  /** vector · resid_mid at the point (≈ 0 for v, by LayerNorm's scale invariance). */
  dotResidMid: number
  /** W_E · vector. */
  tokenScores: VocabScores
  decomposition: Decomposition
  heads: HeadTables[]
}

/** What a convention gives over the scope. */
export interface ConventionScope {
  /** vector · resid_mid for every token of the scope, and the highest-scoring rows. */
  activationScores: Float32Array
  topRows: ScoreRow[]
  fidelity: Fidelity
}

export type ConventionTrace = ConventionPoint & ConventionScope

export type TraceScope = { kind: 'batch'; start: number; count: number; seqLen: number } | { kind: 'prompt'; seqLen: number }

/** The scope part of a trace: activation scores and fidelity over the batch (or the prompt). */
export interface ScopeTrace {
  scope: TraceScope
  v: ConventionScope
  u: ConventionScope
  /** The feature's true pre-activation and activation over the scope. */
  scopePreActivations: Float32Array
  scopeActivations: Float32Array
  timingsMs: Record<string, number>
}

/** The point part of a trace: everything but the scope's arrays. */
export interface PointTrace {
  feature: number
  hookPoint: string
  layer: number
  /** Where the trace sits: a corpus token, or a token of a typed prompt. */
  point: { kind: 'corpus'; sample: number; pos: number } | { kind: 'prompt'; prompt: string; pos: number }
  tokenId: number
  /** The point's sequence (the prompt's token ids for a prompt), and each token's visible text. */
  sequence: Int32Array
  sequenceStrTokens: string[]
  activation: number
  preActivation: number
  ln2Scale: number
  /** cosine(v, u) at this point. */
  cosineVU: number
  v: ConventionPoint
  u: ConventionPoint
  /** Source position of LN+OV and QK tables. */
  sourcePos: number
  /** Head of the QK grid and pairs. */
  head: number
  /** The exact QK table per head: the point's query against every token x at sourcePos. */
  qk: VocabScores[]
  qkGrid: QkGrid
  qkPairs: { head: number; queryToken: number; queryPos: number; keyToken: number; keyPos: number; score: number }[]
  /** W_dec[f] · W_out · W_U (null for an SAE on mlp.hook_pre, where it has no meaning). */
  logitEffect: VocabScores | null
  /** The scope of activation scores and fidelity: global sequences [start, start + count), or the prompt. */
  scope: TraceScope
  timingsMs: Record<string, number>
}

/** A whole trace: the point and the scope. */
export interface Trace extends Omit<PointTrace, 'v' | 'u'> {
  v: ConventionTrace
  u: ConventionTrace
  scopePreActivations: Float32Array
  scopeActivations: Float32Array
}

export interface BundleViews {
  model: ModelWeights
  sae: SaeView
  display: string[]
}

const views = new WeakMap<object, BundleViews>()

/** The bundle's weights and token texts as the trace functions take them, made once per bundle. */
export function bundleViews(bundle: Bundle): BundleViews {
  let v = views.get(bundle)
  if (!v) {
    v = { model: modelWeights(bundle), sae: saeView(bundle), display: displayStrings(bundle.tokenizer.tokenStrings()) }
    views.set(bundle, v)
  }
  return v
}

/** The token ids of a typed prompt, tokenized as the corpus was (BOS per bundle.json). */
export function promptTokens(bundle: Bundle, prompt: string): Int32Array {
  if (prompt.length === 0) throw new TraceInputError('the prompt is empty: type some text to trace')
  const ids = bundle.tokenizer.encode(prompt)
  const nCtx = bundle.config.model.n_ctx
  if (ids.length > nCtx) throw new TraceInputError(`the prompt is ${ids.length} tokens long but the model reads at most ${nCtx} (n_ctx); shorten it`)
  if (ids.length === 0) throw new TraceInputError('the prompt tokenizes to no tokens')
  return Int32Array.from(ids)
}

/**
 * A point checked against the bundle (feature, sample, position or prompt token): the sequence it lies in
 * (the corpus sequence, or the typed prompt's tokens), its position there, and how results name it.
 */
export function pointSequence(bundle: Bundle, point: TracePoint): { sequence: Int32Array; pos: number; ref: PointTrace['point'] } {
  const { feature } = point
  const dSae = bundle.config.sae.d_sae
  if (!Number.isInteger(feature) || feature < 0 || feature >= dSae) throw new TraceInputError(`feature ${feature} outside [0, ${dSae})`)
  if ('sample' in point) {
    const corpus = bundle.tokens
    const { sample, pos } = point
    if (!Number.isInteger(sample) || sample < 0 || sample >= corpus.nSeq) throw new TraceInputError(`sample ${sample} outside [0, ${corpus.nSeq})`)
    if (!Number.isInteger(pos) || pos < 0 || pos >= corpus.seqLen) throw new TraceInputError(`position ${pos} outside [0, ${corpus.seqLen})`)
    return { sequence: corpus.data.subarray(sample * corpus.seqLen, (sample + 1) * corpus.seqLen), pos, ref: { kind: 'corpus', sample, pos } }
  }
  const sequence = promptTokens(bundle, point.prompt)
  const pos = point.token
  if (!Number.isInteger(pos) || pos < 0 || pos >= sequence.length) throw new TraceInputError(`token ${pos} outside the prompt's ${sequence.length} tokens`)
  return { sequence, pos, ref: { kind: 'prompt', prompt: point.prompt, pos } }
}

/**
 * v and u at a point from the point's own sequence, run for resid_mid and the SAE's hook only: the same
 * output set as the scope's block requests, so the engine serves both with one forward session.
 */
export async function pointDirection(bundle: Bundle, engine: Pick<ComputeEngine, 'forward'>, point: TracePoint): Promise<{ sequence: Int32Array; pos: number; ref: PointTrace['point']; lin: Linearization }> {
  const { model, sae } = bundleViews(bundle)
  const L = bundle.hookPoint.layer
  const at = pointSequence(bundle, point)
  const residMid = residMidHook(L)
  const fwd = await engine.forward(at.sequence, 1, at.sequence.length, [residMid, bundle.config.sae.hook_point as HookName])
  const lin = linearizeFeature(model, sae, L, bundle.hookPoint.hook, point.feature, row(fwd[residMid].data, at.pos, bundle.config.model.d_model))
  return { ...at, lin }
}

export const residMidHook = (layer: number): HookName => `blocks.${layer}.hook_resid_mid`

function vocabScores(scores: Float32Array, display: string[], k: number): VocabScores {
  const entry = (i: number): TokenScore => ({ tokenId: i, str_tokens: tokenText(display, i), score: scores[i] })
  return { scores, top: topIndices(scores, k).map(entry), bottom: topIndices(scores, k, false).map(entry) }
}

/** Stacks vectors into one row-major [k, d] matrix. */
function stack(vectors: ArrayLike<number>[], d: number): Float32Array {
  const out = new Float32Array(vectors.length * d)
  vectors.forEach((x, i) => out.set(x, i * d))
  return out
}

/** Row i of a row-major [k, n] result, copied (so the result's other rows can be freed). */
const rowCopy = (m: Float32Array, i: number, n: number): Float32Array => row(m, i, n).slice()

/** The scope of a point's activation scores: its 128-sequence batch of the corpus, or its prompt. */
function scopeOf(bundle: Bundle, point: TracePoint, sequence: Int32Array): Pick<PointContext, 'scope' | 'scopeTokens' | 'scopeView' | 'blockKey'> {
  const corpus = bundle.tokens
  const { display } = bundleViews(bundle)
  if ('sample' in point) {
    const start = Math.floor(point.sample / SCORE_BATCH) * SCORE_BATCH
    const count = Math.min(SCORE_BATCH, corpus.nSeq - start)
    return {
      scopeTokens: corpus.data.subarray(start * corpus.seqLen, (start + count) * corpus.seqLen),
      scope: { kind: 'batch', start, count, seqLen: corpus.seqLen },
      scopeView: { corpus: corpus.data, seqLen: corpus.seqLen, display, firstToken: start * corpus.seqLen },
      blockKey: `batch:${start}:${count}`,
    }
  }
  return {
    scopeTokens: sequence,
    scope: { kind: 'prompt', seqLen: sequence.length },
    scopeView: { corpus: sequence, seqLen: sequence.length, display, firstToken: 0 },
    blockKey: `prompt:${sequence.join(',')}`,
  }
}

/**
 * Runs the forward pass of the batch holding corpus sequence `sample`, so the engine keeps it and a later
 * trace there gets its scope without one (the app asks for this when a feature's top activations show).
 */
export async function prefetchScope(bundle: Bundle, engine: TraceEngine, sample: number): Promise<void> {
  const point = { feature: 0, sample, pos: 0 }
  const { sequence } = pointSequence(bundle, point)
  const { scope, scopeTokens, blockKey } = scopeOf(bundle, point, sequence)
  if (scope.kind !== 'batch') return
  const empty = new Float32Array(0)
  await engine.projectBlock({
    key: blockKey,
    tokens: scopeTokens,
    nSeq: scope.count,
    seqLen: scope.seqLen,
    projections: [
      { hook: residMidHook(bundle.hookPoint.layer), vectors: empty },
      { hook: bundle.config.sae.hook_point as HookName, vectors: empty },
    ],
  })
}

/** What the scope part of a trace needs: v and u at the point, and the point's scope. */
interface ScopeContext {
  feature: number
  sequence: Int32Array
  lin: Linearization
  scope: TraceScope
  scopeTokens: Int32Array
  scopeView: ScopeView
  blockKey: string
}

/** What the point part needs besides: the point's hook values for the decomposition and the circuits. */
interface PointContext extends ScopeContext {
  ref: PointTrace['point']
  pos: number
  tokenId: number
  fwd: Record<string, { data: Float32Array }>
  names: { residPre: HookName; residMid: HookName; pattern: HookName; hookV: HookName }
  timingsMs: Record<string, number>
}

function lapper(timingsMs: Record<string, number>): (name: string, since: number) => number {
  return (name, since) => {
    const now = performance.now()
    timingsMs[name] = now - since
    return now
  }
}

async function pointContext(bundle: Bundle, engine: TraceEngine, point: TracePoint): Promise<PointContext> {
  const t0 = performance.now()
  const timingsMs: Record<string, number> = {}
  const { model, sae } = bundleViews(bundle)
  const d = bundle.config.model.d_model
  const L = bundle.hookPoint.layer
  const feature = point.feature
  const { sequence, pos, ref } = pointSequence(bundle, point)
  const { scope, scopeTokens, scopeView, blockKey } = scopeOf(bundle, point, sequence)

  // The point's sequence: hook values for the linearization and the decomposition.
  const earlier = Array.from({ length: L }, (_, l) => [`blocks.${l}.hook_attn_out`, `blocks.${l}.hook_mlp_out`] as HookName[]).flat()
  const names = {
    residPre: `blocks.${L}.hook_resid_pre` as HookName,
    residMid: residMidHook(L),
    pattern: `blocks.${L}.attn.hook_pattern` as HookName,
    hookV: `blocks.${L}.attn.hook_v` as HookName,
  }
  const fwd = await engine.forward(sequence, 1, sequence.length, [...Object.values(names), ...earlier])
  const x0 = row(fwd[names.residMid].data, pos, d)
  const lin = linearizeFeature(model, sae, L, bundle.hookPoint.hook, feature, x0)
  lapper(timingsMs)('forwardPoint', t0)
  return { feature, sequence, ref, pos, tokenId: sequence[pos], scope, scopeTokens, scopeView, blockKey, fwd, names, lin, timingsMs }
}

/** The scope's engine request: resid_mid · [v, u] and the feature's pre-activation (before b_enc) per token. */
function scopeProjections(bundle: Bundle, engine: TraceEngine, ctx: ScopeContext): Promise<Float32Array[]> {
  const { sae } = bundleViews(bundle)
  const { scope, scopeTokens, lin } = ctx
  return engine.projectBlock({
    key: ctx.blockKey,
    tokens: scopeTokens,
    nSeq: scope.kind === 'batch' ? scope.count : 1,
    seqLen: scope.kind === 'batch' ? scope.seqLen : ctx.sequence.length,
    projections: [
      { hook: residMidHook(bundle.hookPoint.layer), vectors: stack([lin.v, lin.u], bundle.config.model.d_model) },
      { hook: bundle.config.sae.hook_point as HookName, vectors: encoderColumn(sae, ctx.feature) },
    ],
  })
}

function scopePart(bundle: Bundle, ctx: ScopeContext, [scoresVU, hookProj]: Float32Array[], rowLimit: number): Omit<ScopeTrace, 'timingsMs'> {
  const { sae } = bundleViews(bundle)
  const { lin, scopeView } = ctx
  const nScope = ctx.scopeTokens.length
  const sV = new Float32Array(nScope)
  const sU = new Float32Array(nScope)
  for (let i = 0; i < nScope; i++) {
    sV[i] = scoresVU[2 * i]
    sU[i] = scoresVU[2 * i + 1]
  }
  const bias = sae.b_enc[ctx.feature] - dot(sae.b_dec, encoderColumn(sae, ctx.feature))
  const scopePre = new Float32Array(nScope)
  const scopeAct = new Float32Array(nScope)
  for (let i = 0; i < nScope; i++) {
    scopePre[i] = hookProj[i] + bias
    scopeAct[i] = Math.max(0, scopePre[i])
  }
  const convention = (scores: Float32Array, dotX0: number): ConventionScope => ({
    activationScores: scores,
    topRows: scoreRows(scopeView, scores, rowLimit),
    fidelity: fidelity(scopeView, scores, lin.preActivation, dotX0, scopePre, rowLimit),
  })
  return { scope: ctx.scope, v: convention(sV, lin.vDotResidMid), u: convention(sU, lin.uDotResidMid), scopePreActivations: scopePre, scopeActivations: scopeAct }
}

async function pointPart(bundle: Bundle, engine: TraceEngine, point: TracePoint, ctx: PointContext, opts: TraceOptions): Promise<PointTrace> {
  const t0 = performance.now()
  const timingsMs: Record<string, number> = {}
  const lap = lapper(timingsMs)
  const { model, sae, display } = bundleViews(bundle)
  const { n_heads: H, d_vocab: vocab, d_model: d } = bundle.config.model
  const L = bundle.hookPoint.layer
  const { feature, sequence, ref, pos, tokenId, fwd, names, lin } = ctx
  const topK = opts.topK ?? 20
  const atPos = (name: string): Float32Array => row(fwd[name].data, pos, d)
  const x0 = atPos(names.residMid)

  // Decompositions, head vectors and the vocabulary products (all vectors in one run).
  const decInput = {
    model,
    layer: L,
    token: tokenId,
    pos,
    hookV: fwd[names.hookV].data,
    pattern: fwd[names.pattern].data,
    seqLen: sequence.length,
    residMid: x0,
    earlierAttnOut: Array.from({ length: L }, (_, l) => atPos(`blocks.${l}.hook_attn_out`)),
    earlierMlpOut: Array.from({ length: L }, (_, l) => atPos(`blocks.${l}.hook_mlp_out`)),
  }
  const decV = decomposeAt({ ...decInput, vec: lin.v })
  const decU = decomposeAt({ ...decInput, vec: lin.u })
  const strongest = strongestSourceAndHead(decV)
  const sourcePos = opts.sourcePos ?? strongest.sourcePos
  if (!Number.isInteger(sourcePos) || sourcePos < 0 || sourcePos > pos) throw new TraceInputError(`source position ${sourcePos} outside [0, ${pos}]`)
  const head = opts.head ?? strongest.head
  if (!Number.isInteger(head) || head < 0 || head >= H) throw new TraceInputError(`head ${head} outside [0, ${H})`)
  const dVocab = bundle.config.model.d_vocab
  const badToken = opts.gridTokens?.find((t) => !Number.isInteger(t) || t < 0 || t >= dVocab)
  if (badToken !== undefined) throw new TraceInputError(`grid token id ${badToken} lies outside the vocabulary [0, ${dVocab})`)
  const hvV = headVectors(model, L, lin.v)
  const hvU = headVectors(model, L, lin.u)
  const keyVecs = qkKeyVectors(model, L, queries(model, L, atPos(names.residPre)))
  const logitDirection = logitEffectDirection(model, sae, L, bundle.hookPoint.hook, feature)
  const embedRows = [lin.v, lin.u, ...hvV.map((x) => x.ov), ...hvU.map((x) => x.ov), ...hvV.map((x) => x.qkSeed), ...hvU.map((x) => x.qkSeed)]
  const keyRows = [...hvV.map((x) => x.ov), ...hvU.map((x) => x.ov), ...keyVecs.map((x) => x.key)]
  let t = lap('pointMath', t0)
  const products = await engine.vocabProducts({
    layer: L,
    embed: stack(embedRows, d),
    keys: stack(keyRows, d),
    keyPos: sourcePos,
    unembed: logitDirection ? logitDirection : new Float32Array(0),
  })
  t = lap('vocabProducts', t)
  const vs = (m: Float32Array, i: number, add = 0): VocabScores => {
    const r = rowCopy(m, i, vocab)
    if (add !== 0) for (let j = 0; j < vocab; j++) r[j] += add
    return vocabScores(r, display, topK)
  }
  const headTables = (c: 0 | 1, hv: typeof hvV): HeadTables[] =>
    hv.map((x, h) => ({
      head: h,
      ovTokens: vs(products.embed, 2 + c * H + h),
      lnOv: vs(products.keys, c * H + h, x.ovBias),
      qkSeed: vs(products.embed, 2 + 2 * H + c * H + h),
    }))
  const qk = keyVecs.map((k, h) => vs(products.keys, 2 * H + h, k.bias))
  const convention = (c: Convention, vec: Float32Array, dotX0: number, dec: Decomposition, hv: typeof hvV): ConventionPoint => ({
    convention: c,
    label:
      c === 'v'
        ? 'v: full gradient (the seed’s tangent plane); v·resid_mid ≈ 0 at the point because LayerNorm is scale-invariant'
        : 'u: gradient with LN2’s scale frozen at the point; u·resid_mid is a first-order value its terms add up to',
    vector: vec,
    dotResidMid: dotX0,
    tokenScores: vs(products.embed, c === 'v' ? 0 : 1),
    decomposition: dec,
    heads: headTables(c === 'v' ? 0 : 1, hv),
  })

  const gridTokens = opts.gridTokens ?? (pos > 0 ? Array.from(sequence.subarray(Math.max(0, pos - 5), pos)) : [tokenId])
  const pairPositions = [...new Set([0, Math.floor(pos / 2), pos])].sort((a, b) => a - b)
  const trace: PointTrace = {
    feature,
    hookPoint: bundle.config.sae.hook_point,
    layer: L,
    point: ref,
    tokenId,
    sequence: Int32Array.from(sequence),
    sequenceStrTokens: Array.from(sequence, (id) => tokenText(display, id)),
    activation: lin.activation,
    preActivation: lin.preActivation,
    ln2Scale: lin.ln2Scale,
    cosineVU: cosine(lin.v, lin.u),
    v: convention('v', lin.v, lin.vDotResidMid, decV, hvV),
    u: convention('u', lin.u, lin.uDotResidMid, decU, hvU),
    sourcePos,
    head,
    qk,
    qkGrid: qkGrid(model, L, head, tokenId, pos, gridTokens),
    qkPairs: pairPositions.map((s) => ({ head, queryToken: tokenId, queryPos: pos, keyToken: sequence[s], keyPos: s, score: qkPair(model, L, head, tokenId, pos, sequence[s], s) })),
    logitEffect: logitDirection ? vs(products.unembed, 0) : null,
    scope: ctx.scope,
    timingsMs,
  }
  lap('assemble', t)
  return trace
}

/** The point part of a trace: it never runs the scope's batch forward pass. */
export async function tracePoint(bundle: Bundle, engine: TraceEngine, point: TracePoint, opts: TraceOptions = {}): Promise<PointTrace> {
  const t0 = performance.now()
  const ctx = await pointContext(bundle, engine, point)
  const part = await pointPart(bundle, engine, point, ctx, opts)
  part.timingsMs = { ...ctx.timingsMs, ...part.timingsMs, total: performance.now() - t0 }
  return part
}

/** The scope part of a trace: activation scores and fidelity over the point's batch (or its prompt). */
export async function traceScope(bundle: Bundle, engine: TraceEngine, point: TracePoint, opts: Pick<TraceOptions, 'rowLimit'> = {}): Promise<ScopeTrace> {
  const t0 = performance.now()
  const { sequence, lin } = await pointDirection(bundle, engine, point)
  const ctx: ScopeContext = { feature: point.feature, sequence, lin, ...scopeOf(bundle, point, sequence) }
  const t = performance.now()
  const part = scopePart(bundle, ctx, await scopeProjections(bundle, engine, ctx), opts.rowLimit ?? 100)
  const now = performance.now()
  return { ...part, timingsMs: { forwardPoint: t - t0, scope: now - t, total: now - t0 } }
}

/** A whole trace: the point and the scope, the scope's engine request sent first so both overlap. */
export async function traceAt(bundle: Bundle, engine: TraceEngine, point: TracePoint, opts: TraceOptions = {}): Promise<Trace> {
  const t0 = performance.now()
  const ctx = await pointContext(bundle, engine, point)
  const projections = scopeProjections(bundle, engine, ctx)
  // Awaited below; until then a failure must not count as unhandled (the vocabulary products may throw first).
  projections.catch(() => undefined)
  const pt = await pointPart(bundle, engine, point, ctx, opts)
  const t = performance.now()
  const sc = scopePart(bundle, ctx, await projections, opts.rowLimit ?? 100)
  const timingsMs: Record<string, number> = { ...ctx.timingsMs, ...pt.timingsMs, scope: performance.now() - t }
  timingsMs.total = performance.now() - t0
  return { ...joinTraceParts(pt, sc), timingsMs }
}

type Parts = { v: object; u: object }

/** A point part and a scope part as one trace: each convention gets its scope fields (typed or JSON form alike). */
export function joinTraceParts<P extends Parts, S extends Parts & { scopePreActivations: unknown; scopeActivations: unknown }>(
  pt: P,
  sc: S,
): Omit<P, 'v' | 'u'> & { v: P['v'] & S['v']; u: P['u'] & S['u']; scopePreActivations: S['scopePreActivations']; scopeActivations: S['scopeActivations'] } {
  return { ...pt, v: { ...pt.v, ...sc.v }, u: { ...pt.u, ...sc.u }, scopePreActivations: sc.scopePreActivations, scopeActivations: sc.scopeActivations }
}

/** The residual-stream direction the feature's decoder writes: W_dec[f] · W_out (or W_dec[f] on mlp_out). */
export function logitEffectDirection(model: ModelWeights, sae: SaeView, layer: number, hook: string, feature: number): Float32Array | null {
  const dec = row(sae.W_dec, feature, sae.dIn)
  if (hook === 'hook_mlp_out') return dec.slice()
  if (hook !== 'mlp.hook_post') return null
  const { d_model: d } = model.cfg
  const { W_out } = model.mlp(layer)
  const out = new Float64Array(d)
  for (let j = 0; j < dec.length; j++) {
    const x = dec[j]
    for (let k = 0; k < d; k++) out[k] += x * W_out[j * d + k]
  }
  return Float32Array.from(out)
}
