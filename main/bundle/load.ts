// Opens a bundle folder into a typed, fully validated Bundle. Everything is read and checked before the
// Bundle exists, so a caller holds either a complete bundle or one BundleError — never half of one.
import { createHash } from 'node:crypto'
import type { Stats } from 'node:fs'
import { constants as bufferConstants } from 'node:buffer'
import { join, resolve } from 'node:path'
import type { Tensor } from './tensor'
import { userCacheDir } from '../files/dirs'
import { readRegular, SafeReadError } from '../files/safe-io'
import { pathText } from '../../common/text'
import { BundleError, shapeText } from './errors'
import { HashCache } from './hash-cache'
import { parseSafetensors, toFloat32, toInt32, type RawTensor } from './safetensors'
import { expectedModelShapes, expectedSaeShapes, parseBundleConfig, parseHookPoint, type BundleConfig, type HookPoint } from './schema'
import { createTokenizer, type BundleTokenizer } from './tokenizer'

export const BUNDLE_FILES = ['model.safetensors', 'sae.safetensors', 'tokenizer.json', 'tokens.safetensors'] as const
type BundleFile = (typeof BUNDLE_FILES)[number]

export interface SaeWeights {
  W_enc: Tensor
  b_enc: Tensor
  W_dec: Tensor
  b_dec: Tensor
}

export interface BundleHashes {
  /** Identity of the whole bundle (configs and all four files): the key for anything derived from it. */
  bundle: string
  files: Record<BundleFile, string>
}

export interface Bundle {
  /** Absolute path of the folder. */
  dir: string
  config: BundleConfig
  hookPoint: HookPoint
  /** Model weights by TransformerLens name, as float32 whatever the stored dtype. */
  model: Map<string, Tensor>
  sae: SaeWeights
  /** The corpus, row-major [nSeq, seqLen]. */
  tokens: { data: Int32Array; nSeq: number; seqLen: number }
  tokenizer: BundleTokenizer
  hashes: BundleHashes
}

export interface LoadBundleOptions {
  /**
   * Where the sha256 of each file is remembered by size, mtime and inode, so a second open hashes nothing
   * (default: the user cache folder; null: hash every open).
   */
  hashCacheDir?: string | null
}

export const DEFAULT_BUNDLE_DIR = 'resources/demo'

/** Size caps checked (fstat) before a byte is read: the JSON files are small; weights may be as large as a Buffer. */
const MAX_BYTES: Record<'bundle.json' | BundleFile, number> = {
  'bundle.json': 4 << 20,
  'tokenizer.json': 512 << 20,
  'model.safetensors': bufferConstants.MAX_LENGTH,
  'sae.safetensors': bufferConstants.MAX_LENGTH,
  'tokens.safetensors': bufferConstants.MAX_LENGTH,
}

interface FileRead {
  bytes: Buffer
  stat: Stats
}

function readBundleFile(dir: string, file: keyof typeof MAX_BYTES): FileRead {
  try {
    return readRegular(join(dir, file), { maxBytes: MAX_BYTES[file], what: file })
  } catch (e) {
    if (!(e instanceof SafeReadError)) throw e
    const message = e.code === 'not_found' ? `${file} in ${pathText(dir)} does not exist` : e.message
    throw new BundleError(e.code === 'not_found' ? 'not-found' : 'unreadable', message, { file })
  }
}

function parseJson(bytes: Buffer, file: string): unknown {
  const text = bytes.toString('utf-8')
  try {
    return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text)
  } catch {
    // V8's message quotes the text: never pass a file's content on (it may be a link to anything).
    throw new BundleError('bad-json', `${file} is not valid JSON; re-export the bundle or fix the file`, { file })
  }
}

