// The per-feature numbers the cache shows, computed from one feature's firings over the whole corpus.
// Pure functions of arrays; every choice that could make two builds differ (ties, example picks) is
// fixed here, so a resumed build and a clean one agree byte for byte.
import type { FeatureActs } from './encode'
import type { Histogram } from '../../common/contract'
import { histogram } from '../trace/histogram'

export const TOP_K = 100
export const HISTOGRAM_BINS = 40
export const INTERVAL_BINS = 10
export const INTERVAL_EXAMPLES = 5
/** sae_vis's quantile groups: this many groups of (about) equal firings, a few examples each. */
export const QUANTILE_GROUPS = 10
export const QUANTILE_EXAMPLES = 3
/** Occurrences of the feature's top token where it does not fire, shown beside the examples. */
export const BELOW_EXAMPLES = 5

/** An activation at a global token index (sequence·seq_len + pos). */
export type Example = [token: number, value: number]

export interface IntervalAggregate {
  lo: number
  hi: number
  count: number
  examples: Example[]
}

/** Per token id the feature fires on (ascending): its firings there, their max and sum. */
export interface PerTokenRows {
  tokenIds: Uint32Array
  counts: Uint32Array
  maxs: Float32Array
  sums: Float64Array
}

/** A quantile group: firings from lo to hi (both included), how many, and examples. */
export interface QuantileGroup {
  lo: number
  hi: number
  count: number
  examples: Example[]
}

export interface FeatureAggregate {
  count: number
  max: number
  mean: number
  topTokenId: number | null
  topTokenCount: number
  precision: number | null
  recall: number | null
  f1: number | null
  histogram: Histogram
  intervals: IntervalAggregate[]
  quantiles: QuantileGroup[]
  /** Global token indices of the top token's occurrences where the feature does not fire. */
  below: Uint32Array
  topTokens: Uint32Array
  topVals: Float32Array
  perToken: PerTokenRows
}

/** Is (va, ta) a stronger activation than (vb, tb)? Higher value first, then earlier token. */
function stronger(va: number, ta: number, vb: number, tb: number): boolean {
  return va > vb || (va === vb && ta < tb)
}

const f32 = new Float32Array(1)
const f32Bits = new Uint32Array(f32.buffer)

/** An unsigned 32-bit key of a float32 in the same order as the values (+0 and -0 alike). */
function orderKey(v: number): number {
  f32[0] = v === 0 ? 0 : v
  const b = f32Bits[0]
  return b >= 0x80000000 ? ~b >>> 0 : b + 0x80000000
}

/** Positions below this fit beside a 32-bit key in a float64's 53 exact bits. */
const POSITION_LIMIT = 2 ** 21

/** Are the tokens strictly ascending (finalize's firings, in corpus order)? */
function ascending(tokens: Uint32Array): boolean {
  for (let i = 1; i < tokens.length; i++) if (tokens[i] <= tokens[i - 1]) return false
  return true
}

/**
 * The k strongest firings, strongest first: a bounded min-heap, so a dense feature costs O(n log k). Most
 * features fire at most k times; their firings, in corpus order, are sorted whole by one numeric sort of
 * (value, position) keys, with the same order (ties to the earlier token) and no comparator calls.
 */
export function topK(acts: FeatureActs, k: number): { tokens: Uint32Array; values: Float32Array } {
  const all = acts.values.length
  if (all <= k && all < POSITION_LIMIT && ascending(acts.tokens)) {
    const keys = new Float64Array(all)
    for (let i = 0; i < all; i++) keys[i] = (0xffffffff - orderKey(acts.values[i])) * POSITION_LIMIT + i
    keys.sort()
    const tokens = new Uint32Array(all)
    const values = new Float32Array(all)
    for (let j = 0; j < all; j++) {
      const i = keys[j] % POSITION_LIMIT
      tokens[j] = acts.tokens[i]
      values[j] = acts.values[i]
    }
    return { tokens, values }
  }
  const n = Math.min(k, all)
  const heapT = new Uint32Array(n)
  const heapV = new Float32Array(n)
  let size = 0
  const swap = (a: number, b: number): void => {
    const v = heapV[a]
    heapV[a] = heapV[b]
    heapV[b] = v
    const t = heapT[a]
    heapT[a] = heapT[b]
    heapT[b] = t
  }
  const siftDown = (i: number): void => {
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let w = i
      if (l < size && stronger(heapV[w], heapT[w], heapV[l], heapT[l])) w = l
      if (r < size && stronger(heapV[w], heapT[w], heapV[r], heapT[r])) w = r
      if (w === i) return
      swap(i, w)
      i = w
    }
  }
  for (let i = 0; i < acts.values.length; i++) {
    const v = acts.values[i]
    const t = acts.tokens[i]
    if (size < n) {
      let j = size++
      heapV[j] = v
      heapT[j] = t
      while (j > 0) {
        const p = (j - 1) >> 1
        if (!stronger(heapV[p], heapT[p], heapV[j], heapT[j])) break
        swap(p, j)
        j = p
      }
    } else if (n > 0 && stronger(v, t, heapV[0], heapT[0])) {
      heapV[0] = v
      heapT[0] = t
      siftDown(0)
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) =>
    stronger(heapV[a], heapT[a], heapV[b], heapT[b]) ? -1 : stronger(heapV[b], heapT[b], heapV[a], heapT[a]) ? 1 : 0,
  )
  return { tokens: Uint32Array.from(order, (i) => heapT[i]), values: Float32Array.from(order, (i) => heapV[i]) }
}

