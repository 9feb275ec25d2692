// The point part of a trace: the point's own sequence through the model (hook values for the linearization
// and the decomposition), then v and u, their decompositions, the circuit tables and every vocabulary
// product (one batched engine call, laid out by PointRows). It never runs the scope's batch forward pass,
// so a click shows v's tables at once.
import type { Bundle } from '../bundle'
import type { HookName } from '../compute/api'
import { tokenText } from '../../common/text'
import { headVectors, qkGrid, qkKeyVector, qkPair, queries } from './circuits'
import { decomposeAt, decomposeAttentionHook, strongestSourceAndHead, type AttentionLayerValues, type Decomposition } from './decompose'
import { attentionReadDirections } from './linearize'
import { logitEffectDirection } from './logit-effect'
import { bundleViews, forwardAt, type PointHooks, type PointSequence } from './locate'
import { cosine, row, topIndices } from './math'
import { encoderColumn } from './weights'
import { hookVHook, linearizationHooks, mlpOutHook, patternHook, residPreHook, tracePlan, type TracePlan } from './plan'
import { PointRows } from './point-rows'
import { scopeOf } from './scope'
import { TraceInputError, type Convention, type ConventionPoint, type PointTrace, type TokenScore, type TraceEngine, type TraceOptions, type TracePoint, type TraceScope, type VocabScores } from './types'

/** The hooks the point part reads in the point's sequence: the linearization's, each decomposed layer's, LN1's input of the circuit layer. */
function pointHooks(plan: TracePlan): HookName[] {
  const hooks = new Set<HookName>(linearizationHooks(plan))
  for (const l of plan.attnLayers) hooks.add(patternHook(l)).add(hookVHook(l))
  for (const l of plan.mlpLayers) hooks.add(mlpOutHook(l))
  if (plan.circuitLayer !== null) hooks.add(residPreHook(plan.circuitLayer))
  return [...hooks]
}

/** The point's own forward pass, and v and u there. */
export interface PointForward extends PointSequence, PointHooks {
  feature: number
  tokenId: number
  plan: TracePlan
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
  const plan = tracePlan(bundle)
  if (plan.circuitLayer === null) {
    const what = plan.hook === 'hook_resid_pre' ? 'is the embeddings' : "reads the embeddings only (a parallel block's MLP reads resid_pre)"
    throw new TraceInputError(`${bundle.config.sae.hook_point} ${what}: no layer comes before it, so there is nothing to trace; its feature views show what it reads`)
  }
  const at = await forwardAt(bundle, engine, point, pointHooks(plan))
  lapper(timingsMs)('forwardPoint', t0)
  return { ...at, feature: point.feature, tokenId: at.sequence[at.pos], plan, timingsMs }
}

function labels(plan: TracePlan, frozen: 'ln1' | 'ln2' | undefined): Record<Convention, string> {
  const r = plan.resid.replace(/^blocks\.\d+\.hook_/, '')
  if (!frozen) {
    const exact = `the SAE reads the residual stream itself, so its pre-activation is linear in ${r}: the trace is exact`
    return { v: `v: W_enc[:,f], the gradient at ${r}; ${exact}`, u: `u = v: no LayerNorm on the path; ${exact}` }
  }
  const LN = frozen.toUpperCase()
  return {
    v: `v: full gradient at ${r} (the seed’s tangent plane); v·${r} ≈ 0 at the point because ${LN} is scale-invariant`,
    u: `u: gradient at ${r} with ${LN}’s scale frozen at the point; u·${r} is a first-order value its terms add up to`,
  }
}