/** Refuses NaN and ±Infinity: they would load, build a cache of dead features and trace to NaN. */
function checkFinite(data: Float32Array, shape: readonly number[], file: string, name: string): void {
  for (let i = 0; i < data.length; i++) {
    const x = data[i]
    if (x - x === 0) continue // finite (NaN - NaN and Inf - Inf are NaN)
    const index: number[] = []
    let rest = i
    for (let d = shape.length - 1; d >= 0; d--) {
      index.unshift(rest % shape[d])
      rest = Math.floor(rest / shape[d])
    }
    const what = Number.isNaN(x) ? 'NaN' : x > 0 ? 'Infinity' : '-Infinity'
    throw new BundleError(
      'non-finite',
      `${file}: tensor ${name} holds ${what} at index ${shapeText(index)}; the weights are damaged (or come from a diverged run): re-export them`,
      { file, tensor: name },
    )
  }
}

const DTYPE_CODE = { float16: 'F16', float32: 'F32' } as const

/** Checks presence, dtype and shape of every expected tensor and converts them to float32. */
function checkedTensors(
  raw: Map<string, RawTensor>,
  expected: Map<string, number[]>,
  dtype: keyof typeof DTYPE_CODE,
  file: string,
  what: string,
): Map<string, Tensor> {
  const out = new Map<string, Tensor>()
  for (const [name, shape] of expected) {
    const t = raw.get(name)
    if (!t) {
      throw new BundleError('missing-tensor', `${file}: the ${what} lacks tensor ${name} (expected shape ${shapeText(shape)})`, { file, tensor: name, expected: shape })
    }
    if (t.dtype !== DTYPE_CODE[dtype]) {
      throw new BundleError('bad-dtype', `${file}: tensor ${name} is ${t.dtype} but bundle.json says ${dtype} (${DTYPE_CODE[dtype]})`, { file, tensor: name, expected: shape })
    }
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new BundleError('bad-shape', `${file}: tensor ${name} has shape ${shapeText(t.shape)}, expected ${shapeText(shape)}`, { file, tensor: name, expected: shape })
    }
    const data = toFloat32(t)
    checkFinite(data, shape, file, name)
    out.set(name, { dims: [...shape], data })
  }
  return out
}

function checkTokens(raw: Map<string, RawTensor>, config: BundleConfig): Bundle['tokens'] {
  const file = 'tokens.safetensors'
  const { n_seq: nSeq, seq_len: seqLen } = config.dataset
  const { n_ctx: nCtx, d_vocab: dVocab } = config.model
  const expected = [nSeq, seqLen]
  const t = raw.get('tokens')
  if (!t) throw new BundleError('missing-tensor', `${file} lacks tensor tokens (expected shape ${shapeText(expected)})`, { file, tensor: 'tokens', expected })
  if (t.dtype !== 'I32') throw new BundleError('bad-dtype', `${file}: tensor tokens is ${t.dtype}, expected I32`, { file, tensor: 'tokens', expected })
  if (t.shape.length !== 2 || t.shape[0] !== nSeq || t.shape[1] !== seqLen) {
    throw new BundleError('bad-shape', `${file}: tensor tokens has shape ${shapeText(t.shape)}, expected ${shapeText(expected)} (dataset.n_seq, dataset.seq_len)`, { file, tensor: 'tokens', expected })
  }
  if (seqLen > nCtx) {
    throw new BundleError('bad-tokens', `${file}: sequences are ${seqLen} tokens long but the model's n_ctx is ${nCtx}`, { file, tensor: 'tokens', expected: [nSeq, nCtx] })
  }
  const data = toInt32(t)
  for (let i = 0; i < data.length; i++) {
    const id = data[i]
    if (id < 0 || id >= dVocab) {
      const [s, p] = [Math.floor(i / seqLen), i % seqLen]
      throw new BundleError('bad-tokens', `${file}: token id ${id} at sequence ${s}, position ${p} lies outside [0, ${dVocab}) (d_vocab)`, { file, tensor: 'tokens' })
    }
  }
  return { data, nSeq, seqLen }
}

const sha256 = (bytes: Uint8Array | string): string => createHash('sha256').update(bytes).digest('hex')

