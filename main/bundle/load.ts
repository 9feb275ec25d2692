// Opens a bundle folder into a typed, fully validated Bundle. Everything is read and checked before the
// Bundle exists, so a caller holds either a complete bundle or one BundleError — never half of one.
import { createHash } from 'node:crypto'
import type { Stats } from 'node:fs'
import { constants as bufferConstants } from 'node:buffer'
import { join, resolve } from 'node:path'
import type { Tensor } from './tensor'
import { userCacheDir } from '../files/dirs'
import { readRegular, SafeReadError, withRegular } from '../files/safe-io'
import { pathText } from '../../common/text'
import { BundleError, shapeText } from './errors'
import { HashCache } from './hash-cache'
import { dtypeBytes, firstNonFinite, floatAt, headerLength, parseSafetensors, parseSafetensorsHeader, toFloat32, toInt32, type RawTensor } from './safetensors'
import { expectedModelShapes, expectedSaeShapes, parseBundleConfig, parseHookPoint, type BundleConfig, type HookPoint } from './schema'
import { createTokenizer, type BundleTokenizer } from './tokenizer'

export const BUNDLE_FILES = ['model.safetensors', 'sae.safetensors', 'tokenizer.json', 'tokens.safetensors'] as const
type BundleFile = (typeof BUNDLE_FILES)[number]

