// Reads the PyTorch goldens of tools/golden.py (test/fixtures/golden/<bundle>/) and compares arrays.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseSafetensors, toFloat32, toInt32 } from '../../../main/bundle'

export interface GoldenPoint {
  key: string
  feature: number
  sample: number
  pos: number
  token: number
  activation: number
  pre_activation: number
  positions: number[]
}

export interface Golden {
  hookPoint: string
  layer: number
  points: GoldenPoint[]
  f32(name: string): { dims: number[]; data: Float32Array }
  i32(name: string): { dims: number[]; data: Int32Array }
}

export function readGolden(dir: string): Golden {
  const meta = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf-8'))
  const raw = parseSafetensors(readFileSync(join(dir, 'golden.safetensors')), 'golden.safetensors')
  const get = (name: string) => {
    const t = raw.get(name)
    if (!t) throw new Error(`golden lacks ${name}`)
    return t
  }
  return {
    hookPoint: meta.hook_point,
    layer: meta.layer,
    points: meta.points,
    f32: (name) => ({ dims: get(name).shape, data: toFloat32(get(name)) }),
    i32: (name) => ({ dims: get(name).shape, data: toInt32(get(name)) }),
  }
}

/** max|actual − expected| / max|expected|: the error relative to the array's own scale. */
export function relErr(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} ≠ ${expected.length}`)
  let diff = 0
  let scale = 0
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]))
    scale = Math.max(scale, Math.abs(expected[i]))
  }
  return diff / Math.max(scale, 1e-30)
}
