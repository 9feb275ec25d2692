// "Which features fire on token X": for each token id, the features that fire on its occurrences with
// their firing count, max and sum. Gathered in memory while finalize walks the features in id order (so
// each token's list is in feature order), then grouped by token and stored as one delta-encoded blob per
// token id: ~10 bytes a (token, feature) pair, a fifth of what an indexed table of the same pairs takes.
// A frequent token has nearly every feature firing on it somewhere (on the demo, 5.6M pairs for 7,749
// tokens: 61 MB, four times the rest of the summary), so each token keeps the features that matter for
// it (TOKEN_INDEX_K with the most firings on it, and TOKEN_INDEX_K most specific to it) and the count
// of all of them.
import { VarintReader, writeVarint } from './encode'

export interface TokenFeatureStats {
  feature: number
  count: number
  max: number
  sum: number
}

/** Per token: this many features by firings on it, and this many by the share of their firings it holds. */
export const TOKEN_INDEX_K = 32

/** Bytes an entry takes at most: two varints of up to 5 bytes, two f32. */
const MAX_ENTRY_BYTES = 18

/**
 * Every (token, feature) pair, kept in growable typed arrays in the order added (one object or buffer per
 * token cost finalize more than the rest of the token index); grouped by token and encoded by blobs().
 * Each blob entry is (feature gap varint, count varint, max f32, sum f32).
 */
export class TokenIndexBuilder {
  private n = 0
  private tokens = new Uint32Array(1024)
  private features = new Uint32Array(1024)
  private counts = new Uint32Array(1024)
  private maxs = new Float32Array(1024)
  /** As stored: f32. */
  private sums = new Float32Array(1024)

  constructor(private readonly vocabSize: number) {}

  /** Features must be added in ascending id order for each token. */
  add(token: number, feature: number, count: number, max: number, sum: number): void {
    if (this.n === this.tokens.length) this.grow()
    const i = this.n++
    this.tokens[i] = token
    this.features[i] = feature
    this.counts[i] = count
    this.maxs[i] = max
    this.sums[i] = sum
  }

  private grow(): void {
    const size = this.tokens.length * 2
    const grown = <A extends Uint32Array | Float32Array>(a: A, T: new (n: number) => A): A => {
      const b = new T(size)
      b.set(a)
      return b
    }
    this.tokens = grown(this.tokens, Uint32Array)
    this.features = grown(this.features, Uint32Array)
    this.counts = grown(this.counts, Uint32Array)
    this.maxs = grown(this.maxs, Float32Array)
    this.sums = grown(this.sums, Float32Array)
  }

  /**
   * Token ids with at least one firing, ascending: how many features fire on each, and the encoded entries
   * of those kept (keptFeatures). `featureCounts[f]` is feature f's firings over the whole corpus.
   */
  *blobs(featureCounts: ArrayLike<number>): Generator<[token: number, features: number, blob: Buffer]> {
    const { n, tokens } = this
    // A counting sort by token: stable, so each token's pairs stay in ascending feature order.
    const starts = new Uint32Array(this.vocabSize + 1)
    for (let i = 0; i < n; i++) starts[tokens[i] + 1]++
    for (let t = 0; t < this.vocabSize; t++) starts[t + 1] += starts[t]
    const fill = starts.slice(0, this.vocabSize)
    const order = new Uint32Array(n)
    for (let i = 0; i < n; i++) order[fill[tokens[i]]++] = i
    for (let t = 0; t < this.vocabSize; t++) {
      const all = order.subarray(starts[t], starts[t + 1])
      if (all.length === 0) continue
      yield [t, all.length, this.encode(all.length <= 2 * TOKEN_INDEX_K ? all : this.kept(all, featureCounts))]
    }
  }

