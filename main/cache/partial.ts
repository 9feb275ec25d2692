// Progressive builds: while a build runs, running per-feature numbers over the chunks committed so far
// (firings, sum, max, the TOP_K strongest firings), kept in the build's process and written now and then
// into the scratch table partial_feature in the same transaction as a chunk, so a reader sees one
// consistent prefix of the build. The feature views answer from it until the cache is finalized; finalize
// drops it. Only what one streaming pass can know exactly is kept: the top token, F1, histogram,
// intervals and quantiles need every firing and come with finalize.
import type Database from 'better-sqlite3'
import { blobOf, decodeChunk, type ChunkBlobs } from './encode'
import { TOP_K } from './stats'
import { writeMeta } from './schema'

/** Default time between two partial writes: each rewrites the features that fired since the last one. */
export const PARTIAL_EVERY_MS = 2000

/** One feature's numbers over the tokens a partial summary covers. */
export interface PartialFeature {
  id: number
  count: number
  max: number
  sum: number
  /** Global token indices and activations of the strongest firings, strongest first (ties: earlier token). */
  topTokens: Uint32Array
  topVals: Float32Array
}

/** A committed chunk as stored (the chunk table's blobs and index). */
export type StoredChunk = ChunkBlobs & { idx: number }

export class PartialSummary {
  readonly count: Float64Array
  readonly sum: Float64Array
  readonly max: Float32Array
  /** Per feature a min-heap of its k strongest firings so far (the weakest at the root), at f·k. */
  private readonly heapT: Uint32Array
  private readonly heapV: Float32Array
  private readonly size: Uint16Array
  /** Features that fired since the last write. */
  private readonly dirty: Uint8Array
  /** Tokens covered by what was added. */
  tokens = 0

  constructor(
    readonly dSae: number,
    readonly k = TOP_K,
  ) {
    this.count = new Float64Array(dSae)
    this.sum = new Float64Array(dSae)
    this.max = new Float32Array(dSae)
    this.heapT = new Uint32Array(dSae * k)
    this.heapV = new Float32Array(dSae * k)
    this.size = new Uint16Array(dSae)
    this.dirty = new Uint8Array(dSae)
  }

  /** Adds one chunk's CSR rows; `base` is the global token index of its first row. */
  add(base: number, rowPtr: Uint32Array, featureIds: ArrayLike<number>, values: Float32Array): void {
    const { count, sum, max, dirty, size, heapV, k } = this
    const nRows = rowPtr.length - 1
    for (let r = 0; r < nRows; r++) {
      const t = base + r
      for (let j = rowPtr[r]; j < rowPtr[r + 1]; j++) {
        const f = featureIds[j]
        const v = values[j]
        count[f]++
        sum[f] += v
        if (v > max[f]) max[f] = v
        dirty[f] = 1
        // Most firings of a busy feature are weaker than its k-th strongest: one comparison rejects them.
        if (size[f] === k) {
          const root = heapV[f * k]
          if (v < root || (v === root && t > this.heapT[f * k])) continue
        }
        this.push(f, t, v)
      }
    }
    this.tokens += nRows
  }

  private push(f: number, t: number, v: number): void {
    const { heapT, heapV, size, k } = this
    const o = f * k
    if (size[f] < k) {
      let i = size[f]++
      heapT[o + i] = t
      heapV[o + i] = v
      while (i > 0) {
        const p = (i - 1) >> 1
        if (!weaker(heapV, heapT, o + i, o + p)) break
        swap(heapV, heapT, o + i, o + p)
        i = p
      }
      return
    }
    heapT[o] = t
    heapV[o] = v
    siftDown(heapV, heapT, o, size[f], 0)
  }

  /** Adds committed chunks (a resumed build's), decoded from their stored blobs. */
  addStored(rows: Iterable<StoredChunk>, chunkTokens: number, wideIds: boolean): void {
    for (const row of rows) {
      const c = decodeChunk(row, wideIds)
      this.add(row.idx * chunkTokens, c.rowPtr, c.featureIds, c.values)
    }
  }

  feature(f: number): PartialFeature {
    const o = f * this.k
    let n = this.size[f]
    // Heap sort of a copy: popping the weakest fills the arrays from the back, so the strongest come first.
    const v = this.heapV.slice(o, o + n)
    const t = this.heapT.slice(o, o + n)
    const topTokens = new Uint32Array(n)
    const topVals = new Float32Array(n)
    while (n > 0) {
      topTokens[n - 1] = t[0]
      topVals[n - 1] = v[0]
      n--
      v[0] = v[n]
      t[0] = t[n]
      siftDown(v, t, 0, n, 0)
    }
    return { id: f, count: this.count[f], max: this.max[f], sum: this.sum[f], topTokens, topVals }
  }

  /**
   * Writes the features that fired since the last write (all of them with `all`) and the tokens covered;
   * call it inside the transaction that commits the last chunk added, so the table and the chunks agree.
   */
  write(db: Database.Database, all = false): void {
    if (all) db.exec('DELETE FROM partial_feature')
    const put = db.prepare('INSERT OR REPLACE INTO partial_feature (id, count, max, sum, top_tokens, top_vals) VALUES (?, ?, ?, ?, ?, ?)')
    for (let f = 0; f < this.dSae; f++) {
      if (!this.dirty[f] && !(all && this.count[f] > 0)) continue
      this.dirty[f] = 0
      const p = this.feature(f)
      put.run(f, p.count, p.max, p.sum, blobOf(p.topTokens), blobOf(p.topVals))
    }
    writeMeta(db, { partial_tokens: String(this.tokens) })
  }
}

// The heaps' helpers, on (values, tokens) arrays at absolute indices: module functions rather than closures
// made per firing (a closure per call cost more than the rest of add()).

/** Is the entry at a weaker than the one at b: a lower value, or the same value at a later token? */
function weaker(v: Float32Array, t: Uint32Array, a: number, b: number): boolean {
  return v[a] < v[b] || (v[a] === v[b] && t[a] > t[b])
}

function swap(v: Float32Array, t: Uint32Array, a: number, b: number): void {
  const tv = v[a]
  v[a] = v[b]
  v[b] = tv
  const tt = t[a]
  t[a] = t[b]
  t[b] = tt
}

/** Restores the min-heap of n entries at offset o after its entry i (relative) became larger. */
function siftDown(v: Float32Array, t: Uint32Array, o: number, n: number, i: number): void {
  for (;;) {
    const l = 2 * i + 1
    const r = l + 1
    let w = i
    if (l < n && weaker(v, t, o + l, o + w)) w = l
    if (r < n && weaker(v, t, o + r, o + w)) w = r
    if (w === i) return
    swap(v, t, o + i, o + w)
    i = w
  }
}
