// The page's one job store (renderer/stores/jobs.ts) and the two views built on it: the job id is the
// page's, known before main answers; progress and done pushes are routed by id; a job started elsewhere
// is followed; the cache and corpus-scores stores read their jobs from it.
import { beforeEach, describe, expect, it, vi } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import type { JobDone, JobProgress } from '../../common/contract'

const api = vi.hoisted(() => ({
  calls: [] as { channel: string; payload: Record<string, unknown> }[],
  listeners: new Map<string, (payload: unknown) => void>(),
  answer: (_channel: string, payload: Record<string, unknown>): unknown => ({ jobId: payload.jobId }),
}))
vi.mock('../../renderer/api', () => ({
  call: vi.fn(async (channel: string, payload: Record<string, unknown>) => {
    api.calls.push({ channel, payload })
    return api.answer(channel, payload)
  }),
  onPush: vi.fn((event: string, cb: (payload: unknown) => void) => {
    api.listeners.set(event, cb)
    return () => api.listeners.delete(event)
  }),
  errorMessage: (e: unknown) => String((e as Error).message ?? e),
}))
const { useJobsStore } = await import('../../renderer/stores/jobs')
const { useCacheStore } = await import('../../renderer/stores/cache')
const { useCorpusScoresStore, corpusScoresKey } = await import('../../renderer/stores/corpus-scores')

const push = (event: 'job.progress' | 'job.done', payload: JobProgress | JobDone) => api.listeners.get(event)!(payload)
const progress = (kind: JobProgress['kind'], jobId: string, doneTokens: number): JobProgress => ({ kind, jobId, phase: 'compute', doneTokens, totalTokens: 100, tokensPerSec: 50, etaSec: 1 })

describe('useJobsStore', () => {
  beforeEach(() => {
    setActivePinia(createPinia())
    api.calls.length = 0
    api.listeners.clear()
    api.answer = (_c, payload) => ({ jobId: payload.jobId })
  })

  it('sends an id made in the page, shows the job at once, and follows it by id to its end', async () => {
    const jobs = useJobsStore()
    const done: JobDone[] = []
    jobs.onDone((e) => done.push(e))
    const started = jobs.start('cache.build', { rebuild: true }, { totalTokens: 100, owner: 'me' })
    const jobId = api.calls[0].payload.jobId as string
    expect(api.calls[0]).toEqual({ channel: 'cache.build', payload: { rebuild: true, jobId } })
    expect(jobId).toMatch(/^[0-9a-f-]{36}$/)
    expect(jobs.ofKind('cache.build')).toMatchObject({ jobId, owner: 'me', progress: { doneTokens: 0, totalTokens: 100 } })
    await started
    push('job.progress', progress('cache.build', 'someone-else', 7))
    push('job.progress', progress('cache.build', jobId, 40))
    expect(jobs.running[jobId].progress.doneTokens).toBe(40)
    expect(jobs.running['someone-else'].owner).toBeNull() // followed, though another window started it
    push('job.done', { kind: 'cache.build', jobId, outcome: 'done', cache: { state: 'ready', path: '/c', doneTokens: 100, totalTokens: 100, sizeBytes: 1 } })
    expect(jobs.running[jobId]).toBeUndefined()
    expect(jobs.lastRate['cache.build']).toBe(50)
    expect(done.map((e) => e.jobId)).toEqual([jobId])
  })

  it('forgets a job main refused, and cancels by id', async () => {
    const jobs = useJobsStore()
    api.answer = () => {
      throw new Error('busy: a cache build is already running')
    }
    await expect(jobs.start('cache.build', { rebuild: false }, { totalTokens: 1 })).rejects.toThrow(/busy/)
    expect(jobs.ofKind('cache.build')).toBeNull()
    api.answer = () => ({ cancelled: true })
    expect(await jobs.cancel('j')).toBe(true)
    expect(api.calls.at(-1)).toEqual({ channel: 'job.cancel', payload: { jobId: 'j' } })
  })

  it('drives the cache view: building, its progress, cancel, and the state job.done leaves', async () => {
    const cache = useCacheStore()
    cache.set({ state: 'missing', path: '/c', doneTokens: 0, totalTokens: 100, sizeBytes: 0 })
    await cache.build()
    const jobId = api.calls[0].payload.jobId as string
    expect(cache.building).toBe(true)
    push('job.progress', progress('cache.build', jobId, 30))
    expect(cache.fraction).toBeCloseTo(0.3)
    expect(cache.state?.state).toBe('building')
    await cache.cancel()
    expect(api.calls.at(-1)).toEqual({ channel: 'job.cancel', payload: { jobId } })
    push('job.done', { kind: 'cache.build', jobId, outcome: 'cancelled', cache: { state: 'partial', path: '/c', doneTokens: 30, totalTokens: 100, sizeBytes: 9 } })
    expect(cache.building).toBe(false)
    expect(cache.state?.state).toBe('partial')
    expect(cache.lastOutcome?.outcome).toBe('cancelled')
    expect(cache.lastRate).toBe(50)
  })

  it('drives the corpus-scores view: the running job is its tab\'s, and the result lands in that tab', async () => {
    const corpus = useCorpusScoresStore()
    const point = { feature: 1, sample: 2, pos: 3 }
    await corpus.start('tab-1', point, 'u', 100)
    const jobId = api.calls[0].payload.jobId as string
    expect(api.calls[0].payload).toMatchObject({ point, convention: 'u', jobId })
    expect(corpus.running).toMatchObject({ key: corpusScoresKey('tab-1', 'u'), jobId })
    push('job.progress', { ...progress('trace.corpusScores', jobId, 60) })
    expect(corpus.running?.progress.doneTokens).toBe(60)
    push('job.done', { kind: 'trace.corpusScores', jobId, outcome: 'failed', error: { code: 'busy', message: 'the corpus-scores process stopped (signal SIGKILL); start it again' } })
    await vi.waitFor(() => expect(corpus.entry(corpusScoresKey('tab-1', 'u'))?.error).toMatch(/stopped/))
    expect(corpus.running).toBeNull()
  })
})