export function intervalRange(max: number, bin: number): { lo: number; hi: number } {
  return { lo: (max * bin) / INTERVAL_BINS, hi: (max * (bin + 1)) / INTERVAL_BINS }
}

/**
 * sae_vis's interval groups: INTERVAL_BINS equal-width activation ranges over (0, max], with
 * INTERVAL_EXAMPLES firings from each, picked evenly spaced through the corpus (not at random, so that
 * the pick is reproducible).
 */
export function intervals(acts: FeatureActs, max: number): IntervalAggregate[] {
  const n = acts.values.length
  if (n === 0 || !(max > 0)) return []
  // Each firing's bin, once (NO_BIN: not positive).
  const binOf = new Uint8Array(n)
  const counts = new Uint32Array(INTERVAL_BINS)
  for (let i = 0; i < n; i++) {
    const v = acts.values[i]
    const b = v > 0 ? Math.min(INTERVAL_BINS - 1, Math.floor((v / max) * INTERVAL_BINS)) : NO_BIN
    binOf[i] = b
    if (b !== NO_BIN) counts[b]++
  }
  // The e-th example of a bin is its member of rank floor((e + 0.5)·count / picks) in corpus order:
  // the middle of the e-th of `picks` equal slices of the bin.
  const picks = new Uint32Array(INTERVAL_BINS)
  const seen = new Uint32Array(INTERVAL_BINS)
  const next = new Uint32Array(INTERVAL_BINS)
  const bins: IntervalAggregate[] = []
  for (let b = 0; b < INTERVAL_BINS; b++) {
    picks[b] = Math.min(INTERVAL_EXAMPLES, counts[b])
    const { lo, hi } = intervalRange(max, b)
    bins.push({ lo, hi, count: counts[b], examples: [] })
  }
  for (let i = 0; i < n; i++) {
    const b = binOf[i]
    if (b === NO_BIN) continue
    const e = next[b]
    if (e < picks[b] && seen[b] === pickRank(e, counts[b], picks[b])) {
      bins[b].examples.push([acts.tokens[i], acts.values[i]])
      next[b]++
    }
    seen[b]++
  }
  return bins
}

const NO_BIN = 255

/**
 * The e-th pick of `picks` among `count` members in corpus order is the member of rank
 * floor((e + 0.5)·count / picks): the middle of the e-th of equal slices (reproducible, unlike a sample).
 */
function pickRank(e: number, count: number, picks: number): number {
  return Math.floor(((e + 0.5) * count) / picks)
}

/**
 * sae_vis's quantile groups: the firings split into QUANTILE_GROUPS groups of about equal size by value
 * (group g starts at the value of rank floor(g·n/groups) in ascending order; equal values share a group, so
 * sizes may differ by ties), with QUANTILE_EXAMPLES examples each, evenly spaced through the corpus.
 */
export function quantileGroups(acts: FeatureActs): QuantileGroup[] {
  const n = acts.values.length
  if (n === 0) return []
  const sorted = Float32Array.from(acts.values).sort()
  const starts: number[] = []
  for (let g = 0; g < QUANTILE_GROUPS; g++) {
    const v = sorted[Math.floor((g * n) / QUANTILE_GROUPS)]
    if (starts.length === 0 || v > starts[starts.length - 1]) starts.push(v)
  }
  // Each firing's group, once: the last group whose start it reaches.
  const groupOf = new Uint8Array(n)
  const groups: QuantileGroup[] = starts.map((lo) => ({ lo, hi: lo, count: 0, examples: [] }))
  for (let i = 0; i < n; i++) {
    const v = acts.values[i]
    let k = starts.length - 1
    while (k > 0 && v < starts[k]) k--
    groupOf[i] = k
    const g = groups[k]
    g.count++
    if (v > g.hi) g.hi = v
  }
  const picks = groups.map((g) => Math.min(QUANTILE_EXAMPLES, g.count))
  const seen = new Array<number>(groups.length).fill(0)
  for (let i = 0; i < n; i++) {
    const k = groupOf[i]
    const g = groups[k]
    if (g.examples.length < picks[k] && seen[k] === pickRank(g.examples.length, g.count, picks[k])) g.examples.push([acts.tokens[i], acts.values[i]])
    seen[k]++
  }
  return groups
}

