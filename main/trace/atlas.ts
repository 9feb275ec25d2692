// The mechanism atlas of a feature (issue 15 §1): the feature linearized at many of its firings at once.
// Each point's sequence runs through the model (a few sequences per engine call), v and u come from
// linearize.ts and u's decomposition from decompose.ts (the convention whose terms add up), exactly as a
// trace's point part computes them. Then: the cosines of the directions in both conventions, average-linkage
// clustering on 1 − cos(u), and for every node of the tree (every cluster any threshold gives) the mean
// direction's W_E tokens (W_E·mean(u) = mean(W_E·u_i): one vocabulary product per point), u's attention
// terms averaged over its members by (layer, head, relative source offset) and by (layer, head, source
// token), and the notebook's direct attribution (resid_pre, each attention layer, each MLP). Finally the
// cross-fidelity of each point's first-order prediction at every other point (atlas-math.ts).
import type { Bundle } from '../bundle'
import { activationRow } from '../bundle/corpus'
import type { ComputeEngine, HookName, TraceCompute } from '../compute/api'
import type { AtlasAttributionJson, AtlasJson, AtlasNodeJson, AtlasPointJson, AtlasPointSource, AtlasTermJson, CorpusScoresProgress } from '../../common/contract'
import { tokenText } from '../../common/text'
import { averageLinkage, cosineMatrix, crossFidelity, leafOrder } from './atlas-math'
import { decomposeAt, decomposeAttentionHook, type AttentionLayerValues, type Decomposition } from './decompose'
import { attentionReadDirections } from './linearize'
import { bundleViews, linearizeAt, pointSequence, type Hooks } from './locate'
import { row, stack, topIndices } from './math'
import { hookVHook, linearizationHooks, mlpOutHook, patternHook, tracePlan } from './plan'
import { TraceInputError } from './types'
import { encoderColumn } from './weights'

export interface AtlasPointIn {
  sample: number
  pos: number
  source: AtlasPointSource
}

export type AtlasEngine = Pick<ComputeEngine, 'forward'> & Pick<TraceCompute, 'vocabProducts'>

export interface AtlasOptions {
  /** Rows of each node's token and term tables (12). */
  topK?: number
  /** Relative error within which a prediction counts as explained (0.1). */
  tolerance?: number
  /** Tokens per forward call (8,192: the engine cuts it into runs of 2,048; fewer calls, less JS between them). */
  batchTokens?: number
  jobId?: string
  onProgress?: (p: CorpusScoresProgress) => void
}

export interface Atlas {
  json: Omit<AtlasJson, 'jobId'>
  /** The directions and R at each point, for tests and callers that go on computing. */
  u: Float32Array[]
  v: Float32Array[]
  resid: Float32Array[]
  decompositions: Decomposition[]
}

/** One tensor of a batched forward pass cut to sequence b, as a single sequence's hook value. */
function sequenceHooks(fwd: Hooks, b: number, nSeq: number): Hooks {
  const out: Hooks = {}
  for (const [name, t] of Object.entries(fwd)) {
    const per = t.data.length / nSeq
    out[name] = { ...t, dims: [1, ...t.dims.slice(1)], data: (t.data as Float32Array).subarray(b * per, (b + 1) * per) } as Hooks[string]
  }
  return out
}

interface PointResult {
  u: Float32Array
  v: Float32Array
  resid: Float32Array
  pre: number
  activation: number
  dec: Decomposition
  sequence: Int32Array
  pos: number
}

