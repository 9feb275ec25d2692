// A hand-written safetensors reader: the format is an 8-byte little-endian header length, a JSON header
// and raw little-endian data, which is simpler to validate completely here than through a dependency.
// Every structural problem becomes a BundleError naming the file (and tensor), never a RangeError.
import { BundleError, shapeText } from './errors'

const DTYPE_BYTES: Record<string, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E4M3: 1, F8_E5M2: 1,
  I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4,
  I64: 8, U64: 8, F64: 8,
}

export interface RawTensor {
  dtype: string
  shape: number[]
  /** A view into the file's buffer; converted (and so copied) only on demand. */
  bytes: Uint8Array
}

/** A tensor as the header describes it: its bytes are [begin, end) of the data, after `dataStart`. */
export interface TensorEntry {
  dtype: string
  shape: number[]
  begin: number
  end: number
}

export interface SafetensorsHeader {
  /** Where the data starts in the file: 8 + the header's length. */
  dataStart: number
  tensors: Map<string, TensorEntry>
}

/** Headers are small; a huge one means a corrupt length field, and parsing it would only waste memory. */
const MAX_HEADER_BYTES = 100 * 1024 * 1024

/** Bytes per element of a dtype (undefined for one safetensors does not define). */
export const dtypeBytes = (dtype: string): number | undefined => DTYPE_BYTES[dtype]

/** The header's length as the first 8 bytes give it, checked against the file's size. */
export function headerLength(first8: Uint8Array, fileBytes: number, file: string): number {
  const fail = (message: string): never => {
    throw new BundleError('bad-safetensors', `${file}: ${message}`, { file })
  }
  if (fileBytes < 8 || first8.byteLength < 8) fail(`the file is ${fileBytes} bytes long, too short for a safetensors header`)
  const headerLen = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true)
  if (headerLen > BigInt(Math.min(MAX_HEADER_BYTES, fileBytes - 8))) {
    fail(`the header claims ${headerLen} bytes but the file holds ${fileBytes - 8} after the length field (truncated or not safetensors)`)
  }
  return Number(headerLen)
}

/**
 * The header of a safetensors file of `fileBytes` bytes, from its first bytes (`head` holds at least the
 * length field and the header), every entry checked against the data that follows.
 */
export function parseSafetensorsHeader(head: Uint8Array, fileBytes: number, file: string): SafetensorsHeader {
  const fail = (message: string, tensor?: string): never => {
    throw new BundleError('bad-safetensors', `${file}: ${message}`, { file, tensor })
  }
  const dataStart = 8 + headerLength(head, fileBytes, file)
  let header: unknown
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(head.subarray(8, dataStart)))
  } catch (e) {
    fail(`the header is not valid JSON (${(e as Error).message})`)
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('the header is not a JSON object')

  const dataLen = fileBytes - dataStart
  const tensors = new Map<string, TensorEntry>()
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') continue
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown }
    if (typeof e !== 'object' || e === null) fail(`the header entry of ${name} is not an object`, name)
    const itemBytes = typeof e.dtype === 'string' ? DTYPE_BYTES[e.dtype] : undefined
    if (itemBytes === undefined) fail(`tensor ${name} has unknown dtype ${JSON.stringify(e.dtype)}`, name)
    const shape = e.shape
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`tensor ${name} has an invalid shape ${JSON.stringify(shape)}`, name)
    }
    const offsets = e.data_offsets
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]) {
      fail(`tensor ${name} has invalid data_offsets ${JSON.stringify(offsets)}`, name)
    }
    const [begin, end] = offsets as [number, number]
    const dims = shape as number[]
    const want = dims.reduce((a, b) => a * b, 1) * itemBytes!
    if (end - begin !== want) {
      fail(`tensor ${name} (${e.dtype as string} ${shapeText(dims)}) needs ${want} bytes but its data_offsets span ${end - begin}`, name)
    }
    if (end > dataLen) {
      fail(`tensor ${name} ends at byte ${end} of the data but the file holds only ${dataLen} data bytes (truncated)`, name)
    }
    tensors.set(name, { dtype: e.dtype as string, shape: dims, begin, end })
  }
  return { dataStart, tensors }
}

