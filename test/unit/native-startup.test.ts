// The start-up check of main/index.ts, as test/unit/electron-main.test.ts tests the window (Electron
// mocked), with a better-sqlite3 whose binding fails to load the way it does in Electron when
// node_modules holds Node's build: the window must explain, and no workbench may start.
import { beforeAll, describe, expect, it, vi } from 'vitest'
import { resolve } from 'node:path'

const h = vi.hoisted(() => ({
  windows: [] as Array<{ options: Record<string, unknown>; events: Map<string, (...a: unknown[]) => void>; wc: Record<string, unknown>; loaded: string[] }>,
  ipc: [] as string[],
  errors: [] as string[],
  ready: null as null | Promise<void>,
  abiError:
    "The module '/repo/node_modules/better-sqlite3/build/Release/better_sqlite3.node'\n" +
    'was compiled against a different Node.js version using\nNODE_MODULE_VERSION 115. This version of Node.js requires\n' +
    'NODE_MODULE_VERSION 150. Please try re-compiling or re-installing\nthe module (for instance, using `npm rebuild` or `npm install`).',
}))

// What `new Database(...)` does when the addon it requires was built for another ABI.
vi.mock('better-sqlite3', () => ({
  default: class {
    constructor() {
      throw new Error(h.abiError)
    }
  },
}))

vi.mock('electron', () => {
  class BrowserWindow {
    webContents: Record<string, unknown>
    constructor(options: Record<string, unknown>) {
      const events = new Map<string, (...a: unknown[]) => void>()
      this.webContents = {
        openHandler: null as unknown,
        setWindowOpenHandler(fn: unknown) {
          this.openHandler = fn
        },
        on: (e: string, fn: (...a: unknown[]) => void) => events.set(`wc:${e}`, fn),
      }
      h.windows.push({ options, events, wc: this.webContents, loaded: [] })
    }
    once() {}
    on(e: string, fn: (...a: unknown[]) => void) {
      h.windows.at(-1)!.events.set(e, fn)
    }
    async loadFile(f: string) {
      h.windows.at(-1)!.loaded.push(f)
    }
    async loadURL(u: string) {
      h.windows.at(-1)!.loaded.push(u)
    }
  }
  let resolveReady!: () => void
  h.ready = new Promise<void>((r) => (resolveReady = r))
  return {
    app: {
      whenReady: () => Promise.resolve().then(() => resolveReady()),
      getPath: () => {
        throw new Error('the workbench must not start')
      },
      getAppPath: () => resolve('.'),
      isPackaged: false,
      on: () => {},
      quit: () => {},
    },
    BrowserWindow,
    ipcMain: { handle: (channel: string) => h.ipc.push(channel) },
    session: { defaultSession: { webRequest: { onHeadersReceived: () => {} }, setPermissionRequestHandler: () => {} } },
    shell: { openExternal: vi.fn() },
    dialog: {},
  }
})

beforeAll(async () => {
  vi.spyOn(console, 'error').mockImplementation((m: unknown) => void h.errors.push(String(m)))
  await import('../../main/index')
  await h.ready
  await vi.waitFor(() => expect(h.windows.length).toBe(1))
})

describe('start-up check (main/index.ts) with a SQLite binding that fails to load', () => {
  it('shows one sandboxed window without a preload, and starts no workbench', () => {
    const prefs = h.windows[0].options.webPreferences as Record<string, unknown>
    expect(prefs).toMatchObject({ contextIsolation: true, sandbox: true, nodeIntegration: false, webSecurity: true })
    expect(prefs.preload).toBeUndefined()
    expect(h.windows[0].options.title).toBe('Feature Tracer cannot start')
    expect(h.ipc).toEqual([])
  })

  it('renders a page that says what is wrong and the command that fixes it', () => {
    const url = h.windows[0].loaded[0]
    expect(url.startsWith('data:text/html;charset=utf-8,')).toBe(true)
    const html = decodeURIComponent(url.slice('data:text/html;charset=utf-8,'.length))
    expect(html).toContain('its SQLite module does not load')
    expect(html).toContain('NODE_MODULE_VERSION 150. Please try re-compiling')
    expect(html).toContain('<pre class="fix">npm run electron:native</pre>')
    expect(html).toContain('Not <code>npm rebuild</code>')
    expect(html).toMatch(/<meta http-equiv="Content-Security-Policy" content="default-src &#39;none&#39;;/)
    expect(html).not.toMatch(/<script/i)
  })

  it('keeps the page from navigating or opening windows, and says it on the terminal too', () => {
    const wc = h.windows[0].wc as { openHandler: (d: { url: string }) => { action: string } }
    expect(wc.openHandler({ url: 'https://example.org' })).toEqual({ action: 'deny' })
    const prevent = vi.fn()
    h.windows[0].events.get('wc:will-navigate')!({ preventDefault: prevent })
    expect(prevent).toHaveBeenCalled()
    expect(h.errors.join('\n')).toMatch(/better-sqlite3 does not load: [^]*\nFix: npm run electron:native$/)
  })
})
