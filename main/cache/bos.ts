// Statistics without BOS (issue 14 §3), as sae_vis shows them: a feature that fires on the BOS token at the
// start of every sequence would otherwise have its density, mean, top examples and top token set by a
// position that carries no text.
//
// A BOS firing is a firing at position 0 of a sequence whose first token is the corpus's BOS token
// (degenerate.ts positionZeroToken: the one token every sequence starts with; null, a corpus without BOS,
// means nothing is excluded). The same token id in mid-sequence (the demo's <|endoftext|> between
// documents) is a real token and stays.
//
// Finalize stores, for each feature with at least one BOS firing, its aggregates over the other firings
// (schema.ts feature_nobos) against a corpus whose BOS positions are no token at all (a sentinel id =
// vocabSize): they count as no token's occurrence in recall and are never a "below" example.
import type { FeatureActs } from './encode'
import { positionZeroToken } from './degenerate'
import { TokenPositions, TokenScratch } from './stats'

/** What a feature view's numbers count (common/contract FeatureBos). */
export type BosChoice = 'excluded' | 'included'

/** The corpus's BOS positions: the BOS token (null: none) and how many sequences start with it. */
export function bosPositions(corpus: Int32Array, seqLen: number): { bos: number | null; count: number } {
  const bos = positionZeroToken({ corpus, seqLen })
  if (bos === null) return { bos, count: 0 }
  let count = 0
  for (let i = 0; i < corpus.length; i += seqLen) if (corpus[i] === bos) count++
  return { bos, count }
}

/** Is global token index `t` a BOS position? */
export function isBosPosition(t: number, corpus: Int32Array, seqLen: number, bos: number | null): boolean {
  return bos !== null && t % seqLen === 0 && corpus[t] === bos
}

/** A feature's firings less those at BOS positions, or null when it has none there (its numbers are unchanged). */
export function withoutBos(acts: FeatureActs, corpus: Int32Array, seqLen: number, bos: number | null): FeatureActs | null {
  if (bos === null) return null
  let n = 0
  for (let i = 0; i < acts.tokens.length; i++) if (isBosPosition(acts.tokens[i], corpus, seqLen, bos)) n++
  if (n === 0) return null
  const tokens = new Uint32Array(acts.tokens.length - n)
  const values = new Float32Array(tokens.length)
  let j = 0
  for (let i = 0; i < acts.tokens.length; i++) {
    if (isBosPosition(acts.tokens[i], corpus, seqLen, bos)) continue
    tokens[j] = acts.tokens[i]
    values[j++] = acts.values[i]
  }
  return { tokens, values }
}

/**
 * The corpus as the non-BOS aggregates see it (aggregateFeature's arguments): BOS positions hold the
 * sentinel id vocabSize, so they are no token's occurrence. Built once per finalize.
 */
export class NoBosCorpus {
  readonly corpus: Int32Array
  readonly occurrences: Uint32Array
  readonly scratch: TokenScratch
  readonly positions: TokenPositions

  constructor(corpus: Int32Array, seqLen: number, vocabSize: number, bos: number) {
    this.corpus = Int32Array.from(corpus)
    for (let i = 0; i < corpus.length; i += seqLen) if (corpus[i] === bos) this.corpus[i] = vocabSize
    this.occurrences = new Uint32Array(vocabSize + 1)
    for (let i = 0; i < this.corpus.length; i++) this.occurrences[this.corpus[i]]++
    this.scratch = new TokenScratch(vocabSize + 1)
    this.positions = new TokenPositions(this.corpus, vocabSize + 1)
  }
}
