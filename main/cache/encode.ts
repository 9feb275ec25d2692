// Byte layouts of what the cache stores as BLOBs. Everything is little-endian; the summary's values are
// exact fp32, the full table's are 16-bit fractions of the feature's exact maximum (encodeQuantised). A
// cache built twice, or resumed after a kill, holds the same bytes.

/** A feature's firings: ascending global token indices (sequence·seq_len + pos) and their activations. */
export interface FeatureActs {
  tokens: Uint32Array
  values: Float32Array
}

/** Writes `value` (a non-negative integer below 2³²) as a LEB128 varint at `at`; returns the next free offset. */
export function writeVarint(buf: Uint8Array, at: number, value: number): number {
  while (value >= 0x80) {
    buf[at++] = (value & 0x7f) | 0x80
    value >>>= 7
  }
  buf[at++] = value
  return at
}

/** Reads LEB128 varints (and whatever lies between them) from `bytes`, advancing `at`. */
export class VarintReader {
  constructor(
    readonly bytes: Uint8Array,
    public at = 0,
  ) {}

  varint(): number {
    let v = 0
    let shift = 0
    let b: number
    do {
      b = this.bytes[this.at++]
      v += (b & 0x7f) * 2 ** shift
      shift += 7
    } while (b & 0x80)
    return v
  }
}

/** Token indices as LEB128 varints of the gap to the previous index (the first gap is from 0). */
export function encodeTokenDeltas(tokens: Uint32Array): Buffer {
  const out = Buffer.allocUnsafe(tokens.length * 5)
  let n = 0
  let prev = 0
  for (let i = 0; i < tokens.length; i++) {
    n = writeVarint(out, n, tokens[i] - prev)
    prev = tokens[i]
  }
  return out.subarray(0, n)
}

export function decodeTokenDeltas(bytes: Uint8Array, count: number): Uint32Array {
  const tokens = new Uint32Array(count)
  const r = new VarintReader(bytes)
  let prev = 0
  for (let i = 0; i < count; i++) {
    prev += r.varint()
    tokens[i] = prev
  }
  if (r.at !== bytes.length) throw new Error(`token delta blob: ${bytes.length - r.at} trailing bytes after ${count} entries`)
  return tokens
}

/** The raw bytes of a typed array (a copy-free view when possible). */
export function bytesOf(a: Uint32Array | Float32Array | Int32Array | Uint16Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength)
}

/** A copy of a typed array's raw bytes, for a BLOB: the array may be a view into a buffer that is reused. */
export function blobOf(a: Uint32Array | Float32Array | Int32Array | Uint16Array): Buffer {
  return Buffer.from(bytesOf(a))
}

interface TypedArrayType<A> {
  readonly BYTES_PER_ELEMENT: number
  new (buffer: ArrayBufferLike, byteOffset?: number, length?: number): A
}

/** SQLite hands back Buffers at arbitrary offsets; typed-array views need alignment, so copy if needed. */
function viewOf<A>(bytes: Uint8Array, T: TypedArrayType<A>): A {
  const n = T.BYTES_PER_ELEMENT
  if (bytes.byteOffset % n === 0) return new T(bytes.buffer, bytes.byteOffset, bytes.byteLength / n)
  return new T(new Uint8Array(bytes).buffer)
}

export const float32Of = (bytes: Uint8Array): Float32Array => viewOf(bytes, Float32Array)
export const uint32Of = (bytes: Uint8Array): Uint32Array => viewOf(bytes, Uint32Array)
export const uint16Of = (bytes: Uint8Array): Uint16Array => viewOf(bytes, Uint16Array)

/**
 * A chunk's SAE output as the engine returned it (CSR, token-major). Feature ids are stored as uint16
 * when d_sae allows, which halves the scratch space for the usual ≤ 65,536-feature SAEs.
 */
export interface ChunkBlobs {
  rowPtr: Buffer
  featureIds: Buffer
  values: Buffer
}

export function encodeChunk(
  rowPtr: Uint32Array,
  featureIds: Uint32Array,
  values: Float32Array,
  wideIds: boolean,
): ChunkBlobs {
  const ids = wideIds ? featureIds : Uint16Array.from(featureIds)
  return { rowPtr: blobOf(rowPtr), featureIds: blobOf(ids), values: blobOf(values) }
}

