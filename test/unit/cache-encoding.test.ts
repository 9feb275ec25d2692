// The cache's byte layouts and per-feature math on hand-made arrays: round trips, tie-breaking, and the
// edge cases a real corpus rarely hits (dead features, one firing, equal values, huge gaps).
import { describe, expect, it } from 'vitest'
import { decodeFeatureActs, decodeIntervals, decodeTokenDeltas, encodeIntervals, encodeQuantised, encodeTokenDeltas } from '../../main/cache/encode'
import { topIndices } from '../../main/trace/math'
import { activationRow } from '../../main/bundle/corpus'
import { visibleToken } from '../../common/text'
import { aggregateFeature, belowExamples, intervals, quantileGroups, TokenPositions, TokenScratch, topK } from '../../main/cache/stats'
import { histogram } from '../../main/trace/histogram'
import { decodeTokenEntries, TOKEN_INDEX_K, TokenIndexBuilder } from '../../main/cache/token-index'

const acts = (tokens: number[], values: number[]) => ({ tokens: Uint32Array.from(tokens), values: Float32Array.from(values) })

describe('cache encodings', () => {
  it('round-trips token gaps of any size as varints', () => {
    const tokens = Uint32Array.from([0, 1, 2, 130, 20_000, 2 ** 31, 2 ** 32 - 1])
    const bytes = encodeTokenDeltas(tokens)
    expect(bytes.length).toBeLessThan(tokens.length * 5)
    expect(decodeTokenDeltas(bytes, tokens.length)).toEqual(tokens)
    expect(() => decodeTokenDeltas(Buffer.concat([bytes, Buffer.from([1])]), tokens.length)).toThrow(/trailing/)
  })

  it('round-trips interval bins, keeping fp32 values exact', () => {
    const bins = [
      { count: 7, examples: [[3, Math.fround(0.1)], [9, Math.fround(0.2)], [11, 1], [12, 1], [40, 1]] as [number, number][] },
      { count: 0, examples: [] },
      { count: 2, examples: [[5, Math.fround(7.7)], [6, 8]] as [number, number][] },
    ]
    const enc = encodeIntervals(bins)
    expect(decodeIntervals(enc.counts, enc.examples, 5)).toEqual(bins)
  })

  it('round-trips the per-token feature lists', () => {
    const b = new TokenIndexBuilder(4)
    for (let f = 0; f < 300; f += 5) b.add(2, f, f + 1, f / 2, f * 2) // 60: all kept
    b.add(0, 70_000, 1, 1, 1)
    const blobs = [...b.blobs(new Array(300).fill(1000))]
    expect(blobs.map(([t, n]) => [t, n])).toEqual([[0, 1], [2, 60]])
    expect(decodeTokenEntries(blobs[0][2])).toEqual([{ feature: 70_000, count: 1, max: 1, sum: 1 }])
    const two = decodeTokenEntries(blobs[1][2])
    expect(two).toHaveLength(60)
    expect(two[5]).toEqual({ feature: 25, count: 26, max: 12.5, sum: 50 })
  })

  it('quantises the full table to 16-bit fractions of the exact maximum', () => {
    const max = Math.fround(4.1733)
    const values = Float32Array.from([max, max / 2, 1e-6, 0.3, Math.fround(max * 0.99999)])
    const back = decodeFeatureActs(encodeTokenDeltas(Uint32Array.from([1, 5, 9, 100, 70_000])), encodeQuantised(values, max), max)
    expect(Array.from(back.tokens)).toEqual([1, 5, 9, 100, 70_000])
    expect(back.values[0]).toBe(max)
    // code k means k/65535 of the max: the nearest code is at most half a step away.
    values.forEach((v, i) => expect(Math.abs(back.values[i] - v)).toBeLessThanOrEqual(max / 131_070 + max * 2 ** -23)) // + fp32 rounding
    expect(back.values[1]).toBe(Math.fround((32768 / 65535) * max)) // 0.5 rounds to code 32768 (32767.5 → 32768)
    expect(encodeQuantised(values, max).length).toBe(10)
  })

  it('keeps, per token, the 32 features firing most on it and the 32 most specific to it, and counts all', () => {
    expect(TOKEN_INDEX_K).toBe(32)
    const b = new TokenIndexBuilder(1)
    // 100 features on token 0: feature f fires 200 - f times on it and 1000 times in all, except features
    // 80…99, which fire only there (share 1), and 70…79, which fire there in half their firings.
    const total = Array.from({ length: 100 }, (_, f) => (f >= 80 ? 200 - f : f >= 70 ? 2 * (200 - f) : 1000))
    for (let f = 0; f < 100; f++) b.add(0, f, 200 - f, f, 2 * f)
    const [[token, n, blob]] = [...b.blobs(total)]
    expect([token, n]).toEqual([0, 100])
    const ids = decodeTokenEntries(blob).map((e) => e.feature)
    // Most firings: 0…31. Most specific: 80…99 (share 1), then 70…79 (share ½), then the rest at share
    // 0.2-0.17 by count: 0, 1 — already kept — so 70…79 and 80…99 and the two best of the rest by count.
    const specific = [...Array.from({ length: 30 }, (_, i) => 70 + i), 0, 1]
    expect(ids).toEqual([...new Set([...Array.from({ length: 32 }, (_, i) => i), ...specific])].sort((x, y) => x - y))
    expect(decodeTokenEntries(blob)[0]).toEqual({ feature: 0, count: 200, max: 0, sum: 0 })
  })
})

