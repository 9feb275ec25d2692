// Feature views: the browser's rows, one feature's detail (top activations, intervals, histogram, logit
// effects), token search, and labels/notes.
import { z } from 'zod'
import { channel, featureId, nonNegInt } from './channel'

/**
 * An answer from a build's partial summary (the cache is being built, or a build stopped part-way): the
 * numbers cover the first `doneTokens` of the corpus's `totalTokens` tokens processed so far. density,
 * count, max, mean and the top activations are exact over those tokens; what needs every firing (top
 * token, precision/recall/F1, histogram, intervals, quantiles, below, logit effects) is null or empty.
 */
export interface PartialCoverage {
  doneTokens: number
  totalTokens: number
}

/**
 * Why a feature is degenerate (main/cache/degenerate.ts): it fires only on the BOS token, always with the
 * same value, or on more than 10 % of tokens. Settings → "Hide degenerate features" hides them.
 */
export type FeatureFlag = 'bos_only' | 'constant' | 'dense'

/**
 * Which firings a feature's numbers count (main/cache/bos.ts). A BOS firing is one at position 0 of a
 * sequence that starts with the corpus's BOS token (the same token mid-sequence is a real token and counts).
 * `excluded` (the default, as sae_vis) leaves BOS firings out: density is then over the non-BOS positions,
 * and recall and the "below" examples count no BOS position; `included` counts every firing. Either way the
 * degenerate flags come from every firing (a BOS-only feature stays flagged). `not_separable`: the numbers
 * include BOS whatever was asked (a cache built before the split existed, or a build's partial summary);
 * `no_bos`: the corpus has no BOS token, so there is nothing to exclude.
 */
export type FeatureBos = 'excluded' | 'included' | 'not_separable' | 'no_bos'

/** One row of the features browser. Dead features have count 0 and null token fields. */
export interface FeatureSummary {
  id: number
  /** Firing fraction: tokens with a non-zero activation / all tokens in the corpus (partial: the tokens covered). */
  density: number
  /** Number of firings (non-zero activations) in the corpus. */
  count: number
  max: number
  /** Mean over firings (non-zero activations only), not over all tokens. */
  mean: number
  /** The most common token among the feature's firings (id and display text), or null. */
  topTokenId: number | null
  topToken: string | null
  /** Single-token classifier "fires ⇔ token is topToken": precision, recall, F1. */
  precision: number | null
  recall: number | null
  f1: number | null
  /** Degenerate flags, empty for most features. */
  flags: FeatureFlag[]
  label: string
  notes: string
}

/** A row of the seed's token table: one (sequence, position) and the feature's activation there. */
export interface ActivationRow {
  /** The token's text, space → ·, newline → ↩, tab → →. */
  str_tokens: string
  /** `str_tokens/pos` */
  unique_token: string
  /** Five tokens before, `|token|`, one after. */
  context: string
  /** Sequence index in the corpus. */
  batch: number
  pos: number
  /** `batch/pos` */
  label: string
  activation: number
  token_id: number
}

export interface Histogram {
  scale: 'linear' | 'log'
  /** Bin edges, length counts.length + 1, over non-zero activations. */
  edges: number[]
  counts: number[]
}

export interface IntervalBin {
  /** Activation range [lo, hi) (the last bin includes hi). */
  lo: number
  hi: number
  /** Firings in this range. */
  count: number
  examples: ActivationRow[]
}

export interface LogitEffect {
  tokenId: number
  token: string
  /** (W_dec[f] · W_out · W_U)[token] for the hook layer's MLP. */
  effect: number
}

export interface FeatureDetail {
  stats: FeatureSummary
  histogram: Histogram
  top: ActivationRow[]
  /** sae_vis's interval groups: equal-width activation ranges over (0, max], examples from each. */
  intervals: IntervalBin[]
  /**
   * sae_vis's quantile groups: the firings in groups of about equal size by value (lo and hi both
   * included), examples from each; empty for a cache built before they existed.
   */
  quantiles: IntervalBin[]
  /** Occurrences of the feature's top token where it does not fire (activation 0), for contrast. */
  below: ActivationRow[]
  logits: { top: LogitEffect[]; bottom: LogitEffect[] }
  /** Present when the answer comes from a running (or stopped) build's partial summary. */
  partial?: PartialCoverage
  /** Whether these numbers count the firings on BOS. */
  bos: FeatureBos
}

