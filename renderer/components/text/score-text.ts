// A trace's score grid as running text: each row's sequence shaded by every token's activation score,
// which the trace's scope holds for its whole batch (or prompt). A corpus row's token texts and ids come
// from feature.sequences (the store); a prompt's from the trace itself. The scope part is read when a cell
// draws (`scoped`, undefined until trace.scope answers): the grid and its columns exist before it does.
import type { TracePointJson, TraceScopeKind } from '../../../common/contract'
import type { ContextCellParams } from './ContextCell.vue'

/** The scope part's scores of the tab's convention, and the scope they cover (offsets come from it). */
export interface ScopedScores {
  scope: TraceScopeKind
  scores: readonly number[]
}

export function scoreRunningText(trace: TracePointJson | null, scoped: () => ScopedScores | undefined): Omit<ContextCellParams, 'scale'> | undefined {
  if (!trace) return undefined
  if (trace.scope.kind === 'prompt') {
    return {
      shown: () => {
        const s = scoped()
        return s && { tokens: trace.sequenceStrTokens, tokenIds: trace.sequence, values: s.scores }
      },
    }
  }
  return {
    feature: trace.feature,
    shown: (r, fetched) => {
      const s = scoped()
      if (!fetched || !s || s.scope.kind !== 'batch') return undefined
      const { start, seqLen } = s.scope
      return { tokens: fetched.tokens, tokenIds: fetched.tokenIds, values: s.scores.slice((r.batch - start) * seqLen, (r.batch - start + 1) * seqLen) }
    },
  }
}