describe('quantile groups and examples below the threshold', () => {
  it('splits distinct firings into ten groups of n/10 by value, with three examples spread through the corpus', () => {
    // 103 firings at token 2i with distinct values, in a scrambled order (value = (37·i mod 103) + 1).
    const n = 103
    const tokens = Uint32Array.from({ length: n }, (_, i) => 2 * i)
    const values = Float32Array.from({ length: n }, (_, i) => ((37 * i) % n) + 1)
    const groups = quantileGroups({ tokens, values })
    expect(groups).toHaveLength(10)
    const ranks = [...values].sort((a, b) => a - b)
    for (let g = 0; g < 10; g++) {
      const [start, end] = [Math.floor((g * n) / 10), Math.floor(((g + 1) * n) / 10)]
      expect(groups[g]).toMatchObject({ lo: ranks[start], hi: ranks[end - 1], count: end - start })
      // Its members in corpus order; the picks are the middles of three equal slices of them.
      const members = [...tokens].map((t, i) => [t, values[i]] as [number, number]).filter(([, v]) => v >= ranks[start] && v <= ranks[end - 1])
      const picks = [0, 1, 2].map((e) => members[Math.floor(((e + 0.5) * members.length) / 3)])
      expect(groups[g].examples).toEqual(picks)
    }
  })

  it('keeps equal values in one group, and needs no firings', () => {
    const groups = quantileGroups({ tokens: Uint32Array.from([1, 2, 3, 4]), values: Float32Array.from([2, 2, 2, 5]) })
    expect(groups.map((g) => [g.lo, g.hi, g.count])).toEqual([[2, 2, 3], [5, 5, 1]])
    expect(quantileGroups({ tokens: new Uint32Array(0), values: new Float32Array(0) })).toEqual([])
  })

  it('picks occurrences of the top token where the feature is silent, evenly through the corpus', () => {
    const corpus = Int32Array.from([7, 1, 7, 7, 2, 7, 7, 7, 3, 7, 7, 7, 7])
    const positions = new TokenPositions(corpus, 8)
    expect(Array.from(positions.of(7))).toEqual([0, 2, 3, 5, 6, 7, 9, 10, 11, 12])
    expect(Array.from(positions.of(4))).toEqual([])
    // Fires at 2, 6 and 11: silent at 0, 3, 5, 7, 9, 10, 12 (seven); five picks at ranks 0, 2, 3, 4, 6.
    expect(Array.from(belowExamples(positions.of(7), Uint32Array.from([2, 6, 8, 11])))).toEqual([0, 5, 7, 9, 12])
    expect(Array.from(belowExamples(positions.of(1), Uint32Array.from([1])))).toEqual([])
  })
})

