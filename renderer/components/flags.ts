// Degenerate flags (common/contract FeatureFlag) as the words a researcher reads in a cell or badge.
import type { FeatureFlag } from '../../common/contract'

const WORDS: Record<FeatureFlag, string> = { bos_only: 'BOS-only', constant: 'constant', dense: 'dense' }

export function flagText(flags: readonly FeatureFlag[] | undefined): string {
  return (flags ?? []).map((f) => WORDS[f]).join(', ')
}
