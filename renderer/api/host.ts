// The one door between the page and the engine. In the Electron window the preload has put `window.api`
// on the page; in a browser (serve mode) the same interface is built from fetch + server-sent events
// against main/serve. Everything above renderer/api is unaware of which host it runs in.
import type { EventName, Result } from '../../main/ipc/contract'
import type { FeatureTracerApi } from '../../preload/api'

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
}

function transportError(message: string): Result<never> {
  return { ok: false, error: { code: 'io', message } }
}

/** The HTTP + SSE implementation of the preload's API, used when no preload is present. */
export function createBrowserHost(deps: BrowserHostDeps): Host {
  const listeners = new Map<string, Set<(payload: unknown) => void>>()
  let source: EventSourceLike | null = null

  // One stream for all pushes, opened on first use so that a page that never listens costs nothing.
  function ensureStream(): void {
    if (source) return
    source = new deps.EventSource(new URL('/api/events', deps.base).toString())
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
    let res: { status: number; json(): Promise<unknown> }
    try {
      res = await deps.fetch(new URL(`/api/${encodeURIComponent(channel)}`, deps.base).toString(), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(payload ?? {}),
      })
    } catch (err) {
      return transportError(`the workbench server is unreachable (${(err as Error).message})`)
    }
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

/** Picks the host: the preload's `window.api` when present, otherwise the loopback HTTP bridge. */
export function detectHost(
  win: { api?: FeatureTracerApi; location: { origin: string } },
  deps?: Omit<BrowserHostDeps, 'base'>,
): Host {
  if (win.api) {
    const api = win.api
    return { kind: 'electron', call: api.call, onPush: api.onPush }
  }
  if (!deps) throw new Error('no preload API and no fetch/EventSource to reach the workbench server')
  return createBrowserHost({ ...deps, base: win.location.origin })
}
