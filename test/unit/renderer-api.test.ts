import { describe, expect, it, vi } from 'vitest'
import { reactive } from 'vue'
import { createBrowserHost, detectHost, NO_TOKEN_MESSAGE, takeServeToken, type BrowserHostDeps, type BrowserPage } from '../../renderer/api/host'
import { ApiError, call, installHost, onPush } from '../../renderer/api'
import type { FeatureTracerApi } from '../../common/ipc-channels'

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

const TOKEN = 'tok_0123456789abcdefghijklmnopqrstuvwxyz-AB'

function browserHost(fetch: BrowserHostDeps['fetch'], token: string | null = TOKEN) {
  return createBrowserHost({ fetch, EventSource: FakeEventSource, base: 'http://127.0.0.1:4321', token })
}

/** A page at `href` with its own sessionStorage and a history that records replaceState. */
function fakePage(href: string, stored = new Map<string, string>()) {
  const page = {
    location: { origin: new URL(href).origin, href },
    sessionStorage: { getItem: (k: string) => stored.get(k) ?? null, setItem: (k: string, v: string) => void stored.set(k, v) },
    history: {
      state: { restored: 1 },
      replaceState: vi.fn((_state: unknown, _unused: string, url?: string | URL | null) => {
        page.location.href = new URL(String(url), page.location.href).toString()
      }),
    },
  } satisfies BrowserPage
  return { page, stored }
}

describe('browser host (HTTP + SSE)', () => {
  it('POSTs the payload as JSON to /api/<channel> and returns the envelope', async () => {
    const fetch = fakeFetch(() => ({ ok: true, value: { jobId: 'j1' } }))
    const host = browserHost(fetch)
    const res = await host.call('cache.build', { jobId: 'j1', rebuild: true })
    expect(res).toEqual({ ok: true, value: { jobId: 'j1' } })
    const [url, init] = fetch.mock.calls[0]
    expect(url).toBe('http://127.0.0.1:4321/api/cache.build')
    expect(init?.method).toBe('POST')
    expect((init?.headers as Record<string, string>)['Content-Type']).toBe('application/json')
    expect(JSON.parse(String(init?.body))).toEqual({ jobId: 'j1', rebuild: true })
  })

  it('sends the token as a Bearer header on every call, and in the query of the event stream only', async () => {
    const fetch = fakeFetch(() => ({ ok: true, value: null }))
    const host = browserHost(fetch)
    await host.call('bundle.info', {})
    await host.call('features.list', {})
    for (const [, init] of fetch.mock.calls) expect((init?.headers as Record<string, string>).Authorization).toBe(`Bearer ${TOKEN}`)
    expect(fetch.mock.calls.every(([url]) => !url.includes('token'))).toBe(true)
    host.onPush('job.done', () => {})
    expect(FakeEventSource.last!.url).toBe(`http://127.0.0.1:4321/api/events?token=${TOKEN}`)
  })

  it('sends a small autosave as a keepalive request, which outlives a reloading page; nothing else, nor a big one', async () => {
    const fetch = fakeFetch(() => ({ ok: true, value: {} }))
    const host = browserHost(fetch)
    await host.call('session.autosave', { state: { tabs: [], activeTab: 'features' } } as never)
    await host.call('features.list', {})
    await host.call('session.autosave', { state: { tabs: [], activeTab: 'features', ui: { note: 'x'.repeat(70_000) } } } as never)
    expect(fetch.mock.calls.map(([, init]) => init?.keepalive)).toEqual([true, false, false])
  })

  it('answers HTTP 401 with an error that says to open the printed URL with its token', async () => {
    const host = browserHost(vi.fn(async () => ({ status: 401, json: async () => ({ ok: false, error: { code: 'unauthorized', message: 'x' } }) })))
    const res = await host.call('bundle.info', {})
    expect(res).toEqual({ ok: false, error: { code: 'io', message: NO_TOKEN_MESSAGE } })
    expect(NO_TOKEN_MESSAGE).toMatch(/open the URL printed by feature-tracer serve, with its \?token=/)
  })

  it('without a token, calls nothing and opens no stream, and says why', async () => {
    const fetch = fakeFetch(() => ({ ok: true, value: null }))
    FakeEventSource.last = null
    const host = browserHost(fetch, null)
    installHost(host)
    const err = await call('bundle.info', {}).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ApiError)
    expect((err as ApiError).message).toBe(NO_TOKEN_MESSAGE)
    host.onPush('job.done', () => {})
    expect(fetch).not.toHaveBeenCalled()
    expect(FakeEventSource.last).toBeNull()
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
    const stop = host.onPush('job.progress', progress)
    host.onPush('job.done', done)
    const es = FakeEventSource.last!
    expect(es.url).toBe(`http://127.0.0.1:4321/api/events?token=${TOKEN}`)
    es.emit('job.progress', { doneTokens: 5 })
    expect(progress).toHaveBeenCalledWith({ doneTokens: 5 })
    expect(done).not.toHaveBeenCalled()
    stop()
    es.emit('job.progress', { doneTokens: 6 })
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
    const host = detectHost({ api, ...fakePage('file:///index.html').page })
    expect(host.kind).toBe('electron')
    await host.call('job.cancel', { jobId: 'x' })
    expect(api.call).toHaveBeenCalledWith('job.cancel', { jobId: 'x' })
  })

  it('falls back to HTTP in a browser, with the token of the page URL', async () => {
    const fetch = fakeFetch(() => ({ ok: true, value: null }))
    const { page } = fakePage(`http://127.0.0.1:1/?token=${TOKEN}`)
    const host = detectHost(page, { fetch, EventSource: FakeEventSource })
    expect(host.kind).toBe('browser')
    await host.call('bundle.info', {})
    expect(fetch.mock.calls[0][0]).toBe('http://127.0.0.1:1/api/bundle.info')
    expect((fetch.mock.calls[0][1]?.headers as Record<string, string>).Authorization).toBe(`Bearer ${TOKEN}`)
    expect(() => detectHost(fakePage('http://x/').page)).toThrow(/no preload/)
  })
})

