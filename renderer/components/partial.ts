import type { PartialCoverage } from '../../common/contract'

/** "37 %": the share of the corpus a build's partial summary covers (never 100 % before it is finished). */
export function coverage(p: PartialCoverage): string {
  const pct = p.totalTokens > 0 ? (100 * p.doneTokens) / p.totalTokens : 0
  return `${pct >= 99.5 && p.doneTokens < p.totalTokens ? 99 : Math.round(pct)} %`
}