/**
 * Every file's sha256, verified against bundle.json's provenance: the cache key and the labels' bundle
 * hash come from these, so changed weights can never reuse a cache built from the old ones.
 */
function bundleHashes(dir: string, config: BundleConfig, contents: Record<BundleFile, FileRead>, hashCache: HashCache): BundleHashes {
  const recorded = config.provenance.files
  const files = {} as Record<BundleFile, string>
  for (const file of BUNDLE_FILES) {
    const known = recorded[file]?.sha256?.toLowerCase()
    const actual = hashCache.sha256(join(dir, file), contents[file].stat, contents[file].bytes)
    if (known && known !== actual) {
      throw new BundleError(
        'hash-mismatch',
        `${file} has sha256 ${actual}, but bundle.json records ${known.slice(0, 64)}: the file was changed after the bundle was made; re-export the bundle (or correct provenance.files in bundle.json)`,
        { file },
      )
    }
    files[file] = actual
  }
  hashCache.save()
  // The configs are part of the identity: the same files read with another hook point or eps mean other numbers.
  const identity = JSON.stringify({ format: config.format, version: config.version, model: config.model, sae: config.sae, dataset: config.dataset, files })
  return { bundle: sha256(identity), files }
}

export async function loadBundle(dir: string = DEFAULT_BUNDLE_DIR, opts: LoadBundleOptions = {}): Promise<Bundle> {
  const abs = resolve(dir)
  const config = parseBundleConfig(parseJson(readBundleFile(abs, 'bundle.json').bytes, 'bundle.json'))
  const contents = Object.fromEntries(BUNDLE_FILES.map((f) => [f, readBundleFile(abs, f)])) as Record<BundleFile, FileRead>
  const [modelBytes, saeBytes, tokenizerBytes, tokensBytes] = BUNDLE_FILES.map((f) => contents[f].bytes)

  const model = checkedTensors(parseSafetensors(modelBytes, 'model.safetensors'), expectedModelShapes(config.model), config.model.dtype, 'model.safetensors', 'model state dict')

  const hookPoint = parseHookPoint(config.model, config.sae.hook_point)
  if (config.sae.d_in !== hookPoint.width) {
    throw new BundleError(
      'sae-mismatch',
      `bundle.json: the SAE's d_in is ${config.sae.d_in} but ${config.sae.hook_point} has width ${hookPoint.width}: this SAE was trained on another hook or model`,
      { file: 'bundle.json', expected: [hookPoint.width] },
    )
  }
  const saeTensors = checkedTensors(parseSafetensors(saeBytes, 'sae.safetensors'), expectedSaeShapes(config.sae), config.sae.dtype, 'sae.safetensors', 'SAE')
  const sae = Object.fromEntries(saeTensors) as unknown as SaeWeights

  const bos = config.dataset.prepend_bos ? (config.dataset.bos_token_id ?? 0) : null
  if (bos !== null && bos >= config.model.d_vocab) {
    throw new BundleError('bad-config', `bundle.json: dataset.bos_token_id ${bos} lies outside [0, ${config.model.d_vocab}) (d_vocab)`, { file: 'bundle.json' })
  }
  const tokenizer = createTokenizer(parseJson(tokenizerBytes, 'tokenizer.json'), { bosTokenId: bos })
  if (tokenizer.vocabSize > config.model.d_vocab) {
    throw new BundleError(
      'vocab-mismatch',
      `tokenizer.json has ${tokenizer.vocabSize} tokens but the model's d_vocab is ${config.model.d_vocab}: they belong to different models`,
      { file: 'tokenizer.json', expected: [config.model.d_vocab] },
    )
  }
  const tokens = checkTokens(parseSafetensors(tokensBytes, 'tokens.safetensors'), config)
  const hashes = bundleHashes(abs, config, contents, new HashCache(opts.hashCacheDir === undefined ? userCacheDir() : opts.hashCacheDir))
  return { dir: abs, config, hookPoint, model, sae, tokens, tokenizer, hashes }
}
