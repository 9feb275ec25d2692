// The seed notebook's token table (make_token_df): one row per (sequence, position), with its token and
// context shown the way the notebook shows them.
import { byteToken } from '../bundle/tokenizer'
import type { ActivationRow } from '../ipc/contract'

/**
 * Whitespace made visible: space → ·, newline → ↩, tab → →; other control characters (carriage return,
 * form feed, NUL …), which a font draws as nothing or a box, as their byte: <0x0D>.
 */
export function visibleToken(s: string): string {
  return s
    .replace(/ /g, '·')
    .replace(/\n/g, '↩')
    .replace(/\t/g, '→')
    .replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, (c) => byteToken(c.charCodeAt(0)))
}

/** A token id's display text, or <id> for an id the tokenizer does not name (padding rows of W_U). */
export function tokenText(display: readonly string[], id: number): string {
  return display[id] ?? `<${id}>`
}

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
