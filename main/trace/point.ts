// The point part of a trace: the point's own sequence through the model (hook values for the linearization
// and the decomposition), then v and u, their decompositions, the circuit tables and every vocabulary
// product (one batched engine call, laid out by PointRows). It never runs the scope's batch forward pass,
// so a click shows v's tables at once.
import type { Bundle } from '../bundle'
import type { HookName } from '../compute/api'
import { tokenText } from '../../common/text'
import { headVectors, qkGrid, qkKeyVectors, qkPair, queries } from './circuits'
import { decomposeAt, strongestSourceAndHead } from './decompose'
import type { Linearization } from './linearize'
import { logitEffectDirection } from './logit-effect'
import { bundleViews, forwardAt, residMidHook, type Hooks, type PointSequence } from './locate'
import { cosine, row, topIndices } from './math'
import { PointRows } from './point-rows'
import { scopeOf } from './scope'
import { TraceInputError, type Convention, type ConventionPoint, type PointTrace, type TokenScore, type TraceEngine, type TraceOptions, type TracePoint, type TraceScope, type VocabScores } from './types'

/** The hooks of layer L (and the layers before it) the point part reads at the point. */
function pointHooks(L: number) {
  const names = {
    residPre: `blocks.${L}.hook_resid_pre` as HookName,
    residMid: residMidHook(L),
    pattern: `blocks.${L}.attn.hook_pattern` as HookName,
    hookV: `blocks.${L}.attn.hook_v` as HookName,
    attnOut: (l: number) => `blocks.${l}.hook_attn_out` as HookName,
    mlpOut: (l: number) => `blocks.${l}.hook_mlp_out` as HookName,
  }
  const earlier = Array.from({ length: L }, (_, l) => [names.attnOut(l), names.mlpOut(l)]).flat()
  return { ...names, all: [names.residPre, names.residMid, names.pattern, names.hookV, ...earlier] }
}

/** The point's own forward pass, and v and u there. */
export interface PointForward extends PointSequence {
  feature: number
  tokenId: number
  lin: Linearization
  fwd: Hooks
  hooks: ReturnType<typeof pointHooks>
  timingsMs: Record<string, number>
}

function lapper(timingsMs: Record<string, number>): (name: string, since: number) => number {
  return (name, since) => {
    const now = performance.now()
    timingsMs[name] = now - since
    return now
  }
}

export async function pointForward(bundle: Bundle, engine: TraceEngine, point: TracePoint): Promise<PointForward> {
  const t0 = performance.now()
  const timingsMs: Record<string, number> = {}
  const hooks = pointHooks(bundle.hookPoint.layer)
  const at = await forwardAt(bundle, engine, point, hooks.all)
  lapper(timingsMs)('forwardPoint', t0)
  return { ...at, feature: point.feature, tokenId: at.sequence[at.pos], hooks, timingsMs }
}

const LABELS: Record<Convention, string> = {
  v: 'v: full gradient (the seed’s tangent plane); v·resid_mid ≈ 0 at the point because LayerNorm is scale-invariant',
  u: 'u: gradient with LN2’s scale frozen at the point; u·resid_mid is a first-order value its terms add up to',
}

