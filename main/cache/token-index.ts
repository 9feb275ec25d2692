// "Which features fire on token X": for each token id, the features that fire on its occurrences with
// their firing count, max and sum. Built in memory while finalize walks the features in id order (so
// each token's list arrives sorted and delta-encodes as it grows), then stored as one blob per token
// id: ~10 bytes a (token, feature) pair, a fifth of what an indexed table of the same pairs takes.
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

/** A growable byte buffer per token id; entries are (feature gap varint, count varint, max f32, sum f32). */
export class TokenIndexBuilder {
  private readonly bufs: (Buffer | undefined)[]
  private readonly lens: Uint32Array
  private readonly lastFeature: Int32Array
  private readonly entries: Uint32Array

  constructor(vocabSize: number) {
    this.bufs = new Array<Buffer | undefined>(vocabSize)
    this.lens = new Uint32Array(vocabSize)
    this.lastFeature = new Int32Array(vocabSize).fill(-1)
    this.entries = new Uint32Array(vocabSize)
  }

  /** Features must be added in ascending id order. */
  add(token: number, feature: number, count: number, max: number, sum: number): void {
    let buf = this.bufs[token]
    let len = this.lens[token]
    if (!buf || len + 18 > buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(64, (buf?.length ?? 0) * 2))
      buf?.copy(grown, 0, 0, len)
      buf = grown
      this.bufs[token] = buf
    }
    len = writeVarint(buf, len, feature - this.lastFeature[token] - 1)
    len = writeVarint(buf, len, count)
    buf.writeFloatLE(max, len)
    buf.writeFloatLE(sum, len + 4)
    this.lens[token] = len + 8
    this.lastFeature[token] = feature
    this.entries[token]++
  }

  /**
   * Token ids with at least one firing, ascending: how many features fire on each, and the encoded entries
   * of those kept (keptFeatures). `featureCounts[f]` is feature f's firings over the whole corpus.
   */
  *blobs(featureCounts: ArrayLike<number>): Generator<[token: number, features: number, blob: Buffer]> {
    for (let t = 0; t < this.bufs.length; t++) {
      const buf = this.bufs[t]
      if (!buf) continue
      const blob = buf.subarray(0, this.lens[t])
      if (this.entries[t] <= 2 * TOKEN_INDEX_K) {
        yield [t, this.entries[t], blob]
        continue
      }
      const kept = keptFeatures(decodeTokenEntries(blob), featureCounts)
      const one = new TokenIndexBuilder(1)
      for (const e of kept) one.add(0, e.feature, e.count, e.max, e.sum)
      yield [t, this.entries[t], one.bufs[0]!.subarray(0, one.lens[0])]
    }
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