export interface TokenMatch {
  id: number
  /** Display text (visible whitespace). */
  token: string
  /** Occurrences of this token id in the corpus. */
  occurrences: number
}

export interface TokenFeature {
  id: number
  /** Firings of the feature on occurrences of the queried token(s). */
  count: number
  /** count / occurrences of the queried token(s). */
  fraction: number
  max: number
  mean: number
  label: string
}

/**
 * One corpus sequence with one feature's activation at every position (feature.sequences): what the
 * examples' running text shades. The activation is the SAE's own, gate included, as the cache computes it.
 */
export interface FeatureSequence {
  /** Sequence index in the corpus (an ActivationRow's `batch`). */
  sample: number
  tokenIds: number[]
  /** Display text per position, whitespace made visible (common/text.ts). */
  tokens: string[]
  activations: number[]
}

/** Sequences one feature.sequences request may ask for (a grid asks for its rows' sequences in pieces of this). */
export const MAX_SEQUENCE_SAMPLES = 64

const limit = z.number().int().min(1).max(10_000).default(100)
/** Count the firings on BOS too (FeatureBos); by default they are left out. */
const includeBos = z.boolean().default(false)

export const featureChannels = {
  /** `partial`: the rows come from a build's partial summary (PartialCoverage), not a finished cache. */
  'features.list': channel<{ features: FeatureSummary[]; partial?: PartialCoverage; bos: FeatureBos }>()(z.strictObject({ includeBos })),
  'feature.get': channel<FeatureDetail>()(
    z.strictObject({
      id: featureId,
      /** Top activation rows to return (the cache stores 100). */
      topK: z.number().int().min(1).max(100).default(100),
      includeBos,
    }),
  ),
  /**
   * The histogram of all of a feature's non-zero activations with other binning (from the full table; a
   * summary cache answers only the stored 40 linear bins, and cache_missing for others).
   */
  'feature.histogram': channel<Histogram>()(
    z.strictObject({
      id: featureId,
      bins: z.number().int().min(1).max(1000).default(40),
      scale: z.enum(['linear', 'log']).default('linear'),
      includeBos,
    }),
  ),
  /**
   * The feature's activation at every position of the given corpus sequences (distinct indices), computed
   * in the compute process by the SAE as the cache build runs it: the summary keeps only the top and
   * interval rows, and the examples' running text shades every token.
   */
  'feature.sequences': channel<{ feature: number; sequences: FeatureSequence[] }>()(
    z.strictObject({
      feature: featureId,
      samples: z
        .array(nonNegInt)
        .min(1)
        .max(MAX_SEQUENCE_SAMPLES)
        .refine((s) => new Set(s).size === s.length, 'samples must be distinct'),
    }),
  ),
  /** Which features fire on a token: by id, or by text (tokenized; every resulting id is searched). */
  'features.byToken': channel<{
    tokens: TokenMatch[]
    features: TokenFeature[]
    /**
     * How many features fire on the token in all (several tokens: at least as many as on any one). The cache
     * keeps, per token, the 32 features with the most firings on it and the 32 whose firings fall on it
     * most; `features` holds the first `limit` of those, most firings first.
     */
    total: number
  }>()(
    z.union([
      z.strictObject({ tokenId: z.number().int().nonnegative(), limit }),
      z.strictObject({ text: z.string().min(1), limit }),
    ]),
  ),
}

export const labelChannels = {
  'labels.set': channel<{ id: number; label: string }>()(z.strictObject({ id: featureId, label: z.string().max(1000) })),
  'notes.set': channel<{ id: number; notes: string }>()(z.strictObject({ id: featureId, notes: z.string().max(100_000) })),
}