export interface DecodedChunk {
  rowPtr: Uint32Array
  featureIds: Uint32Array | Uint16Array
  values: Float32Array
}

export function decodeChunk(blobs: ChunkBlobs, wideIds: boolean): DecodedChunk {
  return {
    rowPtr: uint32Of(blobs.rowPtr),
    featureIds: wideIds ? uint32Of(blobs.featureIds) : uint16Of(blobs.featureIds),
    values: float32Of(blobs.values),
  }
}

/** The largest 16-bit code: a value equal to the feature's maximum. */
const Q_MAX = 0xffff

/**
 * The full table's values as uint16 fractions of the feature's maximum, which the feature row keeps exactly:
 * 2 bytes a value instead of 4, at most max/131,070 off (an activation of 4 is kept to ±0.00003), and the
 * maximum itself exact. With the varint gaps that makes ~3.3 bytes a firing on the demo (was 5.4).
 */
export function encodeQuantised(values: Float32Array, max: number): Buffer {
  const q = new Uint16Array(values.length)
  if (max > 0) for (let i = 0; i < values.length; i++) q[i] = Math.round((values[i] / max) * Q_MAX)
  return blobOf(q)
}

export function decodeQuantised(bytes: Uint8Array, max: number): Float32Array {
  const q = uint16Of(bytes)
  return Float32Array.from(q, (v) => (v === Q_MAX ? max : (v / Q_MAX) * max))
}

/**
 * One feature's stored activations: `max` given, the values are 16-bit (encodeQuantised); without it,
 * fp32 (caches written before the full table was quantised).
 */
export function decodeFeatureActs(tokenDeltas: Uint8Array, values: Uint8Array, max?: number): FeatureActs {
  const vals = max === undefined ? float32Of(values) : decodeQuantised(values, max)
  return { tokens: decodeTokenDeltas(tokenDeltas, vals.length), values: vals }
}

/** Interval bins as two blobs: the firings per bin (u32 each) and the examples' (token u32, value f32). */
export function encodeIntervals(bins: { count: number; examples: [number, number][] }[]): { counts: Buffer; examples: Buffer } {
  const counts = Buffer.allocUnsafe(bins.length * 4)
  let n = 0
  for (let b = 0; b < bins.length; b++) {
    counts.writeUInt32LE(bins[b].count, 4 * b)
    n += bins[b].examples.length
  }
  // Every byte is written below.
  const examples = Buffer.allocUnsafe(n * 8)
  const view = new DataView(examples.buffer, examples.byteOffset, examples.byteLength)
  let at = 0
  for (const b of bins) {
    for (const [token, value] of b.examples) {
      view.setUint32(at, token, true)
      view.setFloat32(at + 4, value, true)
      at += 8
    }
  }
  return { counts, examples }
}

/** Quantile groups as three blobs: (lo, hi) f32 pairs, firings per group (u32), examples (token u32, value f32). */
export function encodeQuantiles(groups: { lo: number; hi: number; count: number; examples: [number, number][] }[]): { bounds: Buffer; counts: Buffer; examples: Buffer } {
  const bounds = new Float32Array(2 * groups.length)
  for (let g = 0; g < groups.length; g++) {
    bounds[2 * g] = groups[g].lo
    bounds[2 * g + 1] = groups[g].hi
  }
  const { counts, examples } = encodeIntervals(groups)
  return { bounds: blobOf(bounds), counts, examples }
}

export function decodeQuantiles(bounds: Uint8Array, counts: Uint8Array, examples: Uint8Array, perGroup: number): { lo: number; hi: number; count: number; examples: [number, number][] }[] {
  const b = float32Of(bounds)
  return decodeIntervals(counts, examples, perGroup).map((g, i) => ({ lo: b[2 * i], hi: b[2 * i + 1], ...g }))
}

/** Inverse of encodeIntervals; each bin held min(perBin, count) examples. */
export function decodeIntervals(counts: Uint8Array, examples: Uint8Array, perBin: number): { count: number; examples: [number, number][] }[] {
  const c = uint32Of(counts)
  const view = new DataView(examples.buffer, examples.byteOffset, examples.byteLength)
  let at = 0
  return Array.from(c, (count) => {
    const ex: [number, number][] = []
    for (let e = 0; e < Math.min(perBin, count); e++, at += 8) ex.push([view.getUint32(at, true), view.getFloat32(at + 4, true)])
    return { count, examples: ex }
  })
}