describe('per-feature statistics', () => {
  it('orders the top activations by value, ties by earlier token', () => {
    const t = topK(acts([5, 1, 9, 3, 7], [2, 3, 3, 1, 2]), 4)
    expect(Array.from(t.tokens)).toEqual([1, 9, 5, 7])
    expect(Array.from(t.values)).toEqual([3, 3, 2, 2])
    expect(topK(acts([], []), 100).tokens.length).toBe(0)
  })

  it('orders the firings of a feature that fires at most k times (one numeric sort) as the comparison does', () => {
    // Corpus order, many ties, signs and magnitudes of every kind: the order a comparison sort gives.
    const values = [2, -1, 0.5, 2, 1e-30, -3e20, 0.5, 7, 2, -1, 1e30, 0.5].map(Math.fround)
    const tokens = values.map((_, i) => 3 * i + 1)
    const expected = values.map((v, i) => [v, tokens[i]]).sort((a, b) => b[0] - a[0] || a[1] - b[1])
    for (const k of [values.length, 100]) {
      const t = topK(acts(tokens, values), k)
      expect(Array.from(t.tokens)).toEqual(expected.map((e) => e[1]))
      expect(Array.from(t.values)).toEqual(expected.map((e) => e[0]))
    }
  })

  it('bins a histogram over [min, max] and keeps every value', () => {
    const h = histogram(Float32Array.from([1, 2, 3, 4, 5]), 4, 'linear')
    expect(h.edges).toEqual([1, 2, 3, 4, 5])
    expect(h.counts).toEqual([1, 1, 1, 2])
    expect(histogram(Float32Array.from([2, 2]), 40, 'linear')).toEqual({ scale: 'linear', edges: [2, 2], counts: [2] })
    expect(histogram(new Float32Array(0), 40, 'linear').counts).toEqual([])
    const log = histogram(Float32Array.from([0.01, 0.1, 1, 10]), 3, 'log')
    expect(log.counts).toEqual([1, 1, 2])
    expect(log.edges[1]).toBeCloseTo(0.1, 6)
  })

  it('picks interval examples evenly through the corpus, reproducibly', () => {
    const n = 100
    const a = acts(Array.from({ length: n }, (_, i) => i * 3), Array.from({ length: n }, (_, i) => ((i % 10) + 0.5) / 10))
    const bins = intervals(a, 1)
    expect(bins).toHaveLength(10)
    for (const [b, bin] of bins.entries()) {
      expect(bin.count).toBe(10)
      expect(bin.lo).toBeCloseTo(b / 10, 12)
      expect(bin.examples.map(([t]) => t)).toEqual([1, 3, 5, 7, 9].map((k) => (k * 10 + b) * 3))
    }
    expect(intervals(acts([], []), 0)).toEqual([])
  })

  it('computes the single-token F1 against the corpus', () => {
    const corpus = Int32Array.from([7, 7, 7, 7, 2, 2, 3, 3])
    const occ = new Uint32Array(8)
    corpus.forEach((t) => occ[t]++)
    const agg = aggregateFeature(acts([0, 1, 4, 6], [1, 2, 3, 4]), corpus, occ, new TokenScratch(8))
    expect(agg.topTokenId).toBe(7)
    expect(agg.precision).toBe(0.5)
    expect(agg.recall).toBe(0.5)
    expect(agg.f1).toBe(0.5)
    expect(agg.mean).toBe(2.5)
    const p = agg.perToken
    expect({ tokenIds: [...p.tokenIds], counts: [...p.counts], maxs: [...p.maxs], sums: [...p.sums] }).toEqual({ tokenIds: [2, 3, 7], counts: [1, 1, 2], maxs: [3, 4, 2], sums: [3, 4, 3] })
    const dead = aggregateFeature(acts([], []), corpus, occ, new TokenScratch(8))
    expect([dead.count, dead.topTokenId, dead.f1, dead.mean]).toEqual([0, null, null, 0])
  })
})

describe('token rows and logit extremes', () => {
  it('shows whitespace and builds the seed’s context column', () => {
    expect(visibleToken(' a\tb\n')).toBe('·a→b↩')
    expect(visibleToken('x\r\n\u0000\u000c\u007f')).toBe('x<0x0D>↩<0x00><0x0C><0x7F>')
    const display = ['<bos>', '·the', '·cat', '↩', 'x']
    const corpus = Int32Array.from([0, 1, 2, 3, 4, 1, 2, 0, 1, 2])
    const view = { corpus, seqLen: 7, display }
    expect(activationRow(view, 6, 1.5)).toEqual({
      str_tokens: '·cat', unique_token: '·cat/6', context: '·the·cat↩x·the|·cat|', batch: 0, pos: 6, label: '0/6', activation: 1.5, token_id: 2,
    })
    // The context stays inside its sequence.
    expect(activationRow(view, 8, 2).context).toBe('<bos>|·the|·cat')
  })

  it('finds the largest and smallest logit effects in order', () => {
    const v = Float64Array.from([0.5, -2, 3, 3, -1, 0])
    expect(topIndices(v, 3)).toEqual([2, 3, 0])
    expect(topIndices(v, 2, false)).toEqual([1, 4])
  })
})
