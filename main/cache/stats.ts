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

/** An activation at a global token index (sequence·seq_len + pos). */
export type Example = [token: number, value: number]

export interface IntervalAggregate {
  lo: number
  hi: number
  count: number
  examples: Example[]
}

export interface PerTokenRows {
  tokenIds: number[]
  counts: number[]
  maxs: number[]
  sums: number[]
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
  topTokens: Uint32Array
  topVals: Float32Array
  perToken: PerTokenRows
}

/** Is (va, ta) a stronger activation than (vb, tb)? Higher value first, then earlier token. */
function stronger(va: number, ta: number, vb: number, tb: number): boolean {
  return va > vb || (va === vb && ta < tb)
}

/** The k strongest firings, strongest first: a bounded min-heap, so a dense feature costs O(n log k). */
export function topK(acts: FeatureActs, k: number): { tokens: Uint32Array; values: Float32Array } {
  const n = Math.min(k, acts.values.length)
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
  if (acts.values.length === 0 || !(max > 0)) return []
  const binOf = (v: number): number => Math.min(INTERVAL_BINS - 1, Math.floor((v / max) * INTERVAL_BINS))
  const counts = new Array<number>(INTERVAL_BINS).fill(0)
  for (let i = 0; i < acts.values.length; i++) if (acts.values[i] > 0) counts[binOf(acts.values[i])]++
  // The e-th example of a bin is its member of rank floor((e + 0.5)·count / picks) in corpus order:
  // the middle of the e-th of `picks` equal slices of the bin.
  const picks = counts.map((c) => Math.min(INTERVAL_EXAMPLES, c))
  const seen = new Array<number>(INTERVAL_BINS).fill(0)
  const next = new Array<number>(INTERVAL_BINS).fill(0)
  const bins: IntervalAggregate[] = counts.map((count, b) => ({ ...intervalRange(max, b), count, examples: [] }))
  for (let i = 0; i < acts.values.length; i++) {
    const v = acts.values[i]
    if (v <= 0) continue
    const b = binOf(v)
    const e = next[b]
    if (e < picks[b] && seen[b] === Math.floor(((e + 0.5) * counts[b]) / picks[b])) {
      bins[b].examples.push([acts.tokens[i], v])
      next[b]++
    }
    seen[b]++
  }
  return bins
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
): FeatureAggregate {
  const n = acts.values.length
  let max = 0
  let sum = 0
  const touched: number[] = []
  const { counts, maxs, sums } = scratch
  for (let i = 0; i < n; i++) {
    const v = acts.values[i]
    if (v > max) max = v
    sum += v
    const t = corpus[acts.tokens[i]]
    if (counts[t] === 0) {
      touched.push(t)
      maxs[t] = v
    } else if (v > maxs[t]) maxs[t] = v
    counts[t]++
    sums[t] += v
  }
  touched.sort((a, b) => a - b)
  const perToken: PerTokenRows = { tokenIds: touched, counts: [], maxs: [], sums: [] }
  let topTokenId: number | null = null
  let topTokenCount = 0
  for (const t of touched) {
    perToken.counts.push(counts[t])
    perToken.maxs.push(maxs[t])
    perToken.sums.push(sums[t])
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
    topTokens: top.tokens,
    topVals: top.values,
    perToken,
  }
}
