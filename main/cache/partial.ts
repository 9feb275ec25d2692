// Progressive builds: while a build runs, running per-feature numbers over the chunks committed so far
// (firings, sum, max, the TOP_K strongest firings), kept in the build's process and written now and then
// into the scratch tables partial_feature and partial_top in the same transaction as a chunk, so a reader
// sees one consistent prefix of the build. The feature views answer from them until the cache is
// finalized; finalize drops them. Only what one streaming pass can know exactly is kept: the top token,
// F1, histogram, intervals and quantiles need every firing and come with finalize.
//
// What it costs the build (issue 13 §3: at most 5 % of its throughput) is add() per firing and write()
// every few seconds, so both are kept to what changed: a firing touches one cache line unless it enters
// its feature's top k, and a write rewrites the numbers of the features that fired since the last one and
// the strongest firings only of those whose top k changed (few, once the heaps are full).
import type Database from 'better-sqlite3'
import { bytesOf, decodeChunk, type ChunkBlobs } from './encode'
import { TOP_K } from './stats'
import { PARTIAL_DDL, PARTIAL_TABLES, writeMeta } from './schema'

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

/** PartialSummary.stats' layout: four numbers per feature. */
const STRIDE = 4
const COUNT = 0
const SUM = 1
const MAX = 2
const BAR = 3

export class PartialSummary {
  /**
   * Per feature f at STRIDE·f: its firings, their sum, their max, and the bar a firing must clear to enter
   * its top k (the weakest of them once it holds k, −∞ before). Side by side so that a firing touches one
   * cache line: most firings only bump these and fail the bar, and with the numbers in arrays of their own
   * (and the heap's root in the heaps' megabytes) each firing was several cache misses.
   */
  private readonly stats: Float64Array
  /** Firings of each feature at the last write: one that fired since differs. */
  private readonly written: Float64Array
  /**
   * Per feature at f·k its strongest firings so far: in arrival order until there are k of them (appending
   * is all a firing then costs), a min-heap from then on (the weakest at the root).
   */
  private readonly heapT: Uint32Array
  private readonly heapV: Float32Array
  private readonly size: Uint16Array
  /** Features whose strongest firings changed since the last write. */
  private readonly topDirty: Uint8Array
  /** Tokens covered by what was added. */
  tokens = 0

  constructor(
    readonly dSae: number,
    readonly k = TOP_K,
  ) {
    this.stats = new Float64Array(dSae * STRIDE)
    for (let f = 0; f < dSae; f++) this.stats[f * STRIDE + BAR] = -Infinity
    this.written = new Float64Array(dSae)
    this.heapT = new Uint32Array(dSae * k)
    this.heapV = new Float32Array(dSae * k)
    this.size = new Uint16Array(dSae)
    this.topDirty = new Uint8Array(dSae)
  }

  /** Adds one chunk's CSR rows; `base` is the global token index of its first row. */
  add(base: number, rowPtr: Uint32Array, featureIds: ArrayLike<number>, values: Float32Array): void {
    const { stats } = this
    const nRows = rowPtr.length - 1
    for (let r = 0; r < nRows; r++) {
      const t = base + r
      for (let j = rowPtr[r]; j < rowPtr[r + 1]; j++) {
        const f = featureIds[j]
        const o = f * STRIDE
        const v = values[j]
        stats[o + COUNT]++
        stats[o + SUM] += v
        if (v > stats[o + MAX]) stats[o + MAX] = v
        // Most firings of a busy feature are weaker than its k-th strongest: one comparison rejects them.
        // A tie with the bar goes to the earlier token, which needs the root's token (rare).
        const bar = stats[o + BAR]
        if (v < bar || (v === bar && !this.beatsRoot(f, t))) continue
        this.push(f, t, v)
      }
    }
    this.tokens += nRows
  }

  /** Does a firing at token t, as strong as feature f's bar, enter its top k: room left, or an earlier token than the root's? */
  private beatsRoot(f: number, t: number): boolean {
    return this.size[f] < this.k || t < this.heapT[f * this.k]
  }

  private push(f: number, t: number, v: number): void {
    const { heapT, heapV, size, k } = this
    const o = f * k
    this.topDirty[f] = 1
    const n = size[f]
    if (n < k) {
      heapT[o + n] = t
      heapV[o + n] = v
      size[f] = n + 1
      if (n + 1 < k) return
      heapify(heapV, heapT, o, k)
    } else {
      heapT[o] = t
      heapV[o] = v
      siftDown(heapV, heapT, o, k, 0)
    }
    this.stats[f * STRIDE + BAR] = heapV[o]
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
    heapify(v, t, 0, n)
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
    const s = f * STRIDE
    return { id: f, count: this.stats[s + COUNT], max: this.stats[s + MAX], sum: this.stats[s + SUM], topTokens, topVals }
  }

  /**
   * Writes the numbers of the features that fired since the last write, the strongest firings of those
   * whose top k changed (in no order: the reader sorts them), and the tokens covered; with `all`, the
   * tables anew with every feature that fired. Call it inside the transaction that commits the last chunk
   * added, so the tables and the chunks agree.
   */
  write(db: Database.Database, all = false): void {
    if (all) {
      // Recreated rather than emptied: a file a build of an older version left holds them in another layout.
      for (const t of PARTIAL_TABLES) db.exec(`DROP TABLE IF EXISTS ${t}`)
      db.exec(PARTIAL_DDL)
    }
    const putStats = db.prepare('INSERT OR REPLACE INTO partial_feature (id, count, max, sum) VALUES (?, ?, ?, ?)')
    const putTop = db.prepare('INSERT OR REPLACE INTO partial_top (id, top_tokens, top_vals) VALUES (?, ?, ?)')
    const { stats, written, topDirty, heapT, heapV, size, k } = this
    for (let f = 0; f < this.dSae; f++) {
      const s = f * STRIDE
      const count = stats[s + COUNT]
      if (count === written[f] && !(all && count > 0)) continue
      written[f] = count
      putStats.run(f, count, stats[s + MAX], stats[s + SUM])
      if (!topDirty[f] && !all) continue
      topDirty[f] = 0
      const o = f * k
      putTop.run(f, bytesOf(heapT.subarray(o, o + size[f])), bytesOf(heapV.subarray(o, o + size[f])))
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

/** Makes the n entries at offset o a min-heap (Floyd: sift down every parent, the last first). */
function heapify(v: Float32Array, t: Uint32Array, o: number, n: number): void {
  for (let i = (n >> 1) - 1; i >= 0; i--) siftDown(v, t, o, n, i)
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
