// A trace's score grid as running text: each row's sequence shaded by every token's activation score,
// which the trace's scope holds for its whole batch (or prompt). A corpus row's token texts and ids come
// from feature.sequences (the store); a prompt's from the trace itself. The scores are read when a cell
// draws (`scores`, undefined until the scope answers): the grid and its columns exist before they do.
import type { TracePointJson } from '../../../common/contract'
import type { ContextCellParams } from './ContextCell.vue'

export function scoreRunningText(trace: TracePointJson | null, scores: () => readonly number[] | undefined): Omit<ContextCellParams, 'scale'> | undefined {
  if (!trace) return undefined
  const kind = trace.scope
  if (kind.kind === 'prompt') {
    return {
      shown: () => {
        const values = scores()
        return values && { tokens: trace.sequenceStrTokens, tokenIds: trace.sequence, values }
      },
    }
  }
  const { start, seqLen } = kind
  return {
    feature: trace.feature,
    shown: (r, fetched) => {
      const values = scores()
      return fetched && values && { tokens: fetched.tokens, tokenIds: fetched.tokenIds, values: values.slice((r.batch - start) * seqLen, (r.batch - start + 1) * seqLen) }
    },
  }
}
