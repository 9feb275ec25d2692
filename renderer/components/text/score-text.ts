// A trace's score grid as running text: each row's sequence shaded by every token's activation score,
// which the trace's scope already holds for its whole batch (or prompt). A corpus row's token texts and
// ids come from feature.sequences (the store); a prompt's from the trace itself.
import type { TraceConvention, TracePointJson, TraceScopeJson } from '../../../common/contract'
import type { ContextCellParams } from './ContextCell.vue'

export function scoreRunningText(trace: TracePointJson | null, scope: TraceScopeJson | null, convention: TraceConvention): Omit<ContextCellParams, 'scale'> | undefined {
  const kind = scope?.scope
  const scores = scope?.[convention].activationScores
  if (!trace || !kind || !scores) return undefined
  if (kind.kind === 'prompt') return { shown: () => ({ tokens: trace.sequenceStrTokens, tokenIds: trace.sequence, values: scores }) }
  const { start, seqLen } = kind
  return {
    feature: trace.feature,
    shown: (r, fetched) => fetched && { tokens: fetched.tokens, tokenIds: fetched.tokenIds, values: scores.slice((r.batch - start) * seqLen, (r.batch - start + 1) * seqLen) },
  }
}
