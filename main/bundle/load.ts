// Opens a bundle folder into a typed, fully validated Bundle. Everything is read and checked before the
// Bundle exists, so a caller holds either a complete bundle or one BundleError — never half of one.
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { Tensor } from '../compute/api'
import { BundleError, shapeText } from './errors'
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
   * Hash every file and compare with bundle.json's provenance (a few hundred ms on large bundles). Without
   * it the recorded hashes are trusted, and files are hashed only when bundle.json records none.
   */
  verifyHashes?: boolean
}

export const DEFAULT_BUNDLE_DIR = 'resources/demo'

async function readBundleFile(dir: string, file: string): Promise<Buffer> {
  try {
    return await readFile(join(dir, file))
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `cannot be read (${(e as Error).message})`
    throw new BundleError('not-found', `${file} in ${dir} ${reason}`, { file })
  }
}

function parseJson(bytes: Buffer, file: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf-8'))
  } catch (e) {
    throw new BundleError('bad-json', `${file} is not valid JSON: ${(e as Error).message}`, { file })
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
    out.set(name, { dims: [...shape], data: toFloat32(t) })
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

function bundleHashes(config: BundleConfig, contents: Record<BundleFile, Buffer>, verify: boolean): BundleHashes {
  const recorded = config.provenance.files
  const files = {} as Record<BundleFile, string>
  for (const file of BUNDLE_FILES) {
    const known = recorded[file]?.sha256
    if (known && !verify) {
      files[file] = known
      continue
    }
    const actual = sha256(contents[file])
    if (known && known !== actual) {
      throw new BundleError('hash-mismatch', `${file} has sha256 ${actual}, but bundle.json records ${known}: the file was changed after the bundle was made`, { file })
    }
    files[file] = actual
  }
  // The configs are part of the identity: the same files read with another hook point or eps mean other numbers.
  const identity = JSON.stringify({ format: config.format, version: config.version, model: config.model, sae: config.sae, dataset: config.dataset, files })
  return { bundle: sha256(identity), files }
}

export async function loadBundle(dir: string = DEFAULT_BUNDLE_DIR, opts: LoadBundleOptions = {}): Promise<Bundle> {
  const abs = resolve(dir)
  const config = parseBundleConfig(parseJson(await readBundleFile(abs, 'bundle.json'), 'bundle.json'))
  const [modelBytes, saeBytes, tokenizerBytes, tokensBytes] = await Promise.all(BUNDLE_FILES.map((f) => readBundleFile(abs, f)))
  const contents = { 'model.safetensors': modelBytes, 'sae.safetensors': saeBytes, 'tokenizer.json': tokenizerBytes, 'tokens.safetensors': tokensBytes }

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
  const hashes = bundleHashes(config, contents, opts.verifyHashes ?? false)
  return { dir: abs, config, hookPoint, model, sae, tokens, tokenizer, hashes }
}
