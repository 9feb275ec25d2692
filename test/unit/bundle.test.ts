import { cpSync, mkdtempSync, readFileSync, rmSync, truncateSync, statSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { BundleError, loadBundle, type BundleErrorCode } from '../../main/bundle'
import { bytesToText } from '../../main/bundle/tokenizer'
import { editSafetensorsHeader, writeInt32Safetensors } from './helpers/safetensors-edit'

const TINY = 'test/fixtures/tiny'
const DEMO = 'resources/demo'
const tmpRoot = mkdtempSync(join(tmpdir(), 'ft-bundle-'))
afterAll(() => rmSync(tmpRoot, { recursive: true, force: true }))

let n = 0
/** A fresh copy of the tiny bundle, corrupted by `breakIt`. */
function brokenCopy(breakIt: (dir: string) => void): string {
  const dir = join(tmpRoot, `b${n++}`)
  cpSync(TINY, dir, { recursive: true })
  breakIt(dir)
  return dir
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- fixtures are edited as free-form JSON
function editJson(path: string, edit: (j: any) => void): void {
  const j = JSON.parse(readFileSync(path, 'utf-8'))
  edit(j)
  writeFileSync(path, JSON.stringify(j))
}

async function expectBundleError(dir: string, code: BundleErrorCode, ...fragments: string[]): Promise<BundleError> {
  const err = await loadBundle(dir).then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(BundleError)
  const be = err as BundleError
  expect(be.code, be.message).toBe(code)
  for (const f of fragments) expect(be.message).toContain(f)
  return be
}

describe('loadBundle: the tiny bundle', () => {
  it('loads with every tensor in the shape bundle.json implies', async () => {
    const b = await loadBundle(TINY)
    const cfg = JSON.parse(readFileSync(join(TINY, 'bundle.json'), 'utf-8'))
    expect(b.config.model.n_layers).toBe(cfg.model.n_layers)
    expect(b.hookPoint).toEqual({ layer: 1, hook: 'mlp.hook_post', width: cfg.model.d_mlp })
    expect(b.model.get('embed.W_E')!.dims).toEqual([cfg.model.d_vocab, cfg.model.d_model])
    expect(b.model.get('blocks.1.attn.W_Q')!.dims).toEqual([cfg.model.n_heads, cfg.model.d_model, cfg.model.d_head])
    expect(b.model.get('ln_final.w')!.data.length).toBe(cfg.model.d_model)
    expect(b.sae.W_enc.dims).toEqual([cfg.sae.d_in, cfg.sae.d_sae])
    expect(b.tokens.nSeq).toBe(cfg.dataset.n_seq)
    expect(b.tokens.data.length).toBe(cfg.dataset.n_seq * cfg.dataset.seq_len)
    expect(b.tokens.data[0]).toBe(cfg.dataset.bos_token_id)
    expect(b.hashes.files['model.safetensors']).toBe(cfg.provenance.files['model.safetensors'].sha256)
    expect(b.hashes.bundle).toMatch(/^[0-9a-f]{64}$/)
  })

  it('verifies the recorded sha256 of every file', async () => {
    const b = await loadBundle(TINY, { hashCacheDir: null })
    const again = await loadBundle(TINY)
    expect(b.hashes).toEqual(again.hashes)
    const dir = brokenCopy((d) => editJson(join(d, 'bundle.json'), (j) => (j.provenance.files['sae.safetensors'].sha256 = '0'.repeat(64))))
    const err = await loadBundle(dir).catch((e: BundleError) => e)
    expect((err as BundleError).code).toBe('hash-mismatch')
    expect((err as BundleError).file).toBe('sae.safetensors')
  })

  it('has another identity when the same files are read with another config', async () => {
    const b = await loadBundle(TINY)
    const dir = brokenCopy((d) => editJson(join(d, 'bundle.json'), (j) => (j.sae.hook_point = 'blocks.1.mlp.hook_pre')))
    const other = await loadBundle(dir)
    expect(other.hashes.files).toEqual(b.hashes.files)
    expect(other.hashes.bundle).not.toBe(b.hashes.bundle)
  })

  it('tokenizes the way the corpus was tokenized', async () => {
    const b = await loadBundle(TINY)
    const row = Array.from(b.tokens.data.subarray(0, b.tokens.seqLen))
    // Decoding the corpus's first row and encoding it again gives the same ids, BOS included.
    const text = row.slice(1).map((id) => b.tokenizer.tokenString(id)).join('')
    expect(b.tokenizer.encode(text)).toEqual(row)
    expect(b.tokenizer.tokenStrings()).toHaveLength(b.tokenizer.vocabSize)
    expect(b.tokenizer.tokenString(0)).toBe('<|endoftext|>')
  })
})

describe('token texts of byte-level tokens', () => {
  /** A token text back to its bytes: <0xNN> are raw bytes, everything else UTF-8. */
  function textBytes(s: string): number[] {
    const out: number[] = []
    for (const part of s.split(/(<0x[0-9A-F]{2}>)/)) {
      if (/^<0x[0-9A-F]{2}>$/.test(part)) out.push(parseInt(part.slice(3, 5), 16))
      else out.push(...new TextEncoder().encode(part))
    }
    return out
  }

  it('writes bytes that are not a whole UTF-8 character as <0xNN>, so the tokens of any text add up to its bytes', async () => {
    for (const dir of [TINY, ...(existsSync(join(DEMO, 'bundle.json')) ? [DEMO] : [])]) {
      const b = await loadBundle(dir)
      const text = 'naïve café — “quotes” 🙂 中文 ü\tend'
      const ids = b.tokenizer.encode(text).filter((id, i) => !(i === 0 && id === (b.config.dataset.bos_token_id ?? -1)))
      const strings = ids.map((id) => b.tokenizer.tokenString(id))
      expect(strings.join('')).not.toContain('\uFFFD')
      expect(textBytes(strings.join(''))).toEqual(Array.from(new TextEncoder().encode(text)))
      // Some token of this text splits a character (else the test shows nothing) ...
      expect(strings.some((t) => /<0x[0-9A-F]{2}>/.test(t))).toBe(true)
      // ... and no token text is left with U+FFFD.
      expect(b.tokenizer.tokenStrings().filter((t) => t.includes('\uFFFD'))).toEqual([])
    }
  })

  it('escapes exactly the invalid bytes', () => {
    const enc = (xs: number[]): Uint8Array => Uint8Array.from(xs)
    expect(bytesToText(enc([0x61, 0xe2, 0x80]))).toBe('a<0xE2><0x80>')
    expect(bytesToText(enc([0xe2, 0x80, 0x94, 0x62]))).toBe('—b')
    expect(bytesToText(enc([0xc0, 0xaf]))).toBe('<0xC0><0xAF>') // an overlong '/'
    expect(bytesToText(enc([0xed, 0xa0, 0x80]))).toBe('<0xED><0xA0><0x80>') // a UTF-16 surrogate
    expect(bytesToText(enc([0xf0, 0x9f, 0x99, 0x82]))).toBe('🙂')
    expect(bytesToText(enc([0xf0, 0x9f, 0x99]))).toBe('<0xF0><0x9F><0x99>')
  })
})

describe('loadBundle: broken bundles give one BundleError', () => {
  it('a missing folder or file', async () => {
    await expectBundleError(join(tmpRoot, 'nowhere'), 'not-found', 'bundle.json')
    await expectBundleError(brokenCopy((d) => rmSync(join(d, 'sae.safetensors'))), 'not-found', 'sae.safetensors')
  })

  it('bundle.json that is not JSON', async () => {
    await expectBundleError(brokenCopy((d) => writeFileSync(join(d, 'bundle.json'), '{"format": ')), 'bad-json', 'bundle.json')
  })

  it('bundle.json missing a field names the field', async () => {
    const dir = brokenCopy((d) => editJson(join(d, 'bundle.json'), (j) => delete j.model.eps))
    await expectBundleError(dir, 'bad-config', 'model.eps')
    const dir2 = brokenCopy((d) => editJson(join(d, 'bundle.json'), (j) => (j.model.act_fn = 'swish')))
    await expectBundleError(dir2, 'bad-config', 'model.act_fn')
  })

  it('a truncated safetensors file', async () => {
    const dir = brokenCopy((d) => {
      const f = join(d, 'model.safetensors')
      truncateSync(f, Math.floor(statSync(f).size / 2))
    })
    const e = await expectBundleError(dir, 'bad-safetensors', 'model.safetensors', 'truncated')
    expect(e.file).toBe('model.safetensors')
    expect(e.tensor).toBeDefined()
    await expectBundleError(brokenCopy((d) => truncateSync(join(d, 'sae.safetensors'), 5)), 'bad-safetensors', 'sae.safetensors')
    await expectBundleError(brokenCopy((d) => truncateSync(join(d, 'tokens.safetensors'), 20)), 'bad-safetensors', 'tokens.safetensors')
  })

  it('a tensor of the wrong shape names the tensor and the expected shape', async () => {
    const dir = brokenCopy((d) =>
      editSafetensorsHeader(join(d, 'model.safetensors'), (h) => {
        ;(h['blocks.0.attn.W_Q'] as { shape: number[] }).shape = [4, 8, 32]
      }),
    )
    const e = await expectBundleError(dir, 'bad-shape', 'model.safetensors', 'blocks.0.attn.W_Q', '[4, 32, 8]')
    expect(e.expected).toEqual([4, 32, 8])
  })

  it('a missing tensor', async () => {
    const dir = brokenCopy((d) => editSafetensorsHeader(join(d, 'model.safetensors'), (h) => delete h['blocks.1.mlp.W_in']))
    await expectBundleError(dir, 'missing-tensor', 'blocks.1.mlp.W_in', '[32, 128]')
    const dir2 = brokenCopy((d) => editSafetensorsHeader(join(d, 'sae.safetensors'), (h) => delete h['b_dec']))
    await expectBundleError(dir2, 'missing-tensor', 'sae.safetensors', 'b_dec', '[128]')
  })

  it('a dtype other than the config says', async () => {
    const dir = brokenCopy((d) => editJson(join(d, 'bundle.json'), (j) => (j.model.dtype = 'float16')))
    await expectBundleError(dir, 'bad-dtype', 'model.safetensors', 'F32', 'float16')
  })

  it('a tokenizer with more tokens than the model', async () => {
    const dir = brokenCopy((d) =>
      editJson(join(d, 'tokenizer.json'), (j) => j.added_tokens.push({ ...j.added_tokens[0], id: 400, content: '<|extra|>' })),
    )
    await expectBundleError(dir, 'vocab-mismatch', 'tokenizer.json', '401', '300')
  })

  it('a tokenizer.json the tokenizer library cannot load', async () => {
    const dir = brokenCopy((d) => editJson(join(d, 'tokenizer.json'), (j) => (j.pre_tokenizer = { type: 'NoSuchPreTokenizer' })))
    await expectBundleError(dir, 'bad-tokenizer', 'tokenizer.json')
    await expectBundleError(brokenCopy((d) => truncateSync(join(d, 'tokenizer.json'), 100)), 'bad-json', 'tokenizer.json')
  })

  it('an SAE whose d_in does not fit its hook point', async () => {
    const dir = brokenCopy((d) => editJson(join(d, 'bundle.json'), (j) => (j.sae.hook_point = 'blocks.1.hook_resid_mid')))
    await expectBundleError(dir, 'sae-mismatch', 'd_in is 128', 'width 32')
    const dir2 = brokenCopy((d) => editJson(join(d, 'bundle.json'), (j) => (j.sae.hook_point = 'blocks.5.mlp.hook_post')))
    await expectBundleError(dir2, 'sae-mismatch', 'layer 5')
  })

  it('token ids out of range, and sequences longer than n_ctx', async () => {
    const dir = brokenCopy((d) => {
      const data = new Int32Array(24 * 32)
      data[40] = 300
      writeInt32Safetensors(join(d, 'tokens.safetensors'), 'tokens', [24, 32], data)
    })
    await expectBundleError(dir, 'bad-tokens', 'token id 300', 'sequence 1, position 8')
    const dir2 = brokenCopy((d) => {
      editJson(join(d, 'bundle.json'), (j) => (j.dataset.seq_len = 40))
      writeInt32Safetensors(join(d, 'tokens.safetensors'), 'tokens', [24, 40], new Int32Array(24 * 40))
    })
    await expectBundleError(dir2, 'bad-tokens', 'n_ctx is 32')
  })
})

describe.runIf(existsSync(join(DEMO, 'bundle.json')))('loadBundle: the demo bundle', () => {
  it('loads (fp16 weights become float32)', async () => {
    const b = await loadBundle(DEMO)
    const cfg = JSON.parse(readFileSync(join(DEMO, 'bundle.json'), 'utf-8'))
    expect(b.sae.W_enc.dims).toEqual([cfg.sae.d_in, cfg.sae.d_sae])
    expect(b.sae.W_enc.data).toBeInstanceOf(Float32Array)
    expect(b.tokenizer.vocabSize).toBeLessThanOrEqual(cfg.model.d_vocab)
  })
})
