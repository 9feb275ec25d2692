// The one door between the page and the engine. In the Electron window the preload has put `window.api`
// on the page; in a browser (serve mode) the same interface is built from fetch + server-sent events
// against main/transports/serve. Everything above renderer/api is unaware of which host it runs in.
import type { EventName, Result } from '../../common/contract'
import type { FeatureTracerApi } from '../../common/ipc-channels'

export interface Host extends FeatureTracerApi {
  kind: 'electron' | 'browser'
}

interface EventSourceLike {
  onmessage: ((ev: { data: string }) => void) | null
  onerror: ((ev: unknown) => void) | null
  close(): void
}

export interface BrowserHostDeps {
  fetch: (input: string, init?: RequestInit) => Promise<{ status: number; json(): Promise<unknown> }>
  EventSource: new (url: string) => EventSourceLike
  /** Origin of the bridge, e.g. location.origin. */
  base: string
  /** Serve mode's per-launch token (takeServeToken); null when the page was opened without it. */
  token: string | null
}

/** What the browser host needs of the page to find its token: its URL, a per-tab store, the history. */
export interface BrowserPage {
  location: { origin: string; href: string }
  sessionStorage: Pick<Storage, 'getItem' | 'setItem'>
  history: Pick<History, 'replaceState' | 'state'>
}

const TOKEN_KEY = 'feature-tracer.serve-token'
export const NO_TOKEN_MESSAGE =
  'the workbench server refused this page: open the URL printed by feature-tracer serve, with its ?token= (a restarted server has a new token)'

/**
 * Serve mode's token, from the page's own `?token=` (printed by feature-tracer serve). It is kept in
 * sessionStorage so that a reload without the query still works, and removed from the address bar so
 * that history, bookmarks and screenshots do not carry it.
 */
export function takeServeToken(page: BrowserPage): string | null {
  const url = new URL(page.location.href)
  const fromUrl = url.searchParams.get('token')
  if (fromUrl !== null) {
    url.searchParams.delete('token')
    page.history.replaceState(page.history.state, '', `${url.pathname}${url.search}${url.hash}`)
    if (fromUrl) {
      try {
        page.sessionStorage.setItem(TOKEN_KEY, fromUrl)
      } catch {
        // storage disabled: this load still works, a reload will ask for the URL again
      }
      return fromUrl
    }
  }
  try {
    return page.sessionStorage.getItem(TOKEN_KEY)
  } catch {
    return null
  }
}

/** Under the browsers' 64 KiB cap on a keepalive request's body (counted in UTF-16 units: a margin for multi-byte text). */
const KEEPALIVE_MAX_BYTES = 30_000

function transportError(message: string): Result<never> {
  return { ok: false, error: { code: 'io', message } }
}

/** The HTTP + SSE implementation of the preload's API, used when no preload is present. */
export function createBrowserHost(deps: BrowserHostDeps): Host {
  const listeners = new Map<string, Set<(payload: unknown) => void>>()
  let source: EventSourceLike | null = null

  // One stream for all pushes, opened on first use so that a page that never listens costs nothing.
  // EventSource cannot send headers: the stream alone takes the token in its query.
  function ensureStream(): void {
    if (source || !deps.token) return
    const url = new URL('/api/events', deps.base)
    url.searchParams.set('token', deps.token)
    source = new deps.EventSource(url.toString())
    source.onmessage = (ev) => {
      let msg: { event: string; payload: unknown }
      try {
        msg = JSON.parse(ev.data)
      } catch {
        return
      }
      listeners.get(msg.event)?.forEach((cb) => cb(msg.payload))
    }
    // EventSource reconnects by itself; an error here is only the gap before it does.
    source.onerror = () => {}
  }

  const call: Host['call'] = async (channel, payload) => {
    if (!deps.token) return transportError(NO_TOKEN_MESSAGE)
    let res: { status: number; json(): Promise<unknown> }
    const body = JSON.stringify(payload ?? {})
    try {
      res = await deps.fetch(new URL(`/api/${encodeURIComponent(channel)}`, deps.base).toString(), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${deps.token}` },
        body,
        // The autosave a closing or reloading page sends (session store, on pagehide) must outlive the page;
        // browsers keep such a request only under 64 KiB (a larger state is sent plainly, and may be lost).
        keepalive: channel === 'session.autosave' && body.length < KEEPALIVE_MAX_BYTES,
      })
    } catch (err) {
      return transportError(`the workbench server is unreachable (${(err as Error).message})`)
    }
    if (res.status === 401) return transportError(NO_TOKEN_MESSAGE)
    try {
      return (await res.json()) as Awaited<ReturnType<Host['call']>>
    } catch {
      return transportError(`bad response from the workbench server (HTTP ${res.status})`)
    }
  }

  return {
    kind: 'browser',
    call,
    onPush(event: EventName, cb: (payload: never) => void) {
      ensureStream()
      let set = listeners.get(event)
      if (!set) listeners.set(event, (set = new Set()))
      const entry = cb as (payload: unknown) => void
      set.add(entry)
      return () => {
        set.delete(entry)
      }
    },
  }
}

/**
 * Picks the host: the preload's `window.api` when present, otherwise the loopback HTTP bridge with the
 * token of the page's URL.
 */
export function detectHost(win: BrowserPage & { api?: FeatureTracerApi }, deps?: Omit<BrowserHostDeps, 'base' | 'token'>): Host {
  if (win.api) {
    const api = win.api
    return { kind: 'electron', call: api.call, onPush: api.onPush }
  }
  if (!deps) throw new Error('no preload API and no fetch/EventSource to reach the workbench server')
  return createBrowserHost({ ...deps, base: win.location.origin, token: takeServeToken(win) })
}
