// Rewrites a safetensors file's header for the broken-bundle fixtures, leaving the data bytes alone.
import { readFileSync, writeFileSync } from 'node:fs'

type Header = Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>

export function editSafetensorsHeader(path: string, edit: (header: Header) => void): void {
  const buf = readFileSync(path)
  const len = Number(buf.readBigUInt64LE(0))
  const header = JSON.parse(buf.subarray(8, 8 + len).toString('utf-8')) as Header
  edit(header)
  const json = Buffer.from(JSON.stringify(header), 'utf-8')
  const lenBuf = Buffer.alloc(8)
  lenBuf.writeBigUInt64LE(BigInt(json.length))
  writeFileSync(path, Buffer.concat([lenBuf, json, buf.subarray(8 + len)]))
}

/** Writes a safetensors file holding one int32 tensor. */
export function writeInt32Safetensors(path: string, name: string, shape: number[], data: Int32Array): void {
  const json = Buffer.from(JSON.stringify({ [name]: { dtype: 'I32', shape, data_offsets: [0, data.byteLength] } }), 'utf-8')
  const lenBuf = Buffer.alloc(8)
  lenBuf.writeBigUInt64LE(BigInt(json.length))
  writeFileSync(path, Buffer.concat([lenBuf, json, Buffer.from(data.buffer, data.byteOffset, data.byteLength)]))
}

/** Writes `value` into element `index` (flat) of an F32 tensor of the safetensors file at `path`, in place. */
export function pokeF32(path: string, tensor: string, index: number, value: number): void {
  const buf = readFileSync(path)
  const len = Number(buf.readBigUInt64LE(0))
  const header = JSON.parse(buf.subarray(8, 8 + len).toString()) as Record<string, { data_offsets: [number, number] }>
  buf.writeFloatLE(value, 8 + len + header[tensor].data_offsets[0] + 4 * index)
  writeFileSync(path, buf)
}
