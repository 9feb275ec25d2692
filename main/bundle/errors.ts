import type { IpcError, IpcMappable } from '../../common/errors'

/**
 * Every way a bundle can fail to load ends in one BundleError, so callers (IPC, CLI, the cache job)
 * have a single thing to catch and a code to branch on, and the researcher gets a message that says
 * which file and tensor to fix rather than a stack trace from deep inside a parser.
 */
export type BundleErrorCode =
  | 'not-found' // the folder or one of its files is missing
  | 'unreadable' // a file is not a regular file, is too large, or cannot be read
  | 'bad-json' // bundle.json or tokenizer.json is not valid JSON
  | 'bad-config' // bundle.json does not follow the format (docs/BUNDLE.md)
  | 'bad-safetensors' // a safetensors file is truncated or its header is malformed
  | 'missing-tensor'
  | 'bad-shape'
  | 'bad-dtype'
  | 'sae-mismatch' // the SAE does not fit the model's hook point
  | 'vocab-mismatch' // the tokenizer belongs to a different model
  | 'bad-tokens' // token ids out of range or sequences longer than n_ctx
  | 'bad-tokenizer' // tokenizer.json is not loadable
  | 'hash-mismatch' // a file differs from the sha256 bundle.json records for it
  | 'non-finite' // a weight is NaN or ±Infinity

export interface BundleErrorDetails {
  file?: string
  tensor?: string
  expected?: readonly number[]
}

export class BundleError extends Error implements IpcMappable {
  override readonly name = 'BundleError'
  readonly file?: string
  readonly tensor?: string
  readonly expected?: readonly number[]

  constructor(
    readonly code: BundleErrorCode,
    message: string,
    details: BundleErrorDetails = {},
  ) {
    super(message)
    this.file = details.file
    this.tensor = details.tensor
    this.expected = details.expected
  }

  /** A missing bundle is `no_bundle`; anything else wrong with one is `bundle_invalid`. */
  toIpc(): IpcError {
    return { code: this.code === 'not-found' ? 'no_bundle' : 'bundle_invalid', message: this.message }
  }
}

/** "[2, 3]" — shapes are shown as the Python tools print them, so messages read the same on both sides. */
export function shapeText(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`
}
