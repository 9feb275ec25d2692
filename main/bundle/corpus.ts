// The seed notebook's token table (make_token_df): one row per (sequence, position), with its token and
// context shown the way the notebook shows them.
import { tokenText, visibleToken } from '../../common/text'
import type { ActivationRow } from '../../common/contract'
import type { BundleMeta } from './load'

const CONTEXT_BEFORE = 5
const CONTEXT_AFTER = 1

export interface CorpusView {
  /** Token ids [nSeq, seqLen], flattened. */
  corpus: Int32Array
  seqLen: number
  /** Display text per token id, whitespace already made visible. */
  display: string[]
}

export function displayStrings(tokenStrings: string[]): string[] {
  return tokenStrings.map(visibleToken)
}

/** The row for global token index `token` (sequence·seq_len + pos) with the feature's activation there. */
export function activationRow(view: CorpusView, token: number, activation: number): ActivationRow {
  const { corpus, seqLen, display } = view
  const batch = Math.floor(token / seqLen)
  const pos = token - batch * seqLen
  const tokenId = corpus[token]
  const str = tokenText(display, tokenId)
  let before = ''
  for (let p = Math.max(0, pos - CONTEXT_BEFORE); p < pos; p++) before += display[corpus[token - pos + p]] ?? ''
  let after = ''
  for (let p = pos + 1; p <= Math.min(seqLen - 1, pos + CONTEXT_AFTER); p++) after += display[corpus[token - pos + p]] ?? ''
  return {
    str_tokens: str,
    unique_token: `${str}/${pos}`,
    context: `${before}|${str}|${after}`,
    batch,
    pos,
    label: `${batch}/${pos}`,
    activation,
    token_id: tokenId,
  }
}

/** The corpus and token texts of a bundle, as every grid of corpus places shows them. */
export function corpusViewOf(bundle: BundleMeta): CorpusView {
  const strings = bundle.tokenizer.tokenStrings()
  // Ids the tokenizer lacks but the model has (padding rows of W_U) still get a name.
  const display = displayStrings(strings)
  for (let i = display.length; i < bundle.config.model.d_vocab; i++) display.push(`<${i}>`)
  return { corpus: bundle.tokens.data, seqLen: bundle.tokens.seqLen, display }
}
