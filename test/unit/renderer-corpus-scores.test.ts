// Whole-corpus results saved with a pinned trace: what a session file gives back, and what it refuses
// (files are the user's; another version, or a hand edit, must never break the trace tab).
import { beforeEach, describe, expect, it, vi } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'

vi.mock('../../renderer/api', () => ({ call: vi.fn(), onPush: vi.fn(), errorMessage: String }))
const { useCorpusScoresStore, corpusScoresKey } = await import('../../renderer/stores/corpus-scores')

const point = { feature: 4, sample: 9, pos: 2 }
function result(convention: 'v' | 'u'): Record<string, unknown> {
  return {
    jobId: 'job-1',
    feature: 4,
    point: { kind: 'corpus', sample: 9, pos: 2 },
    convention,
    vector: [0.1, -0.2],
    preActivation: 1.5,
    dotResidMid: 0,
    nSeq: 3,
    seqLen: 4,
    top: [],
    bottom: [],
    histogram: { scale: 'linear', edges: [0, 1, 2], counts: [5, 7] },
    fidelity: { pearson: 0.9, pearsonRelu: 0.8, disagreements: [], scatter: { token: [1], predicted: [0.5], preActivation: [0.4] } },
    elapsedSec: 12.5,
  }
}

describe('corpus scores from a session file', () => {
  beforeEach(() => setActivePinia(createPinia()))

  it('restores each convention\'s result for its own point, and saves it back the same', () => {
    const store = useCorpusScoresStore()
    expect(store.restoreSaved('tab', point, { v: result('v'), u: result('u') })).toBe(2)
    expect(store.entry(corpusScoresKey('tab', 'u'))?.result).toEqual(result('u'))
    expect(store.saved('tab')).toEqual({ v: result('v'), u: result('u') })
    expect(store.saved('other')).toEqual({})
  })

  it('restores a result saved with the firing tokens\' disagreements, and one saved before they existed', () => {
    const store = useCorpusScoresStore()
    const withFiring = structuredClone(result('v'))
    ;(withFiring.fidelity as Record<string, unknown>).firingDisagreements = []
    expect(store.restoreSaved('tab', point, { v: withFiring, u: result('u') })).toBe(2)
    expect(store.entry(corpusScoresKey('tab', 'v'))?.result?.fidelity.firingDisagreements).toEqual([])
    expect(store.entry(corpusScoresKey('tab', 'u'))?.result?.fidelity.firingDisagreements).toBeUndefined()
  })

  it('skips results of another point or convention, and malformed ones', () => {
    const store = useCorpusScoresStore()
    const broken = (edit: (r: Record<string, unknown>) => void): Record<string, unknown> => {
      const r = structuredClone(result('v'))
      edit(r)
      return r
    }
    const bad = [
      null,
      'text',
      result('u'), // under v
      broken((r) => (r.feature = 5)),
      broken((r) => (r.point = { kind: 'corpus', sample: 9, pos: 3 })),
      broken((r) => delete r.elapsedSec),
      broken((r) => ((r.histogram as { edges: number[] }).edges = [0, 1])),
      broken((r) => delete (r.fidelity as { scatter: Record<string, unknown> }).scatter.predicted),
      broken((r) => (r.top = 'rows')),
      broken((r) => ((r.fidelity as Record<string, unknown>).firingDisagreements = 'rows')),
    ]
    for (const v of bad) expect(store.restoreSaved('tab', point, { v }), JSON.stringify(v)).toBe(0)
    expect(store.restoreSaved('tab', point, 'not an object')).toBe(0)
    expect(store.entry(corpusScoresKey('tab', 'v'))).toBeUndefined()
  })
})