export interface SaeWeights {
  W_enc: Tensor
  b_enc: Tensor
  W_dec: Tensor
  b_dec: Tensor
  /** JumpReLU SAEs only: the per-feature threshold [d_sae]. */
  threshold?: Tensor
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

/** A bundle without its weights: what a process that computes nothing needs (main; see `weights`). */
export type BundleMeta = Omit<Bundle, 'model' | 'sae'>

export interface LoadBundleOptions {
  /**
   * Where the sha256 of each file is remembered by size, mtime and inode, so a second open hashes nothing
   * (default: the user cache folder; null: hash every open).
   */
  hashCacheDir?: string | null
  /**
   * 'keep' (default): the weights as Float32Arrays. 'check': model.safetensors and sae.safetensors are read
   * in pieces, checked and hashed exactly as they would be, and not kept (a BundleMeta): the process that
   * only serves the page never holds the weights, the compute process does.
   */
  weights?: 'keep' | 'check'
  /**
   * false: kept weights are not checked for NaN/Inf (a pass over every value: 0.2–0.7 s for GPT-2 small's
   * 800 MB). For the compute process only: main checks every value when it opens the bundle, and a compute
   * process serves only a bundle that main has opened (one started with the opening is ended if it fails).
   * Default true.
   */
  checkValues?: boolean
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

/** A file read error as the bundle's error, naming the file. */
function asBundleError(e: unknown, dir: string, file: string): unknown {
  if (!(e instanceof SafeReadError)) return e
  const message = e.code === 'not_found' ? `${file} in ${pathText(dir)} does not exist` : e.message
  return new BundleError(e.code === 'not_found' ? 'not-found' : 'unreadable', message, { file })
}

function readBundleFile(dir: string, file: keyof typeof MAX_BYTES): FileRead {
  try {
    return readRegular(join(dir, file), { maxBytes: MAX_BYTES[file], what: file })
  } catch (e) {
    throw asBundleError(e, dir, file)
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

/** The error for a NaN or ±Infinity at flat index `i` of tensor `name`. */
function nonFinite(x: number, i: number, shape: readonly number[], file: string, name: string): BundleError {
  const index: number[] = []
  let rest = i
  for (let d = shape.length - 1; d >= 0; d--) {
    index.unshift(rest % shape[d])
    rest = Math.floor(rest / shape[d])
  }
  const what = Number.isNaN(x) ? 'NaN' : x > 0 ? 'Infinity' : '-Infinity'
  return new BundleError(
    'non-finite',
    `${file}: tensor ${name} holds ${what} at index ${shapeText(index)}; the weights are damaged (or come from a diverged run): re-export them`,
    { file, tensor: name },
  )
}

/** Refuses NaN and ±Infinity: they would load, build a cache of dead features and trace to NaN. */
function checkFinite(data: Float32Array, shape: readonly number[], file: string, name: string): void {
  for (let i = 0; i < data.length; i++) {
    const x = data[i]
    if (x - x !== 0) throw nonFinite(x, i, shape, file, name) // NaN - NaN and Inf - Inf are NaN
  }
}

const DTYPE_CODE = { float16: 'F16', float32: 'F32' } as const

/** Presence, dtype and shape of every expected tensor, as the header (or the parsed file) gives them. */
function checkEntries(
  entries: ReadonlyMap<string, { dtype: string; shape: number[] }>,
  expected: Map<string, number[]>,
  dtype: keyof typeof DTYPE_CODE,
  file: string,
  what: string,
): void {
  for (const [name, shape] of expected) {
    const t = entries.get(name)
    if (!t) {
      throw new BundleError('missing-tensor', `${file}: the ${what} lacks tensor ${name} (expected shape ${shapeText(shape)})`, { file, tensor: name, expected: shape })
    }
    if (t.dtype !== DTYPE_CODE[dtype]) {
      throw new BundleError('bad-dtype', `${file}: tensor ${name} is ${t.dtype} but bundle.json says ${dtype} (${DTYPE_CODE[dtype]})`, { file, tensor: name, expected: shape })
    }
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new BundleError('bad-shape', `${file}: tensor ${name} has shape ${shapeText(t.shape)}, expected ${shapeText(shape)}`, { file, tensor: name, expected: shape })
    }
  }
}

/** Checks presence, dtype and shape of every expected tensor and converts them to float32. */
function checkedTensors(
  raw: Map<string, RawTensor>,
  expected: Map<string, number[]>,
  dtype: keyof typeof DTYPE_CODE,
  file: string,
  what: string,
  checkValues: boolean,
): Map<string, Tensor> {
  checkEntries(raw, expected, dtype, file, what)
  const out = new Map<string, Tensor>()
  for (const [name, shape] of expected) {
    const data = toFloat32(raw.get(name)!)
    if (checkValues) checkFinite(data, shape, file, name)
    out.set(name, { dims: [...shape], data })
  }
  return out
}

/** Pieces a weights file is read in when it is only checked: 16 MiB, a whole number of any element. */
const PIECE_BYTES = 16 << 20

/**
 * A weights file checked as checkedTensors checks it, read in pieces and not kept: the header's tensors
 * against the config, then every expected tensor's values for NaN/Inf, and the file's sha256 (hashed as
 * it is read, unless the hash cache knows it).
 */
function checkWeightsFile(
  dir: string,
  file: 'model.safetensors' | 'sae.safetensors',
  expected: Map<string, number[]>,
  dtype: keyof typeof DTYPE_CODE,
  what: string,
  hashCache: HashCache,
): string {
  const path = join(dir, file)
  try {
    return withRegular(path, { maxBytes: MAX_BYTES[file], what: file }, (read, stat) => {
      const known = hashCache.known(path, stat)
      const hash = known ? null : createHash('sha256')
      const first8 = new Uint8Array(8)
      read(first8, 0)
      const head = new Uint8Array(8 + headerLength(first8, stat.size, file))
      read(head, 0)
      const { dataStart, tensors } = parseSafetensorsHeader(head, stat.size, file)
      checkEntries(tensors, expected, dtype, file, what)
      hash?.update(head)
      // In file order, so the hash sees every byte once; only the expected tensors' values are checked.
      const piece = new Uint8Array(PIECE_BYTES)
      let at = head.byteLength
      const readTo = (end: number, check?: { name: string; dtype: string; shape: number[]; begin: number }): void => {
        while (at < end) {
          const bytes = piece.subarray(0, Math.min(PIECE_BYTES, end - at))
          if (read(bytes, at) !== bytes.byteLength) throw new BundleError('bad-safetensors', `${file}: the file ended while it was read; it changed meanwhile`, { file })
          hash?.update(bytes)
          if (check) {
            const size = dtypeBytes(check.dtype)!
            const i = firstNonFinite(bytes, check.dtype)
            if (i >= 0) throw nonFinite(floatAt(bytes, check.dtype, i), (at - check.begin) / size + i, check.shape, file, check.name)
          }
          at += bytes.byteLength
        }
      }
      const order = [...tensors].sort((a, b) => a[1].begin - b[1].begin)
      for (const [name, t] of order) {
        readTo(dataStart + t.begin)
        readTo(dataStart + t.end, expected.has(name) ? { name, dtype: t.dtype, shape: t.shape, begin: dataStart + t.begin } : undefined)
      }
      readTo(stat.size)
      if (known) return known
      const sha256 = hash!.digest('hex')
      hashCache.remember(path, stat, sha256)
      return sha256
    })
  } catch (e) {
    throw asBundleError(e, dir, file)
  }
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
function bundleHashes(config: BundleConfig, actual: Record<BundleFile, string>, hashCache: HashCache): BundleHashes {
  const recorded = config.provenance.files
  for (const file of BUNDLE_FILES) {
    const known = recorded[file]?.sha256?.toLowerCase()
    if (known && known !== actual[file]) {
      throw new BundleError(
        'hash-mismatch',
        `${file} has sha256 ${actual[file]}, but bundle.json records ${known.slice(0, 64)}: the file was changed after the bundle was made; re-export the bundle (or correct provenance.files in bundle.json)`,
        { file },
      )
    }
  }
  hashCache.save()
  const files = { ...actual }
  // The configs are part of the identity: the same files read with another hook point or eps mean other numbers.
  const identity = JSON.stringify({ format: config.format, version: config.version, model: config.model, sae: config.sae, dataset: config.dataset, files })
  return { bundle: sha256(identity), files }
}

export async function loadBundle(dir: string | undefined, opts: LoadBundleOptions & { weights: 'check' }): Promise<BundleMeta>
export async function loadBundle(dir?: string, opts?: LoadBundleOptions & { weights?: 'keep' }): Promise<Bundle>
export async function loadBundle(dir?: string, opts?: LoadBundleOptions): Promise<Bundle | BundleMeta>
export async function loadBundle(dir: string = DEFAULT_BUNDLE_DIR, opts: LoadBundleOptions = {}): Promise<Bundle | BundleMeta> {
  const abs = resolve(dir)
  const hashCache = new HashCache(opts.hashCacheDir === undefined ? userCacheDir() : opts.hashCacheDir)
  const keep = opts.weights !== 'check'
  const config = parseBundleConfig(parseJson(readBundleFile(abs, 'bundle.json').bytes, 'bundle.json'))
  const weightFiles = ['model.safetensors', 'sae.safetensors'] as const
  const contents: Partial<Record<BundleFile, FileRead>> = {}
  for (const f of BUNDLE_FILES) {
    if (keep || !(weightFiles as readonly string[]).includes(f)) contents[f] = readBundleFile(abs, f)
    else {
      // Only checked later, piece by piece; that it is there and readable is known now, as for the others.
      try {
        withRegular(join(abs, f), { maxBytes: MAX_BYTES[f], what: f }, () => undefined)
      } catch (e) {
        throw asBundleError(e, abs, f)
      }
    }
  }
  const actual = {} as Record<BundleFile, string>
  const hashed = (f: BundleFile): void => void (actual[f] = hashCache.sha256(join(abs, f), contents[f]!.stat, contents[f]!.bytes))

  const modelShapes = expectedModelShapes(config.model)
  let model: Map<string, Tensor> | undefined
  if (keep) {
    model = checkedTensors(parseSafetensors(contents['model.safetensors']!.bytes, 'model.safetensors'), modelShapes, config.model.dtype, 'model.safetensors', 'model state dict', opts.checkValues ?? true)
    hashed('model.safetensors')
  } else actual['model.safetensors'] = checkWeightsFile(abs, 'model.safetensors', modelShapes, config.model.dtype, 'model state dict', hashCache)

  const hookPoint = parseHookPoint(config.model, config.sae.hook_point)
  if (config.sae.d_in !== hookPoint.width) {
    throw new BundleError(
      'sae-mismatch',
      `bundle.json: the SAE's d_in is ${config.sae.d_in} but ${config.sae.hook_point} has width ${hookPoint.width}: this SAE was trained on another hook or model`,
      { file: 'bundle.json', expected: [hookPoint.width] },
    )
  }
  const saeShapes = expectedSaeShapes(config.sae)
  let sae: SaeWeights | undefined
  if (keep) {
    sae = Object.fromEntries(checkedTensors(parseSafetensors(contents['sae.safetensors']!.bytes, 'sae.safetensors'), saeShapes, config.sae.dtype, 'sae.safetensors', 'SAE', opts.checkValues ?? true)) as unknown as SaeWeights
    hashed('sae.safetensors')
  } else actual['sae.safetensors'] = checkWeightsFile(abs, 'sae.safetensors', saeShapes, config.sae.dtype, 'SAE', hashCache)

  const bos = config.dataset.prepend_bos ? (config.dataset.bos_token_id ?? 0) : null
  if (bos !== null && bos >= config.model.d_vocab) {
    throw new BundleError('bad-config', `bundle.json: dataset.bos_token_id ${bos} lies outside [0, ${config.model.d_vocab}) (d_vocab)`, { file: 'bundle.json' })
  }
  const tokenizer = createTokenizer(parseJson(contents['tokenizer.json']!.bytes, 'tokenizer.json'), { bosTokenId: bos })
  if (tokenizer.vocabSize > config.model.d_vocab) {
    throw new BundleError(
      'vocab-mismatch',
      `tokenizer.json has ${tokenizer.vocabSize} tokens but the model's d_vocab is ${config.model.d_vocab}: they belong to different models`,
      { file: 'tokenizer.json', expected: [config.model.d_vocab] },
    )
  }
  const tokens = checkTokens(parseSafetensors(contents['tokens.safetensors']!.bytes, 'tokens.safetensors'), config)
  hashed('tokenizer.json')
  hashed('tokens.safetensors')
  const hashes = bundleHashes(config, actual, hashCache)
  const meta: BundleMeta = { dir: abs, config, hookPoint, tokens, tokenizer, hashes }
  return keep ? { ...meta, model: model!, sae: sae! } : meta
}
