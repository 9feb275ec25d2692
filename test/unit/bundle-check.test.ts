// loadBundle's 'check' mode (what main opens: the weights read in pieces, checked and hashed, not kept)
// against the default: the same bundle, the same hashes, and the same refusals with the same messages.
import { createHash } from 'node:crypto'
import { cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { BundleError, loadBundle } from '../../main/bundle'
import { firstNonFinite } from '../../main/bundle/safetensors'
import { editSafetensorsHeader, pokeF32 } from './helpers/safetensors-edit'

const TINY = 'test/fixtures/tiny'

const errorOf = (p: Promise<unknown>): Promise<BundleError> =>
  p.then(
    () => {
      throw new Error('loaded')
    },
    (e: unknown) => e as BundleError,
  )

/** Writes `value` into element `index` of an F32 tensor of `file` in a copy of the tiny bundle. */
function poked(file: string, tensor: string, index: number, value: number): string {
  const d = join(mkdtempSync(join(tmpdir(), 'ft-check-')), 'b')
  cpSync(TINY, d, { recursive: true })
  pokeF32(join(d, file), tensor, index, value)
  return d
}

describe("loadBundle({ weights: 'check' })", () => {
  it.each([TINY, 'resources/demo'].filter((d) => existsSync(join(d, 'bundle.json'))))('opens %s as the full load does, without the weights', async (dir) => {
    const full = await loadBundle(dir, { hashCacheDir: null })
    const meta = await loadBundle(dir, { hashCacheDir: null, weights: 'check' })
    expect('model' in meta || 'sae' in meta).toBe(false)
    expect(meta.hashes).toEqual(full.hashes)
    expect(meta.config).toEqual(full.config)
    expect(meta.hookPoint).toEqual(full.hookPoint)
    expect(Array.from(meta.tokens.data)).toEqual(Array.from(full.tokens.data))
    expect(meta.tokenizer.vocabSize).toBe(full.tokenizer.vocabSize)
  })

  it.each([
    ['model.safetensors', 'embed.W_E', 33, NaN],
    ['model.safetensors', 'blocks.1.mlp.W_in', 5, Infinity],
    ['sae.safetensors', 'W_enc', 64 * 3 + 2, -Infinity],
    ['sae.safetensors', 'W_dec', 0, NaN],
  ])('refuses a non-finite weight in %s %s with the full load\'s error', async (file, tensor, index, value) => {
    const d = poked(file, tensor, index, value)
    const full = await errorOf(loadBundle(d, { hashCacheDir: null }))
    const checked = await errorOf(loadBundle(d, { hashCacheDir: null, weights: 'check' }))
    expect(full.code).toBe('non-finite')
    expect({ code: checked.code, message: checked.message, file: checked.file, tensor: checked.tensor }).toEqual({ code: full.code, message: full.message, file: full.file, tensor: full.tensor })
  })

  it('keeps the values unchecked with checkValues: false (the compute process: main checked them), and nothing else', async () => {
    const d = poked('model.safetensors', 'embed.W_E', 33, NaN)
    // With the poked file's hash recorded in bundle.json, the NaN is the only thing wrong with this copy.
    const config = JSON.parse(readFileSync(join(d, 'bundle.json'), 'utf-8')) as { provenance: { files: Record<string, { sha256: string }> } }
    config.provenance.files['model.safetensors'].sha256 = createHash('sha256').update(readFileSync(join(d, 'model.safetensors'))).digest('hex')
    writeFileSync(join(d, 'bundle.json'), JSON.stringify(config))
    expect((await errorOf(loadBundle(d, { hashCacheDir: null }))).code).toBe('non-finite')
    const unchecked = await loadBundle(d, { hashCacheDir: null, checkValues: false })
    expect(unchecked.model.get('embed.W_E')!.data[33]).toBeNaN()
    // Shapes are still checked: a missing tensor is refused as before.
    const cut = poked('model.safetensors', 'embed.W_E', 0, 1)
    editSafetensorsHeader(join(cut, 'model.safetensors'), (h) => void delete h['unembed.W_U'])
    expect((await errorOf(loadBundle(cut, { hashCacheDir: null, checkValues: false }))).code).toBe('missing-tensor')
  })

  it('refuses changed weights by their hash, and a missing weights file, as the full load does', async () => {
    const changed = poked('model.safetensors', 'embed.W_E', 7, 0.125)
    for (const weights of ['keep', 'check'] as const) expect((await errorOf(loadBundle(changed, { hashCacheDir: null, weights }))).code).toBe('hash-mismatch')
    const d = join(mkdtempSync(join(tmpdir(), 'ft-check-')), 'b')
    cpSync(TINY, d, { recursive: true })
    writeFileSync(join(d, 'sae.safetensors'), Buffer.alloc(4))
    const full = await errorOf(loadBundle(d, { hashCacheDir: null }))
    const checked = await errorOf(loadBundle(d, { hashCacheDir: null, weights: 'check' }))
    expect(checked.code).toBe('bad-safetensors')
    expect(checked.message).toBe(full.message)
  })

  it('finds NaN and ±Infinity from the bits of every float dtype', () => {
    const f32 = new Float32Array([1, -2, 3, Infinity])
    expect(firstNonFinite(new Uint8Array(f32.buffer), 'F32')).toBe(3)
    expect(firstNonFinite(new Uint8Array(new Float32Array([0, 1]).buffer), 'F32')).toBe(-1)
    expect(firstNonFinite(new Uint8Array(new Uint16Array([0x3c00, 0x7e00]).buffer), 'F16')).toBe(1) // 1.0, NaN
    expect(firstNonFinite(new Uint8Array(new Uint16Array([0xff80, 0x3f80]).buffer), 'BF16')).toBe(0) // -Inf, 1.0
    expect(firstNonFinite(new Uint8Array(new Float64Array([0.5, -0, NaN]).buffer), 'F64')).toBe(2)
    expect(firstNonFinite(new Uint8Array(new Float64Array([1e300, -1e-300]).buffer), 'F64')).toBe(-1)
  })
})
