// Histograms of activations and scores: the cache's per-feature histograms and a trace's whole-corpus
// score histogram use the same binning, so two histograms of the same values agree bin for bin.
import type { Histogram } from '../../common/contract'

/**
 * Bin edges over [lo, hi]: `bins` equal widths (of log(value) for log scale). The cache stores only
 * lo, hi and the counts of its histogram and rebuilds the edges with this same function.
 */
export function histogramEdges(lo: number, hi: number, bins: number, scale: 'linear' | 'log'): number[] {
  const tLo = scale === 'log' ? Math.log(lo) : lo
  const tHi = scale === 'log' ? Math.log(hi) : hi
  const edges: number[] = []
  for (let b = 0; b <= bins; b++) {
    const t = tLo + ((tHi - tLo) * b) / bins
    edges.push(b === 0 ? lo : b === bins ? hi : scale === 'log' ? Math.exp(t) : t)
  }
  return edges
}

/** Bins over [min, max] of the values (the non-zero activations); log bins skip values ≤ 0. */
export function histogram(values: Float32Array, bins: number, scale: 'linear' | 'log'): Histogram {
  let lo = Infinity
  let hi = -Infinity
  for (let i = 0; i < values.length; i++) {
    const v = values[i]
    if (scale === 'log' && v <= 0) continue
    if (v < lo) lo = v
    if (v > hi) hi = v
  }
  if (!(hi >= lo)) return { scale, edges: [], counts: [] }
  if (hi === lo) bins = 1
  const tLo = scale === 'log' ? Math.log(lo) : lo
  const width = (scale === 'log' ? Math.log(hi) : hi) - tLo
  const counts = new Array<number>(bins).fill(0)
  for (let i = 0; i < values.length; i++) {
    const v = values[i]
    if (scale === 'log' && v <= 0) continue
    const t = scale === 'log' ? Math.log(v) : v
    const b = width > 0 ? Math.min(bins - 1, Math.floor(((t - tLo) / width) * bins)) : 0
    counts[b]++
  }
  return { scale, edges: histogramEdges(lo, hi, bins, scale), counts }
}