  /**
   * keptFeatures on the pairs `at` (one token's, in feature order) without an object per pair: the best
   * TOKEN_INDEX_K by each order, kept by insertion (both orders are total, so the sets are those of a sort).
   * Each order's comparison is written out in its loop: a comparator passed as a function was most of
   * finalize's token index time.
   */
  private kept(at: Uint32Array, featureCounts: ArrayLike<number>): Uint32Array {
    const { features, counts, maxs } = this
    const n = at.length
    const count = new Float64Array(n)
    const max = new Float64Array(n)
    const share = new Float64Array(n)
    for (let j = 0; j < n; j++) {
      count[j] = counts[at[j]]
      max[j] = maxs[at[j]]
      share[j] = count[j] / featureCounts[features[at[j]]]
    }
    const keep = new Uint8Array(n)
    const best = new Int32Array(TOKEN_INDEX_K)
    // Most firings on the token (then the higher max, then the smaller feature: the smaller j).
    let size = 0
    for (let j = 0; j < n; j++) {
      let i = size
      while (i > 0) {
        const b = best[i - 1]
        if (!(count[j] > count[b] || (count[j] === count[b] && max[j] > max[b]))) break
        i--
      }
      if (i >= TOKEN_INDEX_K) continue
      best.copyWithin(i + 1, i, Math.min(size, TOKEN_INDEX_K - 1))
      best[i] = j
      if (size < TOKEN_INDEX_K) size++
    }
    for (let i = 0; i < size; i++) keep[best[i]] = 1
    // Most specific to it: the largest share of the feature's firings (then more firings, then the smaller j).
    size = 0
    for (let j = 0; j < n; j++) {
      let i = size
      while (i > 0) {
        const b = best[i - 1]
        if (!(share[j] > share[b] || (share[j] === share[b] && count[j] > count[b]))) break
        i--
      }
      if (i >= TOKEN_INDEX_K) continue
      best.copyWithin(i + 1, i, Math.min(size, TOKEN_INDEX_K - 1))
      best[i] = j
      if (size < TOKEN_INDEX_K) size++
    }
    for (let i = 0; i < size; i++) keep[best[i]] = 1
    let kept = 0
    const out = new Uint32Array(n)
    for (let j = 0; j < n; j++) if (keep[j]) out[kept++] = at[j]
    return out.subarray(0, kept)
  }

  private encode(at: Uint32Array): Buffer {
    const buf = Buffer.allocUnsafe(at.length * MAX_ENTRY_BYTES)
    const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
    let len = 0
    let last = -1
    for (let j = 0; j < at.length; j++) {
      const i = at[j]
      len = writeVarint(buf, len, this.features[i] - last - 1)
      len = writeVarint(buf, len, this.counts[i])
      view.setFloat32(len, this.maxs[i], true)
      view.setFloat32(len + 4, this.sums[i], true)
      len += 8
      last = this.features[i]
    }
    return buf.subarray(0, len)
  }
}

/**
 * The entries a token keeps, in feature order: the TOKEN_INDEX_K with the most firings on the token (ties:
 * the higher max, then the lower id), and the TOKEN_INDEX_K whose firings fall on it most (count over the
 * feature's firings; ties: more firings, then the lower id).
 */
export function keptFeatures(entries: TokenFeatureStats[], featureCounts: ArrayLike<number>): TokenFeatureStats[] {
  if (entries.length <= 2 * TOKEN_INDEX_K) return entries
  const byCount = [...entries].sort((a, b) => b.count - a.count || b.max - a.max || a.feature - b.feature)
  const share = (e: TokenFeatureStats) => e.count / featureCounts[e.feature]
  const bySpecificity = [...entries].sort((a, b) => share(b) - share(a) || b.count - a.count || a.feature - b.feature)
  const kept = new Set([...byCount.slice(0, TOKEN_INDEX_K), ...bySpecificity.slice(0, TOKEN_INDEX_K)])
  return entries.filter((e) => kept.has(e))
}

export function decodeTokenEntries(blob: Uint8Array): TokenFeatureStats[] {
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength)
  const out: TokenFeatureStats[] = []
  const r = new VarintReader(blob)
  let feature = -1
  while (r.at < blob.length) {
    feature += r.varint() + 1
    const count = r.varint()
    const max = view.getFloat32(r.at, true)
    const sum = view.getFloat32(r.at + 4, true)
    r.at += 8
    out.push({ feature, count, max, sum })
  }
  return out
}