export async function computeAtlas(bundle: Bundle, engine: AtlasEngine, feature: number, points: AtlasPointIn[], opts: AtlasOptions = {}): Promise<Atlas> {
  const started = performance.now()
  if (points.length === 0) throw new TraceInputError(`feature ${feature} has no firings to build an atlas from`)
  const plan = tracePlan(bundle)
  if (plan.circuitLayer === null) throw new TraceInputError(`${bundle.config.sae.hook_point} is the embeddings: no layer comes before it, so there is nothing to linearize`)
  const { model, sae, display } = bundleViews(bundle)
  const { d_model: d, d_vocab: vocab } = bundle.config.model
  const { seqLen, data: corpus } = bundle.tokens
  const topK = opts.topK ?? 12
  for (const p of points) pointSequence(bundle, { feature, sample: p.sample, pos: p.pos })

  const hooks = new Set<HookName>(linearizationHooks(plan))
  for (const l of plan.attnLayers) hooks.add(patternHook(l)).add(hookVHook(l))
  for (const l of plan.mlpLayers) hooks.add(mlpOutHook(l))
  const e = encoderColumn(sae, feature)
  const reads = plan.attentionHook ? attentionReadDirections(model, plan.layer, plan.hook, e) : undefined

  // Each sample's forward pass once, a few samples per run.
  const samples = [...new Set(points.map((p) => p.sample))]
  const perRun = Math.max(1, Math.floor((opts.batchTokens ?? 8192) / seqLen))
  const results = new Map<string, PointResult>()
  const computeStarted = performance.now()
  const report = (done: number): void => {
    const secs = (performance.now() - computeStarted) / 1000
    const rate = secs > 0 ? (done * seqLen) / secs : 0
    const totalTokens = samples.length * seqLen
    opts.onProgress?.({ jobId: opts.jobId ?? '', doneTokens: done * seqLen, totalTokens, tokensPerSec: rate, etaSec: rate > 0 ? (totalTokens - done * seqLen) / rate : null })
  }
  report(0)
  for (let s0 = 0; s0 < samples.length; s0 += perRun) {
    const batch = samples.slice(s0, s0 + perRun)
    const tokens = new Int32Array(batch.length * seqLen)
    batch.forEach((s, b) => tokens.set(corpus.subarray(s * seqLen, (s + 1) * seqLen), b * seqLen))
    const fwd = await engine.forward(tokens, batch.length, seqLen, [...hooks])
    batch.forEach((sample, b) => {
      const one = sequenceHooks(fwd, b, batch.length)
      const sequence = tokens.subarray(b * seqLen, (b + 1) * seqLen)
      const attn = (l: number): AttentionLayerValues => ({ layer: l, hookV: one[hookVHook(l)].data as Float32Array, pattern: one[patternHook(l)].data as Float32Array })
      for (const p of points) {
        if (p.sample !== sample || results.has(`${p.sample}/${p.pos}`)) continue
        const lin = linearizeAt(bundle, plan, one, feature, p.pos, seqLen)
        const at = (name: HookName): Float32Array => row(one[name].data as Float32Array, p.pos, name === plan.saeHook ? sae.dIn : d)
        const dec = reads
          ? decomposeAttentionHook(model, plan.hook, attn(plan.layer), reads, e, at(plan.saeHook), p.pos, seqLen)
          : decomposeAt({ model, vec: lin.u, token: sequence[p.pos], pos: p.pos, seqLen, resid: at(plan.resid), attn: plan.attnLayers.map(attn), mlpOut: plan.mlpLayers.map((l) => at(mlpOutHook(l))) })
        results.set(`${p.sample}/${p.pos}`, { u: lin.u, v: lin.v, resid: at(plan.resid).slice(), pre: lin.preActivation, activation: lin.activation, dec, sequence, pos: p.pos })
      }
    })
    report(Math.min(samples.length, s0 + perRun))
  }
  const res = points.map((p) => results.get(`${p.sample}/${p.pos}`)!)
  const n = res.length
  const u = res.map((r) => r.u)
  const v = res.map((r) => r.v)
  const resid = res.map((r) => r.resid)

  const cosineU = cosineMatrix(u)
  const cosineV = cosineMatrix(v)
  const linkage = averageLinkage(cosineU.map((r) => r.map((c) => Math.max(0, 1 - c))))
  const cross = crossFidelity(u, resid, res.map((r) => r.pre), opts.tolerance ?? 0.1)

  // W_E·u_i for every point in one run; a node's W_E·mean(u) is the mean of its members' rows.
  const { embed } = await engine.vocabProducts({ layer: plan.circuitLayer, embed: stack(u, d), keys: new Float32Array(0), keyPos: 0, unembed: new Float32Array(0) })
  const view = { corpus, seqLen, display }
  const pointRows: AtlasPointJson[] = points.map((p, i) => ({ ...activationRow(view, p.sample * seqLen + p.pos, res[i].activation), source: p.source, preActivation: res[i].pre }))
  const nodes = treeNodes(n, linkage, res, embed, vocab, topK, display, bundle.config.model.n_heads)
  return {
    json: {
      feature,
      hookPoint: bundle.config.sae.hook_point,
      resid: plan.resid,
      points: pointRows,
      cosineU,
      cosineV,
      linkage,
      order: leafOrder(n, linkage),
      nodes,
      crossPredicted: cross.predicted,
      crossFidelity: cross.relError,
      explainedShare: cross.share,
      bestPoint: cross.best,
      bestShare: cross.share[cross.best],
      tolerance: opts.tolerance ?? 0.1,
      elapsedSec: (performance.now() - started) / 1000,
    },
    u,
    v,
    resid,
    decompositions: res.map((r) => r.dec),
  }
}

/** Sums a node keeps, from which its means are taken. */
interface NodeSums {
  members: number[]
  embed: Float64Array
  activation: number
  byOffset: Map<number, number>
  byToken: Map<number, number>
  attribution: Map<string, { sum: number; share: number }>
}

function addInto<K>(to: Map<K, number>, from: Map<K, number>): void {
  for (const [k, x] of from) to.set(k, (to.get(k) ?? 0) + x)
}

/**
 * Term keys as numbers (strings cost most of the atlas's time on the demo): ((layer · H + head) · K + third),
 * K above every offset and token id.
 */