/** The point part from the point's forward pass; `scope` names the scope its scope part covers. */
export async function pointPart(bundle: Bundle, engine: TraceEngine, at: PointForward, scope: TraceScope, opts: TraceOptions): Promise<PointTrace> {
  const t0 = performance.now()
  const timingsMs: Record<string, number> = {}
  const lap = lapper(timingsMs)
  const { model, sae, display } = bundleViews(bundle)
  const { n_heads: H, d_vocab: vocab, d_model: d } = bundle.config.model
  const L = bundle.hookPoint.layer
  const { feature, sequence, ref, pos, tokenId, fwd, hooks, lin } = at
  const topK = opts.topK ?? 20
  const atPos = (name: string): Float32Array => row(fwd[name].data, pos, d)
  const x0 = atPos(hooks.residMid)

  // Decompositions, head vectors and the vocabulary products (all vectors in one run).
  const decInput = {
    model,
    layer: L,
    token: tokenId,
    pos,
    hookV: fwd[hooks.hookV].data,
    pattern: fwd[hooks.pattern].data,
    seqLen: sequence.length,
    residMid: x0,
    earlierAttnOut: Array.from({ length: L }, (_, l) => atPos(hooks.attnOut(l))),
    earlierMlpOut: Array.from({ length: L }, (_, l) => atPos(hooks.mlpOut(l))),
  }
  const dec = { v: decomposeAt({ ...decInput, vec: lin.v }), u: decomposeAt({ ...decInput, vec: lin.u }) }
  const strongest = strongestSourceAndHead(dec.v)
  const sourcePos = opts.sourcePos ?? strongest.sourcePos
  if (!Number.isInteger(sourcePos) || sourcePos < 0 || sourcePos > pos) throw new TraceInputError(`source position ${sourcePos} outside [0, ${pos}]`)
  const head = opts.head ?? strongest.head
  if (!Number.isInteger(head) || head < 0 || head >= H) throw new TraceInputError(`head ${head} outside [0, ${H})`)
  const badToken = opts.gridTokens?.find((t) => !Number.isInteger(t) || t < 0 || t >= vocab)
  if (badToken !== undefined) throw new TraceInputError(`grid token id ${badToken} lies outside the vocabulary [0, ${vocab})`)
  const vectors = {
    v: { vector: lin.v, heads: headVectors(model, L, lin.v), dotResidMid: lin.vDotResidMid },
    u: { vector: lin.u, heads: headVectors(model, L, lin.u), dotResidMid: lin.uDotResidMid },
  }
  const keyVecs = qkKeyVectors(model, L, queries(model, L, atPos(hooks.residPre)))
  const logitDirection = logitEffectDirection(model, sae, L, bundle.hookPoint.hook, feature)
  const rows = new PointRows(H)
  let t = lap('pointMath', t0)
  const products = await engine.vocabProducts({
    layer: L,
    ...rows.stack(d, vectors, keyVecs),
    keyPos: sourcePos,
    unembed: logitDirection ?? new Float32Array(0),
  })
  t = lap('vocabProducts', t)

  /** Row i of a [rows, d_vocab] product as a vocabulary table (copied, so the product can be freed), plus `add`. */
  const vs = (m: Float32Array, i: number, add = 0): VocabScores => {
    const scores = row(m, i, vocab).slice()
    if (add !== 0) for (let j = 0; j < vocab; j++) scores[j] += add
    const entry = (id: number): TokenScore => ({ tokenId: id, str_tokens: tokenText(display, id), score: scores[id] })
    return { scores, top: topIndices(scores, topK).map(entry), bottom: topIndices(scores, topK, false).map(entry) }
  }
  const convention = (c: Convention): ConventionPoint => ({
    convention: c,
    label: LABELS[c],
    vector: vectors[c].vector,
    dotResidMid: vectors[c].dotResidMid,
    tokenScores: vs(products.embed, rows.tokenScores(c)),
    decomposition: dec[c],
    heads: vectors[c].heads.map((x, h) => ({
      head: h,
      ovTokens: vs(products.embed, rows.ovTokens(c, h)),
      lnOv: vs(products.keys, rows.lnOv(c, h), x.ovBias),
      qkSeed: vs(products.embed, rows.qkSeed(c, h)),
    })),
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
    v: convention('v'),
    u: convention('u'),
    sourcePos,
    head,
    qk: keyVecs.map((k, h) => ({ head: h, ...vs(products.keys, rows.qk(h), k.bias) })),
    qkGrid: qkGrid(model, L, head, tokenId, pos, gridTokens),
    qkPairs: pairPositions.map((s) => ({ head, queryToken: tokenId, queryPos: pos, keyToken: sequence[s], keyPos: s, score: qkPair(model, L, head, tokenId, pos, sequence[s], s) })),
    logitEffect: logitDirection ? vs(products.unembed, 0) : null,
    scope,
    timingsMs,
  }
  lap('assemble', t)
  return trace
}

/** The point part of a trace: it never runs the scope's batch forward pass. */
export async function tracePoint(bundle: Bundle, engine: TraceEngine, point: TracePoint, opts: TraceOptions = {}): Promise<PointTrace> {
  const t0 = performance.now()
  const at = await pointForward(bundle, engine, point)
  const part = await pointPart(bundle, engine, at, scopeOf(bundle, point, at.sequence).scope, opts)
  part.timingsMs = { ...at.timingsMs, ...part.timingsMs, total: performance.now() - t0 }
  return part
}
