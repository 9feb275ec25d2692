// The examples' running text asks for sequences through one store: the asks of one moment go out together,
// in pieces of the channel's cap, never twice for the same sequence; a failed piece may be asked again;
// an answer that arrives after another bundle was opened (clear()) is dropped.
import { beforeEach, describe, expect, it, vi } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import { MAX_SEQUENCE_SAMPLES } from '../../common/contract'

interface Pending {
  channel: string
  payload: { feature: number; samples: number[] }
  resolve(v: unknown): void
  reject(e: Error): void
}
const calls: Pending[] = []
vi.mock('../../renderer/api', () => ({
  call: (channel: string, payload: Pending['payload']) => new Promise((resolve, reject) => calls.push({ channel, payload, resolve, reject })),
  errorMessage: (e: unknown) => (e instanceof Error ? e.message : String(e)),
}))
const { useSequencesStore } = await import('../../renderer/stores/sequences')

const settle = () => new Promise((r) => setTimeout(r, 0))
const answer = (p: Pending) => p.resolve({ feature: p.payload.feature, sequences: p.payload.samples.map((s) => ({ sample: s, tokenIds: [s], tokens: [`t${s}`], activations: [s / 10] })) })

describe('sequences store', () => {
  beforeEach(() => {
    setActivePinia(createPinia())
    calls.length = 0
  })

  it('batches the asks of one moment per feature in pieces of the cap, and asks for nothing twice', async () => {
    const store = useSequencesStore()
    for (let s = 0; s < 100; s++) store.want(7, [s])
    store.want(7, [3, 4])
    store.want(9, [1])
    expect(calls).toHaveLength(0) // not yet: the rest of the grid's cells are still asking
    await settle()
    expect(calls.map((c) => [c.channel, c.payload.feature, c.payload.samples.length])).toEqual([
      ['feature.sequences', 7, MAX_SEQUENCE_SAMPLES],
      ['feature.sequences', 7, 100 - MAX_SEQUENCE_SAMPLES],
      ['feature.sequences', 9, 1],
    ])
    expect(new Set(calls.flatMap((c) => (c.payload.feature === 7 ? c.payload.samples : [])))).toEqual(new Set(Array.from({ length: 100 }, (_, i) => i)))
    const before = store.revision
    calls.splice(0).forEach(answer)
    await settle()
    expect(store.revision).toBeGreaterThan(before)
    expect(store.get(7, 42)?.activations).toEqual([4.2])
    expect(store.get(9, 1)?.tokens).toEqual(['t1'])
    expect(store.get(9, 2)).toBeUndefined()
    store.want(7, [42, 99])
    await settle()
    expect(calls).toHaveLength(0)
  })

  it('asks again for a piece that failed, and drops an answer from before clear()', async () => {
    const store = useSequencesStore()
    store.want(1, [5])
    await settle()
    calls.splice(0)[0].reject(new Error('busy'))
    await settle()
    expect(store.get(1, 5)).toBeUndefined()
    store.want(1, [5])
    await settle()
    const late = calls.splice(0)[0]
    expect(late.payload.samples).toEqual([5])
    store.clear()
    answer(late)
    await settle()
    expect(store.get(1, 5)).toBeUndefined()
  })
})
