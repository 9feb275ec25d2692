import { describe, expect, it, vi } from 'vitest'
import { reactive } from 'vue'
import { createBrowserHost, detectHost, type BrowserHostDeps } from '../../renderer/api/host'
import { ApiError, call, installHost, onPush } from '../../renderer/api'
import type { FeatureTracerApi } from '../../preload/api'

class FakeEventSource {
  static last: FakeEventSource | null = null
  onmessage: ((ev: { data: string }) => void) | null = null
  onerror: ((ev: unknown) => void) | null = null
  constructor(readonly url: string) {
    FakeEventSource.last = this
  }
  close() {}
  emit(event: string, payload: unknown) {
    this.onmessage?.({ data: JSON.stringify({ event, payload }) })
  }
}

function fakeFetch(reply: (url: string, init?: RequestInit) => unknown) {
  return vi.fn(async (url: string, init?: RequestInit) => ({ status: 200, json: async () => reply(url, init) }))
}

function browserHost(fetch: BrowserHostDeps['fetch']) {
  return createBrowserHost({ fetch, EventSource: FakeEventSource, base: 'http://127.0.0.1:4321' })
}

describe('browser host (HTTP + SSE)', () => {
  it('POSTs the payload as JSON to /api/<channel> and returns the envelope', async () => {
    const fetch = fakeFetch(() => ({ ok: true, value: { jobId: 'j1' } }))
    const host = browserHost(fetch)
    const res = await host.call('cache.build', { rebuild: true })
    expect(res).toEqual({ ok: true, value: { jobId: 'j1' } })
    const [url, init] = fetch.mock.calls[0]
    expect(url).toBe('http://127.0.0.1:4321/api/cache.build')
    expect(init?.method).toBe('POST')
    expect((init?.headers as Record<string, string>)['Content-Type']).toBe('application/json')
    expect(JSON.parse(String(init?.body))).toEqual({ rebuild: true })
  })

  it('turns an unreachable server into error data instead of a rejection', async () => {
    const host = browserHost(vi.fn(async () => Promise.reject(new Error('ECONNREFUSED'))))
    const res = await host.call('bundle.info', {})
    expect(res.ok).toBe(false)
    if (!res.ok) expect(res.error.message).toMatch(/unreachable.*ECONNREFUSED/)
  })

  it('routes server-sent pushes to the listeners of that event only, until unsubscribed', () => {
    const host = browserHost(fakeFetch(() => null))
    const progress = vi.fn()
    const done = vi.fn()
    const stop = host.onPush('cache.progress', progress)
    host.onPush('cache.done', done)
    const es = FakeEventSource.last!
    expect(es.url).toBe('http://127.0.0.1:4321/api/events')
    es.emit('cache.progress', { doneTokens: 5 })
    expect(progress).toHaveBeenCalledWith({ doneTokens: 5 })
    expect(done).not.toHaveBeenCalled()
    stop()
    es.emit('cache.progress', { doneTokens: 6 })
    expect(progress).toHaveBeenCalledTimes(1)
    es.onmessage?.({ data: 'not json' })
  })
})

describe('detectHost', () => {
  it('uses the preload API when window.api exists', async () => {
    const api: FeatureTracerApi = {
      call: vi.fn(async () => ({ ok: true as const, value: { cancelled: true } })) as unknown as FeatureTracerApi['call'],
      onPush: vi.fn(() => () => {}),
    }
    const host = detectHost({ api, location: { origin: 'file://' } })
    expect(host.kind).toBe('electron')
    await host.call('cache.cancel', { jobId: 'x' })
    expect(api.call).toHaveBeenCalledWith('cache.cancel', { jobId: 'x' })
  })

  it('falls back to HTTP in a browser', () => {
    const host = detectHost({ location: { origin: 'http://127.0.0.1:1' } }, { fetch: fakeFetch(() => null), EventSource: FakeEventSource })
    expect(host.kind).toBe('browser')
    expect(() => detectHost({ location: { origin: 'x' } })).toThrow(/no preload/)
  })
})

describe('renderer/api call()', () => {
  it('unwraps values and rebuilds errors with their code', async () => {
    installHost(
      browserHost(
        fakeFetch((url) =>
          url.endsWith('/api/bundle.info')
            ? { ok: true, value: { name: 'tiny' } }
            : { ok: false, error: { code: 'cache_missing', message: 'build the cache first' } },
        ),
      ),
    )
    await expect(call('bundle.info', {})).resolves.toEqual({ name: 'tiny' })
    const err = await call('features.list', {}).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ApiError)
    expect((err as ApiError).code).toBe('cache_missing')
    expect((err as ApiError).channel).toBe('features.list')
  })

  it('strips Vue reactive proxies before the payload leaves the page', async () => {
    const seen: unknown[] = []
    const api: FeatureTracerApi = {
      call: (async (_c: string, p: unknown) => {
        seen.push(p)
        return { ok: true, value: null }
      }) as unknown as FeatureTracerApi['call'],
      onPush: () => () => {},
    }
    installHost(detectHost({ api, location: { origin: 'file://' } }))
    const state = reactive({ tabs: [{ id: 'feature:1', kind: 'feature' }], activeTab: null, grids: {}, ui: {} })
    await call('session.autosave', { state })
    expect(seen[0]).toEqual({ state: { tabs: [{ id: 'feature:1', kind: 'feature' }], activeTab: null, grids: {}, ui: {} } })
    expect(seen[0]).not.toBe(state)
    expect(typeof onPush('cache.done', () => {})).toBe('function')
  })
})
