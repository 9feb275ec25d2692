// The contract's runtime side (validation, errors as data) and its type side (channels and handlers
// cannot drift apart: a missing handler, an extra one, or a wrong response type fails `tsc`).
import { describe, expect, expectTypeOf, it } from 'vitest'
import { channels, contract, eventNames, type Channel, type EventName, type JobKind, type RequestIn, type RequestOf, type ResponseOf } from '../../common/contract'
import { createDispatch, type HandlerTable } from '../../main/app/dispatch'
import { FtError } from '../../common/errors'
import { createHandlers } from '../../main/app/handlers'

/** A table whose handlers echo their validated request, to see what dispatch hands them. */
function echoTable(): HandlerTable {
  const table: Record<string, (req: unknown) => unknown> = {}
  for (const c of channels) table[c] = (req) => ({ echoed: req })
  return table as unknown as HandlerTable
}

describe('IPC contract types', () => {
  it('has exactly one handler per channel, with the contract’s types', () => {
    expectTypeOf<keyof HandlerTable>().toEqualTypeOf<Channel>()
    expectTypeOf<keyof ReturnType<typeof createHandlers>>().toEqualTypeOf<Channel>()
    expectTypeOf<(typeof eventNames)[number]>().toEqualTypeOf<EventName>()
    // Every kind of job is started by the channel of its name, which takes the page's job id.
    expectTypeOf<JobKind>().toExtend<Channel>()
    expectTypeOf<RequestIn<JobKind>>().toHaveProperty('jobId').toEqualTypeOf<string>()
    expectTypeOf<Parameters<HandlerTable['feature.get']>[0]>().toEqualTypeOf<RequestOf<'feature.get'>>()
    expectTypeOf<Awaited<ReturnType<HandlerTable['cache.build']>>>().toEqualTypeOf<ResponseOf<'cache.build'>>()
    // Defaults are optional for callers and present for handlers.
    expectTypeOf<RequestIn<'feature.get'>>().toEqualTypeOf<{ id: number; topK?: number | undefined; includeBos?: boolean | undefined }>()
    expectTypeOf<RequestOf<'feature.get'>>().toEqualTypeOf<{ id: number; topK: number; includeBos: boolean }>()

    // @ts-expect-error a table missing a channel is not a HandlerTable
    const missing: HandlerTable = { 'bundle.info': () => ({}) as ResponseOf<'bundle.info'> }
    void missing
    const wrong: Pick<HandlerTable, 'cache.build'> = {
      // @ts-expect-error a handler returning the wrong shape is refused
      'cache.build': () => ({ job: 'x' }),
    }
    void wrong
  })

  it('lists every channel at runtime, with a schema each', () => {
    expect(channels.length).toBeGreaterThan(10)
    for (const c of channels) expect(typeof contract[c].request.safeParse).toBe('function')
    expect(channels).toEqual(expect.arrayContaining(['bundle.info', 'cache.build', 'job.cancel', 'trace.cancel', 'features.list', 'feature.get', 'features.byToken', 'labels.set', 'notes.set', 'session.save', 'session.load', 'session.autosave']))
  })
})

describe('dispatch', () => {
  const { dispatch } = createDispatch(echoTable())

  it('refuses unknown channels as data', async () => {
    expect(await dispatch('feature.delete', {})).toEqual({ ok: false, error: { code: 'unknown_channel', message: expect.stringContaining('feature.delete') } })
    expect((await dispatch('__proto__', {})).ok).toBe(false)
    expect((await dispatch('toString', {})).ok).toBe(false)
  })

  it.each([
    ['feature.get', { id: -1 }, 'id'],
    ['feature.get', { id: 1.5 }, 'id'],
    ['feature.get', { id: '3' }, 'id'],
    ['feature.get', {}, 'id'],
    ['feature.get', { id: 1, topK: 0 }, 'topK'],
    ['feature.get', { id: 1, extra: true }, 'extra'],
    ['feature.get', { id: 1, includeBos: 'yes' }, 'includeBos'],
    ['features.list', { includeBos: 1 }, 'includeBos'],
    ['features.list', { bos: 'excluded' }, 'bos'],
    ['feature.histogram', { id: 1, includeBos: null }, 'includeBos'],
    ['features.byToken', {}, ''],
    ['features.byToken', { tokenId: 1, text: 'x' }, ''],
    ['labels.set', { id: 1, label: 5 }, 'label'],
    ['notes.set', { id: 1 }, 'notes'],
    ['job.cancel', { jobId: '' }, 'jobId'],
    ['cache.build', {}, 'jobId'],
    ['cache.build', { jobId: '../x' }, 'jobId'],
    ['trace.corpusScores', { jobId: 'a'.repeat(65), point: { feature: 0, sample: 0, pos: 0 } }, 'jobId'],
    ['trace.point', { point: { feature: 0, sample: 0, pos: 0 }, caller: '' }, 'caller'],
    ['session.save', { path: '/tmp/x', state: { tabs: 'no' } }, 'state.tabs'],
    ['bundle.info', null, ''],
    ['bundle.info', 'hello', ''],
  ])('%s %j → invalid_request naming the field', async (channel, payload, field) => {
    const r = await dispatch(channel, payload)
    expect(r.ok).toBe(false)
    if (!r.ok) {
      expect(r.error.code).toBe('invalid_request')
      expect(r.error.message).toContain(channel)
      expect(r.error.message).toContain(field)
    }
  })

  it('hands handlers the validated request with defaults filled in', async () => {
    expect(await dispatch('feature.get', { id: 7 })).toEqual({ ok: true, value: { echoed: { id: 7, topK: 100, includeBos: false } } })
    expect(await dispatch('features.list', {})).toEqual({ ok: true, value: { echoed: { includeBos: false } } })
    expect(await dispatch('feature.histogram', { id: 2, includeBos: true })).toEqual({ ok: true, value: { echoed: { id: 2, bins: 40, scale: 'linear', includeBos: true } } })
    expect(await dispatch('cache.build', { jobId: 'j1' })).toEqual({ ok: true, value: { echoed: { jobId: 'j1', rebuild: false, full: false } } })
    expect(await dispatch('session.save', { path: 'a.ftsession', state: {} })).toEqual({
      ok: true,
      value: { echoed: { path: 'a.ftsession', state: { tabs: [], activeTab: null, grids: {}, ui: {} } } },
    })
  })

  it('turns thrown errors into error data, keeping FtError codes', async () => {
    const table = echoTable()
    table['feature.get'] = () => {
      throw new FtError('not_found', 'feature 9 does not exist')
    }
    table['features.list'] = () => {
      throw new TypeError('boom')
    }
    table['cache.status'] = async () => Promise.reject(new Error('async boom'))
    const { dispatch: d } = createDispatch(table)
    expect(await d('feature.get', { id: 9 })).toEqual({ ok: false, error: { code: 'not_found', message: 'feature 9 does not exist' } })
    expect(await d('features.list', {})).toEqual({ ok: false, error: { code: 'internal', message: 'boom' } })
    expect(await d('cache.status', {})).toEqual({ ok: false, error: { code: 'internal', message: 'async boom' } })
  })
})