interface TermKeys {
  heads: number
  third: number
}
const termKey = (k: TermKeys, layer: number, head: number, third: number): number => (layer * k.heads + head) * k.third + third
const termOf = (k: TermKeys, key: number): [number, number, number] => {
  const third = key % k.third
  const lh = (key - third) / k.third
  return [Math.floor(lh / k.heads), lh % k.heads, third]
}

/** A point's own sums: its attention terms keyed by (layer, head, offset) and (layer, head, token), its attribution. */
function leafSums(i: number, r: PointResult, embed: Float32Array, vocab: number, keys: TermKeys): NodeSums {
  const byOffset = new Map<number, number>()
  const byToken = new Map<number, number>()
  for (const a of r.dec.attn) {
    a.heads.forEach((terms, h) =>
      terms.forEach((x, s) => {
        const ko = termKey(keys, a.layer, h, r.pos - s)
        const kt = termKey(keys, a.layer, h, r.sequence[s])
        byOffset.set(ko, (byOffset.get(ko) ?? 0) + x)
        byToken.set(kt, (byToken.get(kt) ?? 0) + x)
      }),
    )
  }
  const total = r.dec.total
  const share = (x: number): number => (total !== 0 ? x / total : 0)
  const attribution = new Map<string, { sum: number; share: number }>()
  const put = (name: string, x: number): void => void attribution.set(name, { sum: x, share: share(x) })
  // A rotary model has no W_pos: its embedding term is W_E alone (pos null).
  if (r.dec.embed !== null) put(r.dec.pos === null ? 'resid_pre (W_E)' : 'resid_pre (W_E + W_pos)', r.dec.embed + (r.dec.pos ?? 0))
  for (const a of r.dec.attn) put(`attn ${a.layer}`, a.heads.reduce((acc, hs) => acc + hs.reduce((x, y) => x + y, 0), a.b_O))
  r.dec.mlpOut.forEach((x, l) => put(`mlp ${l}`, x))
  return { members: [i], embed: Float64Array.from(row(embed, i, vocab)), activation: r.activation, byOffset, byToken, attribution }
}

function treeNodes(n: number, linkage: [number, number, number, number][], res: PointResult[], embed: Float32Array, vocab: number, topK: number, display: string[], heads: number): AtlasNodeJson[] {
  const keys: TermKeys = { heads, third: Math.max(vocab, ...res.map((r) => r.sequence.length)) + 1 }
  const sums: NodeSums[] = res.map((r, i) => leafSums(i, r, embed, vocab, keys))
  for (const [a, b] of linkage) {
    const x = sums[a]
    const y = sums[b]
    const e = new Float64Array(vocab)
    for (let k = 0; k < vocab; k++) e[k] = x.embed[k] + y.embed[k]
    const byOffset = new Map(x.byOffset)
    addInto(byOffset, y.byOffset)
    const byToken = new Map(x.byToken)
    addInto(byToken, y.byToken)
    const attribution = new Map<string, { sum: number; share: number }>()
    for (const m of [x.attribution, y.attribution]) {
      for (const [k, t] of m) {
        const prev = attribution.get(k) ?? { sum: 0, share: 0 }
        attribution.set(k, { sum: prev.sum + t.sum, share: prev.share + t.share })
      }
    }
    sums.push({ members: [...x.members, ...y.members], embed: e, activation: x.activation + y.activation, byOffset, byToken, attribution })
  }
  const heights = [...Array.from({ length: n }, () => 0), ...linkage.map((r) => r[2])]
  return sums.map((s, id) => {
    const m = s.members.length
    const mean = Float64Array.from(s.embed, (x) => x / m)
    const entry = (tokenId: number) => ({ tokenId, str_tokens: tokenText(display, tokenId), score: mean[tokenId] })
    const terms = (map: Map<number, number>, key: 'offset' | 'tokenId'): AtlasTermJson[] => {
      const ks = new Float64Array(map.size)
      const abs = new Float64Array(map.size)
      let j = 0
      for (const [k, x] of map) {
        ks[j] = k
        abs[j++] = Math.abs(x)
      }
      return topIndices(abs, topK).map((j) => {
        const [layer, head, third] = termOf(keys, ks[j])
        const mean = map.get(ks[j])! / m
        return key === 'offset' ? { layer, head, offset: third, mean } : { layer, head, tokenId: third, str_tokens: tokenText(display, third), mean }
      })
    }
    const attribution: AtlasAttributionJson[] = [...s.attribution].map(([component, t]) => ({ component, mean: t.sum / m, meanShare: t.share / m }))
    return {
      id,
      members: [...s.members].sort((a, b) => a - b),
      height: heights[id],
      meanActivation: s.activation / m,
      tokens: { top: topIndices(mean, topK).map(entry), bottom: topIndices(mean, topK, false).map(entry) },
      byOffset: terms(s.byOffset, 'offset'),
      byToken: terms(s.byToken, 'tokenId'),
      attribution,
    }
  })
}