/**
 * Up to BELOW_EXAMPLES occurrences of `token` where the feature does not fire, evenly spaced through the
 * corpus. `occurrences` holds the token's global indices ascending, `firing` the feature's.
 */
export function belowExamples(occurrences: Uint32Array, firing: Uint32Array): Uint32Array {
  // Occurrences not firing, walked with the firings in step (both ascending).
  const quiet: number[] = []
  let j = 0
  for (let i = 0; i < occurrences.length; i++) {
    const t = occurrences[i]
    while (j < firing.length && firing[j] < t) j++
    if (j >= firing.length || firing[j] !== t) quiet.push(t)
  }
  const picks = Math.min(BELOW_EXAMPLES, quiet.length)
  return Uint32Array.from({ length: picks }, (_, e) => quiet[pickRank(e, quiet.length, picks)])
}

/** Every position of each token id in the corpus, ascending (CSR by token id), for belowExamples. */
export class TokenPositions {
  private readonly offsets: Uint32Array
  private readonly positions: Uint32Array
  constructor(corpus: Int32Array, vocabSize: number) {
    this.offsets = new Uint32Array(vocabSize + 1)
    for (let i = 0; i < corpus.length; i++) this.offsets[corpus[i] + 1]++
    for (let t = 0; t < vocabSize; t++) this.offsets[t + 1] += this.offsets[t]
    const fill = this.offsets.slice(0, vocabSize)
    this.positions = new Uint32Array(corpus.length)
    for (let i = 0; i < corpus.length; i++) this.positions[fill[corpus[i]]++] = i
  }

  of(token: number): Uint32Array {
    return this.positions.subarray(this.offsets[token], this.offsets[token + 1])
  }
}

/** Reused across features: one slot per token id, reset through the list of touched ids. */
export class TokenScratch {
  readonly counts: Uint32Array
  readonly maxs: Float32Array
  readonly sums: Float64Array
  constructor(vocabSize: number) {
    this.counts = new Uint32Array(vocabSize)
    this.maxs = new Float32Array(vocabSize)
    this.sums = new Float64Array(vocabSize)
  }
}

/**
 * Everything about one feature. `corpus` is the token ids of the whole corpus (flattened); `occurrences`
 * counts each token id in it (the recall's denominator).
 */
export function aggregateFeature(
  acts: FeatureActs,
  corpus: Int32Array,
  occurrences: Uint32Array,
  scratch: TokenScratch,
  positions?: TokenPositions,
): FeatureAggregate {
  const n = acts.values.length
  let max = 0
  let sum = 0
  const seen = new Uint32Array(n)
  let nTouched = 0
  const { counts, maxs, sums } = scratch
  for (let i = 0; i < n; i++) {
    const v = acts.values[i]
    if (v > max) max = v
    sum += v
    const t = corpus[acts.tokens[i]]
    if (counts[t] === 0) {
      seen[nTouched++] = t
      maxs[t] = v
    } else if (v > maxs[t]) maxs[t] = v
    counts[t]++
    sums[t] += v
  }
  const touched = seen.slice(0, nTouched).sort()
  const perToken: PerTokenRows = { tokenIds: touched, counts: new Uint32Array(nTouched), maxs: new Float32Array(nTouched), sums: new Float64Array(nTouched) }
  let topTokenId: number | null = null
  let topTokenCount = 0
  for (let k = 0; k < nTouched; k++) {
    const t = touched[k]
    perToken.counts[k] = counts[t]
    perToken.maxs[k] = maxs[t]
    perToken.sums[k] = sums[t]
    // Ties go to the smaller id: `touched` is ascending and only a strictly larger count wins.
    if (counts[t] > topTokenCount) {
      topTokenCount = counts[t]
      topTokenId = t
    }
    counts[t] = 0
    maxs[t] = 0
    sums[t] = 0
  }
  let precision: number | null = null
  let recall: number | null = null
  let f1: number | null = null
  if (topTokenId !== null) {
    precision = topTokenCount / n
    recall = topTokenCount / occurrences[topTokenId]
    f1 = (2 * precision * recall) / (precision + recall)
  }
  const top = topK(acts, TOP_K)
  return {
    count: n,
    max,
    mean: n > 0 ? sum / n : 0,
    topTokenId,
    topTokenCount,
    precision,
    recall,
    f1,
    histogram: histogram(acts.values, HISTOGRAM_BINS, 'linear'),
    intervals: intervals(acts, max),
    quantiles: quantileGroups(acts),
    below: positions && topTokenId !== null ? belowExamples(positions.of(topTokenId), acts.tokens) : new Uint32Array(0),
    topTokens: top.tokens,
    topVals: top.values,
    perToken,
  }
}
