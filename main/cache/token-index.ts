// "Which features fire on token X": for each token id, the features that fire on its occurrences with
// their firing count, max and sum. Built in memory while finalize walks the features in id order (so
// each token's list arrives sorted and delta-encodes as it grows), then stored as one blob per token
// id: ~10 bytes a (token, feature) pair, a fifth of what an indexed table of the same pairs takes.
import { VarintReader, writeVarint } from './encode'

export interface TokenFeatureStats {
  feature: number
  count: number
  max: number
  sum: number
}

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

  /** Token ids with at least one firing, ascending, with their encoded entries. */
  *blobs(): Generator<[token: number, entries: number, blob: Buffer]> {
    for (let t = 0; t < this.bufs.length; t++) {
      const buf = this.bufs[t]
      if (buf) yield [t, this.entries[t], buf.subarray(0, this.lens[t])]
    }
  }
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
