// The bundle's tokenizer: tokenizer.json through @huggingface/tokenizers, plus the per-id token texts the
// feature views show (one decoded id each, so a byte-level token shows what it adds to the text). A
// byte-level token that holds part of a UTF-8 character shows those bytes as <0xNN>, not as "�".
import { byteToken } from '../../common/text'
import { Tokenizer } from '@huggingface/tokenizers'
import { BundleError } from './errors'

export interface BundleTokenizer {
  /** Largest token id + 1, counting added tokens. */
  readonly vocabSize: number
  /** Token ids of a typed prompt; with the BOS prepended when the corpus was tokenized that way. */
  encode(text: string): number[]
  /**
   * The decoded text of one token id ('' for ids the tokenizer does not know); bytes of a byte-level
   * token that are not a whole UTF-8 character are written <0xNN> (the byte-fallback tokens' notation).
   */
  tokenString(id: number): string
  /** tokenString for every id below vocabSize, computed once. */
  tokenStrings(): string[]
}

interface TokenizerJson {
  model?: { vocab?: unknown }
  added_tokens?: { id: number }[]
  decoder?: { type?: string } | null
}

/**
 * Byte-level BPE's alphabet (GPT-2's bytes_to_unicode): printable bytes stand for themselves and the
 * others for U+0100 onwards, in byte order. Returned inverted: character code → byte.
 */
function byteLevelAlphabet(): Map<number, number> {
  const inv = new Map<number, number>()
  let next = 256
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff)
    inv.set(printable ? b : next++, b)
  }
  return inv
}

const strict = new TextDecoder('utf-8', { fatal: true })

/**
 * UTF-8 bytes as text, each byte that does not belong to a whole valid character written <0xNN>. Written
 * by hand because TextDecoder (and the tokenizers' decode) can only replace such bytes with U+FFFD.
 */
export function bytesToText(bytes: Uint8Array): string {
  let out = ''
  for (let i = 0; i < bytes.length; ) {
    const c = bytes[i]
    const n = c < 0x80 ? 1 : c >= 0xc2 && c < 0xe0 ? 2 : c >= 0xe0 && c < 0xf0 ? 3 : c >= 0xf0 && c < 0xf5 ? 4 : 0
    if (n > 0 && i + n <= bytes.length) {
      try {
        out += strict.decode(bytes.subarray(i, i + n))
        i += n
        continue
      } catch {
        // not a valid character: escape its first byte and go on from the next
      }
    }
    out += byteToken(c)
    i++
  }
  return out
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
  // For byte-level BPE: each id's vocabulary entry, to recover its raw bytes where decode gives U+FFFD.
  const tj = json as TokenizerJson
  const vocab = tj.decoder?.type === 'ByteLevel' && tj.model?.vocab && typeof tj.model.vocab === 'object' && !Array.isArray(tj.model.vocab) ? (tj.model.vocab as Record<string, number>) : null
  let pieces: string[] | undefined
  let alphabet: Map<number, number> | undefined

  /** The raw bytes of a byte-level token, or null when its entry is not made of the byte alphabet. */
  const rawBytes = (id: number): Uint8Array | null => {
    if (!vocab) return null
    if (!pieces) {
      pieces = []
      for (const [piece, i] of Object.entries(vocab)) if (Number.isInteger(i)) pieces[i] = piece
      alphabet = byteLevelAlphabet()
    }
    const piece = pieces[id]
    if (piece === undefined) return null
    const bytes: number[] = []
    for (const ch of piece) {
      const b = alphabet!.get(ch.codePointAt(0)!)
      if (b === undefined) return null
      bytes.push(b)
    }
    return Uint8Array.from(bytes)
  }

  const tokenString = (id: number): string => {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) return ''
    if (strings) return strings[id]
    const text = tok.decode([id], { skip_special_tokens: false, clean_up_tokenization_spaces: false })
    if (!text.includes('\uFFFD')) return text
    const bytes = rawBytes(id)
    return bytes ? bytesToText(bytes) : text
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
