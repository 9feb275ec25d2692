// The bundle's tokenizer: tokenizer.json through @huggingface/tokenizers, plus the per-id token texts the
// feature views show (one decoded id each, so a byte-level token shows what it adds to the text).
import { Tokenizer } from '@huggingface/tokenizers'
import { BundleError } from './errors'

export interface BundleTokenizer {
  /** Largest token id + 1, counting added tokens. */
  readonly vocabSize: number
  /** Token ids of a typed prompt; with the BOS prepended when the corpus was tokenized that way. */
  encode(text: string): number[]
  /** The decoded text of one token id ('' for ids the tokenizer does not know). */
  tokenString(id: number): string
  /** tokenString for every id below vocabSize, computed once. */
  tokenStrings(): string[]
}

interface TokenizerJson {
  model?: { vocab?: unknown }
  added_tokens?: { id: number }[]
}

/** Mirrors tools/ftlib/bundle.py's tokenizer_vocab_size, so both sides agree on what "fits the model" means. */
export function tokenizerVocabSize(json: TokenizerJson): number {
  const vocab = json.model?.vocab
  let max = -1
  if (Array.isArray(vocab)) max = vocab.length - 1 // Unigram: [token, score] pairs, id = index
  else if (vocab && typeof vocab === 'object') for (const id of Object.values(vocab)) if (typeof id === 'number' && id > max) max = id
  for (const t of json.added_tokens ?? []) if (t.id > max) max = t.id
  return max + 1
}

export function createTokenizer(json: unknown, opts: { bosTokenId?: number | null; file?: string } = {}): BundleTokenizer {
  const file = opts.file ?? 'tokenizer.json'
  let tok: Tokenizer
  let vocabSize: number
  try {
    // clean_up_tokenization_spaces would glue " ." into "." when decoding one id; we want each token's own text.
    tok = new Tokenizer(json as object, { clean_up_tokenization_spaces: false })
    vocabSize = tokenizerVocabSize(json as TokenizerJson)
    // Some parts are only exercised on first use; fail here, at load, rather than on the first prompt.
    tok.decode(tok.encode('Feature 1: naïve\n', { add_special_tokens: false }).ids)
  } catch (e) {
    throw new BundleError('bad-tokenizer', `${file} cannot be loaded by @huggingface/tokenizers: ${(e as Error).message}`, { file })
  }
  if (vocabSize <= 0) throw new BundleError('bad-tokenizer', `${file} has an empty vocabulary`, { file })
  const bos = opts.bosTokenId ?? null
  let strings: string[] | undefined

  const tokenString = (id: number): string => {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) return ''
    if (strings) return strings[id]
    return tok.decode([id], { skip_special_tokens: false, clean_up_tokenization_spaces: false })
  }
  return {
    vocabSize,
    encode(text) {
      // add_special_tokens: false because BOS handling is the bundle's (dataset.prepend_bos), not the tokenizer's.
      const ids = tok.encode(text, { add_special_tokens: false }).ids
      return bos === null ? ids : [bos, ...ids]
    },
    tokenString,
    tokenStrings() {
      if (!strings) {
        const all = new Array<string>(vocabSize)
        for (let i = 0; i < vocabSize; i++) all[i] = tokenString(i)
        strings = all
      }
      return strings
    },
  }
}
