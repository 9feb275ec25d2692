// The atlas's pure math (issue 15 §1): cosines of many directions, average-linkage clustering, the tree's
// leaf order, and the cross-fidelity of first-order predictions. Written here rather than taken from a
// library: no well-kept JavaScript package does average linkage on a small dense matrix (ml-hclust is
// unmaintained and brings its own matrix type), and at the atlas's size (≤ 200 points) the naive O(n³)
// Lance-Williams loop takes milliseconds. tools/golden_atlas.py computes the same quantities in torch.
import type { LinkageRow } from '../../common/atlas'
import { dot, norm } from './math'

/** cos(a_i, a_j) for every pair; 0 where a vector is zero. */
export function cosineMatrix(vectors: ArrayLike<number>[]): number[][] {
  const norms = vectors.map((v) => norm(v))
  return vectors.map((a, i) => vectors.map((b, j) => (i === j ? (norms[i] > 0 ? 1 : 0) : norms[i] > 0 && norms[j] > 0 ? dot(a, b) / (norms[i] * norms[j]) : 0)))
}

/**
 * Average linkage (UPGMA) on a symmetric distance matrix, as scipy.cluster.hierarchy.linkage(method='average'):
 * at each step the two closest clusters merge (ties: the pair with the lowest first id, then second id; ids
 * are points 0…n−1 and merge k's cluster n + k), and the distance from the new cluster to any other is the
 * mean of the point-to-point distances (the size-weighted mean of the two merged clusters').
 */
export function averageLinkage(dist: number[][]): LinkageRow[] {
  const n = dist.length
  const D = dist.map((r) => Float64Array.from(r))
  const ids = Array.from({ length: n }, (_, i) => i)
  const sizes = Array.from({ length: n }, () => 1)
  const alive = Array.from({ length: n }, () => true)
  const rows: LinkageRow[] = []
  for (let step = 0; step < n - 1; step++) {
    let bi = -1
    let bj = -1
    let best = Infinity
    for (let i = 0; i < n; i++) {
      if (!alive[i]) continue
      for (let j = i + 1; j < n; j++) {
        if (!alive[j]) continue
        const d = D[i][j]
        const lo = Math.min(ids[i], ids[j])
        const hi = Math.max(ids[i], ids[j])
        if (d < best || (d === best && (lo < Math.min(ids[bi], ids[bj]) || (lo === Math.min(ids[bi], ids[bj]) && hi < Math.max(ids[bi], ids[bj]))))) {
          best = d
          bi = i
          bj = j
        }
      }
    }
    const [a, b] = ids[bi] < ids[bj] ? [ids[bi], ids[bj]] : [ids[bj], ids[bi]]
    const size = sizes[bi] + sizes[bj]
    rows.push([a, b, best, size])
    for (let k = 0; k < n; k++) {
      if (!alive[k] || k === bi || k === bj) continue
      const d = (sizes[bi] * D[bi][k] + sizes[bj] * D[bj][k]) / size
      D[bi][k] = d
      D[k][bi] = d
    }
    alive[bj] = false
    ids[bi] = n + step
    sizes[bi] = size
  }
  return rows
}

/** The leaves from left to right (each merge's first cluster on the left): the heatmap's order. */
export function leafOrder(n: number, linkage: readonly LinkageRow[]): number[] {
  if (n === 0) return []
  const out: number[] = []
  const walk = (node: number): void => {
    if (node < n) out.push(node)
    else {
      walk(linkage[node - n][0])
      walk(linkage[node - n][1])
    }
  }
  walk(n + linkage.length - 1)
  return out
}

export interface CrossFidelity {
  /** predicted[i][j] = pre_i + u_i·(R_j − R_i). */
  predicted: number[][]
  /** |predicted[i][j] − pre_j| / |pre_j|, |pre_j| floored at 1e-12 so that the value stays a JSON number. */
  relError: number[][]
  /** Per direction i: the share of points j with relError[i][j] ≤ tolerance. */
  share: number[]
  best: number
}

/** How well each point's linearization predicts the true pre-activation at every other point. */
export function crossFidelity(u: ArrayLike<number>[], resid: ArrayLike<number>[], pre: number[], tolerance = 0.1): CrossFidelity {
  const n = u.length
  const uDotR = u.map((ui) => resid.map((rj) => dot(ui, rj)))
  const predicted = uDotR.map((row, i) => row.map((x) => pre[i] + x - uDotR[i][i]))
  const relError = predicted.map((row) => row.map((p, j) => Math.abs(p - pre[j]) / Math.max(Math.abs(pre[j]), 1e-12)))
  const share = relError.map((row) => (n ? row.filter((e) => e <= tolerance).length / n : 0))
  let best = 0
  for (let i = 1; i < n; i++) if (share[i] > share[best]) best = i
  return { predicted, relError, share, best }
}