describe('takeServeToken', () => {
  it('takes the token from the URL, keeps it for a reload, and removes it from the address bar', () => {
    const { page, stored } = fakePage(`http://127.0.0.1:7373/?tab=2&token=${TOKEN}#f`)
    expect(takeServeToken(page)).toBe(TOKEN)
    expect(page.history.replaceState).toHaveBeenCalledWith({ restored: 1 }, '', '/?tab=2#f')
    expect(page.location.href).toBe('http://127.0.0.1:7373/?tab=2#f')
    expect([...stored.values()]).toEqual([TOKEN])
    // The reload: same tab (same sessionStorage), no query.
    const reload = fakePage(page.location.href, stored)
    expect(takeServeToken(reload.page)).toBe(TOKEN)
    expect(reload.page.history.replaceState).not.toHaveBeenCalled()
  })

  it('prefers a new URL token over a stored one, and is null with neither', () => {
    const { stored } = fakePage(`http://127.0.0.1:1/?token=old-${TOKEN}`)
    takeServeToken(fakePage(`http://127.0.0.1:1/?token=old-${TOKEN}`, stored).page)
    expect(takeServeToken(fakePage(`http://127.0.0.1:1/?token=${TOKEN}`, stored).page)).toBe(TOKEN)
    expect(takeServeToken(fakePage('http://127.0.0.1:1/?token=', stored).page)).toBe(TOKEN)
    expect(takeServeToken(fakePage('http://127.0.0.1:1/').page)).toBeNull()
  })

  it('works when storage throws (disabled storage): this load keeps the URL token', () => {
    const { page } = fakePage(`http://127.0.0.1:1/?token=${TOKEN}`)
    page.sessionStorage.setItem = () => {
      throw new Error('SecurityError')
    }
    page.sessionStorage.getItem = () => {
      throw new Error('SecurityError')
    }
    expect(takeServeToken(page)).toBe(TOKEN)
    expect(takeServeToken(fakePage('http://127.0.0.1:1/').page)).toBeNull()
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
    installHost(detectHost({ api, ...fakePage('file:///index.html').page }))
    const state = reactive({ tabs: [{ id: 'feature:1', kind: 'feature' }], activeTab: null, grids: {}, ui: {} })
    await call('session.autosave', { state })
    expect(seen[0]).toEqual({ state: { tabs: [{ id: 'feature:1', kind: 'feature' }], activeTab: null, grids: {}, ui: {} } })
    expect(seen[0]).not.toBe(state)
    expect(typeof onPush('job.done', () => {})).toBe('function')
  })
})
