// Turns the SAE graph's TopK output into CSR SparseActs. Kept apart from the engine so the exactness rule
// (no activation dropped) is one small function with its own test.
import type { SparseActs } from './api'

export interface TopKBlock {
  nTokens: number
  k: number
  /** [nTokens, k], each row sorted descending; zeros fill rows with fewer than k firing features. */
  values: Float32Array
  indices: Int32Array
  /** Number of activations > 0 per token. */
  counts: Int32Array
}

/** The largest per-token count: if it exceeds k, the block must be rerun with k ≥ this. */
export function maxCount(counts: Int32Array): number {
  let m = 0
  for (let i = 0; i < counts.length; i++) if (counts[i] > m) m = counts[i]
  return m
}

/** CSR with feature ids ascending within each token (a canonical order, independent of TopK's tie-breaking). */
export function topKToCsr(block: TopKBlock): SparseActs {
  const { nTokens, k, values, indices, counts } = block
  const rowPtr = new Uint32Array(nTokens + 1)
  let nnz = 0
  for (let t = 0; t < nTokens; t++) {
    if (counts[t] > k) throw new Error(`token ${t} has ${counts[t]} firing features but TopK kept ${k}`)
    nnz += counts[t]
    rowPtr[t + 1] = nnz
  }
  const featureIds = new Uint32Array(nnz)
  const out = new Float32Array(nnz)
  const order: number[] = []
  for (let t = 0; t < nTokens; t++) {
    const base = t * k
    const start = rowPtr[t]
    const n = rowPtr[t + 1] - start
    order.length = 0
    for (let j = 0; j < n; j++) order.push(j)
    order.sort((a, b) => indices[base + a] - indices[base + b])
    for (let j = 0; j < n; j++) {
      const v = values[base + order[j]]
      if (!(v > 0)) throw new Error(`token ${t}: TopK value ${v} where ${n} positive activations were counted`)
      featureIds[start + j] = indices[base + order[j]]
      out[start + j] = v
    }
  }
  return { nTokens, rowPtr, featureIds, values: out }
}

/** Concatenates CSR blocks of consecutive tokens. */
export function concatCsr(parts: SparseActs[]): SparseActs {
  if (parts.length === 1) return parts[0]
  const nTokens = parts.reduce((a, p) => a + p.nTokens, 0)
  const nnz = parts.reduce((a, p) => a + p.values.length, 0)
  const rowPtr = new Uint32Array(nTokens + 1)
  const featureIds = new Uint32Array(nnz)
  const values = new Float32Array(nnz)
  let t = 0
  let off = 0
  for (const p of parts) {
    for (let i = 1; i <= p.nTokens; i++) rowPtr[t + i] = off + p.rowPtr[i]
    featureIds.set(p.featureIds, off)
    values.set(p.values, off)
    t += p.nTokens
    off += p.values.length
  }
  return { nTokens, rowPtr, featureIds, values }
}
