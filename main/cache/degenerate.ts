// Degenerate features (issue 14 §3): the ones that clutter a sort by F1 or density and say nothing about
// text. Derived from what every cache's feature row already stores, so no cache needs rebuilding:
//   bos_only  its firings are (almost) all on the BOS token, the token every sequence starts with;
//   constant  (almost) every firing has the same value: the mean over firings is the max to 0.1 %;
//   dense     it fires on more than a tenth of all tokens.
import type { CorpusView } from '../bundle/corpus'
import type { FeatureFlag } from '../../common/contract'

/** The share of a feature's firings on BOS from which it counts as firing only there. */
export const BOS_ONLY_PRECISION = 0.99
/**
 * A feature whose mean firing is within this fraction of its max counts as constant. The demo's BOS
 * features fire 0.31757 on every BOS and a little less on a few <|endoftext|> mid-sequence: mean 0.31736.
 */
export const CONSTANT_SPREAD = 1e-3
/** The firing fraction above which a feature counts as dense. */
export const DENSE_DENSITY = 0.1

export interface FlagInput {
  count: number
  density: number
  max: number
  /** Mean over firings. */
  mean: number
  topTokenId: number | null
  /** Firings on the top token / all firings. */
  precision: number | null
}

/** The degenerate flags of one feature; `bos` is the BOS token id, or null when the corpus has none. */
export function degenerateFlags(f: FlagInput, bos: number | null): FeatureFlag[] {
  if (f.count === 0) return []
  const flags: FeatureFlag[] = []
  if (bos !== null && f.topTokenId === bos && f.precision !== null && f.precision >= BOS_ONLY_PRECISION) flags.push('bos_only')
  if (f.max > 0 && f.max - f.mean <= CONSTANT_SPREAD * f.max) flags.push('constant')
  if (f.density > DENSE_DENSITY) flags.push('dense')
  return flags
}

/**
 * The corpus's BOS token: the one token every sequence starts with, or null when they start with
 * different tokens (a corpus tokenized without a BOS). A bundle with prepend_bos always has one.
 */
export function positionZeroToken(view: Pick<CorpusView, 'corpus' | 'seqLen'>): number | null {
  const { corpus, seqLen } = view
  if (corpus.length === 0 || seqLen <= 0) return null
  const first = corpus[0]
  for (let i = seqLen; i < corpus.length; i += seqLen) if (corpus[i] !== first) return null
  return first
}
