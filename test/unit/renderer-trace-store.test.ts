// The trace store's two requests per trace (trace.point, then trace.scope), with main's answers held back
// and released in the orders a user can cause: a head change while the scope is loading, a new point
// before the old scope arrives, a failing point part.
import { beforeEach, describe, expect, it, vi } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'

interface Pending {
  channel: string
  payload: { point: { feature: number; sample: number; pos: number }; options?: { head?: number } }
  resolve(v: unknown): void
  reject(e: Error): void
}
const calls: Pending[] = []
vi.mock('../../renderer/api', () => ({
  call: (channel: string, payload: Pending['payload']) => new Promise((resolve, reject) => calls.push({ channel, payload, resolve, reject })),
  errorMessage: (e: unknown) => (e instanceof Error ? e.message : String(e)),
}))
const { useTraceStore } = await import('../../renderer/stores/trace')

const A = { feature: 1, sample: 5, pos: 3 }
const B = { feature: 1, sample: 300, pos: 4 }
const pointAnswer = (p: typeof A, head = 0) => ({ feature: p.feature, point: { kind: 'corpus', sample: p.sample, pos: p.pos }, head, tag: `point ${p.sample} h${head}` })
const scopeAnswer = (p: typeof A) => ({ scope: { kind: 'batch', start: Math.floor(p.sample / 128) * 128, count: 128, seqLen: 8 }, tag: `scope ${p.sample}` })
/** Lets the store's awaits run. */
const settle = () => new Promise((r) => setTimeout(r, 0))
/** The oldest unanswered request on `channel`. */
const take = (channel: string): Pending => {
  const i = calls.findIndex((c) => c.channel === channel)
  if (i < 0) throw new Error(`no pending ${channel}; pending: ${calls.map((c) => c.channel).join(', ')}`)
  return calls.splice(i, 1)[0]
}

describe('trace store: point part, then scope part', () => {
  beforeEach(() => {
    setActivePinia(createPinia())
    calls.length = 0
  })

  it('asks for the scope after the point, and a head change while it loads neither asks again nor loses it', async () => {
    const store = useTraceStore()
    void store.run('t', A)
    await settle()
    expect(calls.map((c) => c.channel)).toEqual(['trace.point'])
    take('trace.point').resolve(pointAnswer(A))
    await settle()
    expect(store.entry('t')).toMatchObject({ loading: false, scopeLoading: true, scope: null })
    expect(calls.map((c) => c.channel)).toEqual(['trace.scope'])
    const scope = take('trace.scope')

    void store.run('t', A, { head: 2 })
    await settle()
    take('trace.point').resolve(pointAnswer(A, 2))
    await settle()
    expect(calls).toHaveLength(0) // no second trace.scope
    scope.resolve(scopeAnswer(A))
    await settle()
    expect(store.entry('t')).toMatchObject({ loading: false, scopeLoading: false, scopeError: null })
    expect((store.entry('t')!.result as unknown as { tag: string }).tag).toBe('point 5 h2')
    expect((store.entry('t')!.scope as unknown as { tag: string }).tag).toBe('scope 5')

    // Another head once the scope is there: only the point part runs.
    void store.run('t', A, { head: 3 })
    await settle()
    take('trace.point').resolve(pointAnswer(A, 3))
    await settle()
    expect(calls).toHaveLength(0)
    expect((store.entry('t')!.scope as unknown as { tag: string }).tag).toBe('scope 5')
  })

  it('never puts one point\'s scope beside another point\'s result', async () => {
    const store = useTraceStore()
    void store.run('t', A)
    await settle()
    take('trace.point').resolve(pointAnswer(A))
    await settle()
    const scopeA = take('trace.scope')
    void store.run('t', B)
    await settle()
    scopeA.resolve(scopeAnswer(A)) // arrives while B's point part is on its way
    await settle()
    take('trace.point').resolve(pointAnswer(B))
    await settle()
    expect((store.entry('t')!.result as unknown as { tag: string }).tag).toBe('point 300 h0')
    expect(store.entry('t')!.scope).toBeNull()
    expect(store.entry('t')!.scopeLoading).toBe(true)
    take('trace.scope').resolve(scopeAnswer(B))
    await settle()
    expect((store.entry('t')!.scope as unknown as { tag: string }).tag).toBe('scope 300')
  })

  it('ends the scope\'s loading when the point part fails, with the reason', async () => {
    const store = useTraceStore()
    void store.run('t', A)
    await settle()
    take('trace.point').reject(new Error('feature 1 outside [0, 1)'))
    await settle()
    expect(store.entry('t')).toMatchObject({ loading: false, error: 'feature 1 outside [0, 1)', scopeLoading: false, scopeError: 'feature 1 outside [0, 1)' })
    expect(calls).toHaveLength(0)
  })

  it('names its tab as the caller of both parts, and a closed tab stops what it still waits for', async () => {
    const store = useTraceStore()
    void store.run('tab-7', A)
    await settle()
    const point = take('trace.point')
    expect(point.payload).toMatchObject({ point: A, caller: 'tab-7' })
    point.resolve(pointAnswer(A))
    await settle()
    expect(take('trace.scope').payload).toMatchObject({ point: A, caller: 'tab-7' })
    store.forget('tab-7') // its scope has not arrived
    expect(take('trace.cancel').payload).toEqual({ caller: 'tab-7' })
    store.forget('tab-7') // nothing left to stop
    expect(calls).toHaveLength(0)
  })
})