export function parseSafetensors(buf: Uint8Array, file: string): Map<string, RawTensor> {
  const { dataStart, tensors } = parseSafetensorsHeader(buf, buf.byteLength, file)
  const raw = new Map<string, RawTensor>()
  for (const [name, t] of tensors) raw.set(name, { dtype: t.dtype, shape: t.shape, bytes: buf.subarray(dataStart + t.begin, dataStart + t.end) })
  return raw
}

/**
 * The index of the first NaN or ±Infinity among float elements of `dtype` held in `bytes` (little-endian,
 * a whole number of elements), or -1: read from the exponent bits, so nothing is converted.
 */
export function firstNonFinite(bytes: Uint8Array, dtype: string): number {
  const size = DTYPE_BYTES[dtype]
  if (!['F32', 'F16', 'BF16', 'F64'].includes(dtype) || bytes.byteLength % size !== 0) return -1
  // Whole words as one typed array when aligned (a piece of our own buffer always is).
  const words =
    size === 2
      ? bytes.byteOffset % 2 === 0 ? new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2) : new Uint16Array(bytes.slice().buffer)
      : bytes.byteOffset % 4 === 0 ? new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4) : new Uint32Array(bytes.slice().buffer)
  // The exponent's bits, all ones for NaN and ±Infinity (F64: in the high word of each pair).
  const mask = { F32: 0x7f800000, F16: 0x7c00, BF16: 0x7f80, F64: 0x7ff00000 }[dtype as 'F32']
  const step = dtype === 'F64' ? 2 : 1
  for (let w = dtype === 'F64' ? 1 : 0; w < words.length; w += step) if ((words[w] & mask) === mask) return Math.floor(w / step)
  return -1
}

/** Element `i` of float `bytes` as a number (for messages: which non-finite value it is). */
export function floatAt(bytes: Uint8Array, dtype: string, i: number): number {
  const size = DTYPE_BYTES[dtype]
  return toFloat32({ dtype, shape: [1], bytes: bytes.subarray(i * size, (i + 1) * size) })[0]
}

let f16Table: Float32Array | undefined

/** All 65536 half-precision values, so conversion is one table lookup per element (no Float16Array in Node 20). */
function halfToFloatTable(): Float32Array {
  if (f16Table) return f16Table
  const table = new Float32Array(65536)
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1
    const exp = (h >> 10) & 0x1f
    const frac = h & 0x3ff
    if (exp === 0) table[h] = sign * frac * 2 ** -24
    else if (exp === 31) table[h] = frac ? NaN : sign * Infinity
    else table[h] = sign * (1 + frac / 1024) * 2 ** (exp - 15)
  }
  f16Table = table
  return table
}

/** Copies into a fresh, aligned buffer: data offsets need not be 4-aligned, and an own buffer can be transferred. */
function aligned(bytes: Uint8Array): ArrayBuffer {
  const out = new ArrayBuffer(bytes.byteLength)
  new Uint8Array(out).set(bytes)
  return out
}

export function toFloat32(t: RawTensor): Float32Array {
  switch (t.dtype) {
    case 'F32':
      // Already float32: a view of the file's bytes when they are aligned (safetensors pads the header so
      // they are), never a second copy of the weights in memory.
      return t.bytes.byteOffset % 4 === 0 ? new Float32Array(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength / 4) : new Float32Array(aligned(t.bytes))
    case 'F16': {
      const table = halfToFloatTable()
      const half = new Uint16Array(aligned(t.bytes))
      const out = new Float32Array(half.length)
      for (let i = 0; i < half.length; i++) out[i] = table[half[i]]
      return out
    }
    case 'BF16': {
      const half = new Uint16Array(aligned(t.bytes))
      const bits = new Uint32Array(half.length)
      for (let i = 0; i < half.length; i++) bits[i] = half[i] << 16
      return new Float32Array(bits.buffer)
    }
    case 'F64':
      return Float32Array.from(new Float64Array(aligned(t.bytes)))
    default:
      throw new Error(`cannot convert ${t.dtype} to float32`)
  }
}

export function toInt32(t: RawTensor): Int32Array {
  if (t.dtype !== 'I32') throw new Error(`cannot read ${t.dtype} as int32`)
  return new Int32Array(aligned(t.bytes))
}