/** The point part from the point's forward pass; `scope` names the scope its scope part covers. */
export async function pointPart(bundle: Bundle, engine: TraceEngine, at: PointForward, scope: TraceScope, opts: TraceOptions): Promise<PointTrace> {
  const t0 = performance.now()
  const timingsMs: Record<string, number> = {}
  const lap = lapper(timingsMs)
  const { model, sae, display } = bundleViews(bundle)
  const { n_heads: H, d_vocab: vocab, d_model: d } = bundle.config.model
  const { feature, sequence, ref, pos, tokenId, fwd, fwdLen: seqLen, plan, lin } = at
  const L = plan.circuitLayer!
  const topK = opts.topK ?? 20
  const atPos = (name: string): Float32Array => row(fwd[name].data, pos, d)

  // Decompositions, head vectors and the vocabulary products (all vectors in one run).
  const attnValues = (l: number): AttentionLayerValues => ({ layer: l, hookV: fwd[hookVHook(l)].data, pattern: fwd[patternHook(l)].data })
  const e = encoderColumn(sae, feature)
  // An attention hook's feature reads each head's z along its read direction, the same for v and u.
  const reads = plan.attentionHook ? attentionReadDirections(model, L, plan.hook, e) : undefined
  const decompose = (vec: Float32Array): Decomposition =>
    reads
      ? decomposeAttentionHook(model, plan.hook, attnValues(L), reads, e, atPos(plan.saeHook), pos, seqLen)
      : decomposeAt({ model, vec, token: tokenId, pos, seqLen, resid: atPos(plan.resid), attn: plan.attnLayers.map(attnValues), mlpOut: plan.mlpLayers.map((l) => atPos(mlpOutHook(l))) })
  // No LayerNorm between R and the SAE (a residual hook): u is v, and u's decomposition and tables are v's,
  // computed once.
  const uIsV = lin.u.length === lin.v.length && lin.u.every((x, i) => x === lin.v[i])
  const decV = decompose(lin.v)
  const dec = { v: decV, u: uIsV ? decV : decompose(lin.u) }
  const strongest = strongestSourceAndHead(dec.v)
  const sourcePos = opts.sourcePos ?? strongest.sourcePos
  if (!Number.isInteger(sourcePos) || sourcePos < 0 || sourcePos > pos) throw new TraceInputError(`source position ${sourcePos} outside [0, ${pos}]`)
  const head = opts.head ?? strongest.head
  if (!Number.isInteger(head) || head < 0 || head >= H) throw new TraceInputError(`head ${head} outside [0, ${H})`)
  const badToken = opts.gridTokens?.find((t) => !Number.isInteger(t) || t < 0 || t >= vocab)
  if (badToken !== undefined) throw new TraceInputError(`grid token id ${badToken} lies outside the vocabulary [0, ${vocab})`)
  // The circuit tables are the chosen head's only: each is a pass over the vocabulary (the decompositions
  // above keep every head's terms, which the heatmap and the head picker show).
  const vHead = headVectors(model, L, lin.v, head, reads)
  const vectors = {
    v: { vector: lin.v, head: vHead, dotResidMid: lin.vDotResid },
    u: { vector: lin.u, head: uIsV ? vHead : headVectors(model, L, lin.u, head, reads), dotResidMid: lin.uDotResid },
  }
  const keyVec = qkKeyVector(model, L, head, queries(model, L, atPos(residPreHook(L)), pos - sourcePos)[head])
  const logitDirection = logitEffectDirection(model, sae, plan.layer, plan.hook, feature)
  const rows = new PointRows(uIsV)
  let t = lap('pointMath', t0)
  const products = await engine.vocabProducts({
    layer: L,
    ...rows.stack(d, vectors, keyVec),
    keyPos: sourcePos,
    unembed: logitDirection ?? new Float32Array(0),
  })
  t = lap('vocabProducts', t)

  /**
   * Row i of a [rows, d_vocab] product as a vocabulary table (copied, so the product can be freed), plus `add`;
   * made once per row and `add` (u's tables are v's where u is v).
   */
  const tables = new Map<string, VocabScores>()
  const vs = (m: Float32Array, i: number, add = 0): VocabScores => {
    const key = `${m === products.embed ? 'embed' : m === products.keys ? 'keys' : 'unembed'}:${i}:${add}`
    const known = tables.get(key)
    if (known) return known
    const scores = row(m, i, vocab).slice()
    if (add !== 0) for (let j = 0; j < vocab; j++) scores[j] += add
    const entry = (id: number): TokenScore => ({ tokenId: id, str_tokens: tokenText(display, id), score: scores[id] })
    const table = { scores, top: topIndices(scores, topK).map(entry), bottom: topIndices(scores, topK, false).map(entry) }
    tables.set(key, table)
    return table
  }
  const LABELS = labels(plan, lin.frozenLn?.name)
  const convention = (c: Convention): ConventionPoint => ({
    convention: c,
    label: LABELS[c],
    vector: vectors[c].vector,
    dotResidMid: vectors[c].dotResidMid,
    tokenScores: vs(products.embed, rows.tokenScores(c)),
    decomposition: dec[c],
    headTables: {
      head,
      ovTokens: vs(products.embed, rows.ovTokens(c)),
      lnOv: vs(products.keys, rows.lnOv(c), vectors[c].head.ovBias),
      qkSeed: vs(products.embed, rows.qkSeed(c)),
    },
  })

  const gridTokens = opts.gridTokens ?? (pos > 0 ? Array.from(sequence.subarray(Math.max(0, pos - 5), pos)) : [tokenId])
  const pairPositions = [...new Set([0, Math.floor(pos / 2), pos])].sort((a, b) => a - b)
  const trace: PointTrace = {
    feature,
    hookPoint: bundle.config.sae.hook_point,
    layer: plan.layer,
    circuitLayer: L,
    point: ref,
    tokenId,
    sequence: Int32Array.from(sequence),
    sequenceStrTokens: Array.from(sequence, (id) => tokenText(display, id)),
    activation: lin.activation,
    preActivation: lin.preActivation,
    resid: plan.resid,
    frozenLn: lin.frozenLn,
    cosineVU: cosine(lin.v, lin.u),
    v: convention('v'),
    u: convention('u'),
    sourcePos,
    head,
    qk: { head, ...vs(products.keys, rows.qk(), keyVec.bias) },
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
