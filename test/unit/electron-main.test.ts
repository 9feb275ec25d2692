// main/index.ts needs the Electron binary, which CI does not download; with 'electron' mocked, this
// checks what matters for security: one sandboxed, isolated window, a CSP header, no navigation or
// new windows, and the preload's calls reaching the handler table only from our own page. Here
// better-sqlite3 loads, so the start-up check passes; native-startup.test.ts has a binding that does not.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { IPC_CALL, IPC_PUSH } from '../../common/ipc-channels'

const h = vi.hoisted(() => ({
  windows: [] as Array<{ options: Record<string, unknown>; events: Map<string, (...a: unknown[]) => void>; wc: Record<string, unknown>; loaded: string[] }>,
  ipc: new Map<string, (...a: unknown[]) => unknown>(),
  headers: null as null | ((details: unknown, cb: (r: unknown) => void) => void),
  permission: null as null | ((...a: unknown[]) => void),
  userData: '',
  ready: null as null | Promise<void>,
  dialogs: [] as Array<[string, unknown, Record<string, unknown>]>,
  forks: [] as Array<{ path: string; args: string[]; options: Record<string, unknown>; pid: number | undefined }>,
}))

vi.mock('electron', async () => {
  // utilityProcess as Electron documents it (postMessage, 'message', 'exit' with a code, kill, pid), over a
  // forked Node process; the host's bootstrap then talks to it through its Node IPC channel.
  const { fork } = await import('node:child_process')
  const { createRequire } = await import('node:module')
  const { pathToFileURL } = await import('node:url')
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href
  const utilityProcess = {
    fork(path: string, args: string[], options: Record<string, unknown>) {
      const child = fork(path, args, { execArgv: path.endsWith('.ts') ? ['--import', tsx] : [], serialization: 'advanced', stdio: 'inherit' })
      h.forks.push({ path, args, options, pid: child.pid })
      return {
        get pid() {
          return child.pid
        },
        postMessage: (message: unknown) => void child.send(message as never),
        on(event: string, fn: (...a: unknown[]) => void) {
          if (event === 'message') child.on('message', fn)
          return this
        },
        once(event: string, fn: (code: number) => void) {
          if (event === 'exit') child.once('exit', (code, signal) => fn(code ?? (signal === 'SIGKILL' ? 9 : 1)))
          return this
        },
        kill: () => child.kill('SIGKILL'),
      }
    },
  }
  class BrowserWindow {
    webContents: Record<string, unknown>
    constructor(options: Record<string, unknown>) {
      const events = new Map<string, (...a: unknown[]) => void>()
      const sent: unknown[][] = []
      this.webContents = {
        sent,
        openHandler: null as unknown,
        setWindowOpenHandler(fn: unknown) {
          this.openHandler = fn
        },
        on: (e: string, fn: (...a: unknown[]) => void) => events.set(`wc:${e}`, fn),
        send: (...a: unknown[]) => sent.push(a),
      }
      h.windows.push({ options, events, wc: this.webContents, loaded: [] })
    }
    once() {}
    on(e: string, fn: (...a: unknown[]) => void) {
      h.windows.at(-1)!.events.set(e, fn)
    }
    isDestroyed() {
      return false
    }
    show() {}
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
      getPath: () => h.userData,
      getAppPath: () => resolve('.'),
      isPackaged: false,
      on: () => {},
      quit: () => {},
    },
    BrowserWindow,
    utilityProcess,
    ipcMain: { handle: (channel: string, fn: (...a: unknown[]) => unknown) => h.ipc.set(channel, fn) },
    session: {
      defaultSession: {
        webRequest: { onHeadersReceived: (fn: typeof h.headers) => (h.headers = fn) },
        setPermissionRequestHandler: (fn: typeof h.permission) => (h.permission = fn),
      },
    },
    shell: { openExternal: vi.fn() },
    dialog: {
      showOpenDialog: async (w: unknown, options: Record<string, unknown>) => {
        h.dialogs.push(['open', w, options])
        return { canceled: false, filePaths: ['/picked/bundle'] }
      },
      showSaveDialog: async (w: unknown, options: Record<string, unknown>) => {
        h.dialogs.push(['save', w, options])
        return { canceled: true, filePath: '' }
      },
    },
  }
})

beforeAll(async () => {
  h.userData = mkdtempSync(join(tmpdir(), 'ft-electron-'))
  // The activation cache goes to the user cache folder; keep it inside the test's folder.
  process.env.XDG_CACHE_HOME = join(h.userData, 'cache')
  process.argv.push('--bundle', resolve('test/fixtures/tiny'))
  await import('../../main/index')
  await h.ready
  await vi.waitFor(() => expect(h.windows.length).toBe(1))
})

afterAll(() => rmSync(h.userData, { recursive: true, force: true }))

describe('Electron shell (main/index.ts)', () => {
  it('opens one sandboxed, context-isolated window without Node, with the CJS preload', () => {
    const prefs = h.windows[0].options.webPreferences as Record<string, unknown>
    expect(prefs).toMatchObject({ contextIsolation: true, sandbox: true, nodeIntegration: false, webSecurity: true, disableBlinkFeatures: 'Auxclick' })
    expect(String(prefs.preload)).toMatch(/preload[\\/]index\.cjs$/)
    expect(h.windows[0].loaded[0]).toMatch(/renderer[\\/]index\.html$/)
  })

  it('adds the CSP header, denies permissions, new windows and navigation', () => {
    let headers: Record<string, string[]> = {}
    h.headers!({ responseHeaders: {} }, (r) => (headers = (r as { responseHeaders: Record<string, string[]> }).responseHeaders))
    expect(headers['Content-Security-Policy'][0]).toContain("default-src 'self'")
    expect(headers['Content-Security-Policy'][0]).not.toContain('unsafe-eval')
    let granted: boolean | null = null
    h.permission!(null, 'media', (g: boolean) => (granted = g))
    expect(granted).toBe(false)
    const wc = h.windows[0].wc as { openHandler: (d: { url: string }) => { action: string } }
    expect(wc.openHandler({ url: 'https://example.org' })).toEqual({ action: 'deny' })
    const prevent = vi.fn()
    h.windows[0].events.get('wc:will-navigate')!({ preventDefault: prevent })
    expect(prevent).toHaveBeenCalled()
  })

  it('answers the preload through the handler table, and only for its own page', async () => {
    expect([...h.ipc.keys()]).toEqual([IPC_CALL])
    const call = h.ipc.get(IPC_CALL)!
    const ours = { sender: h.windows[0].wc, senderFrame: { url: 'file:///app/out/renderer/index.html' } }
    const info = (await call(ours, 'bundle.info', {})) as { ok: boolean; value: { name: string } }
    expect(info.ok).toBe(true)
    expect(info.value.name).toMatch(/tiny/)
    expect(await call(ours, 'no.such.channel', {})).toMatchObject({ ok: false, error: { code: 'unknown_channel' } })
    const stranger = { sender: {}, senderFrame: { url: 'https://evil.example/' } }
    expect(await call(stranger, 'bundle.info', {})).toMatchObject({ ok: false })
  })

  it('answers dialog.open / dialog.save with native dialogs, modal to the window', async () => {
    const call = h.ipc.get(IPC_CALL)!
    const ours = { sender: h.windows[0].wc, senderFrame: { url: 'file:///app/out/renderer/index.html' } }
    expect(await call(ours, 'dialog.open', { target: 'bundle' })).toEqual({ ok: true, value: { path: '/picked/bundle' } })
    expect(h.dialogs[0][0]).toBe('open')
    expect(h.dialogs[0][2]).toMatchObject({ properties: ['openDirectory'] })
    expect(await call(ours, 'dialog.save', { target: 'session', defaultPath: '/tmp/a.ftsession' })).toEqual({ ok: true, value: { path: null } })
    expect(h.dialogs[1][2]).toMatchObject({ defaultPath: '/tmp/a.ftsession', filters: [{ extensions: ['ftsession'] }] })
  })

  it('pushes events to the window on one channel', async () => {
    const call = h.ipc.get(IPC_CALL)!
    const ours = { sender: h.windows[0].wc, senderFrame: { url: 'file:///app/out/renderer/index.html' } }
    await call(ours, 'cache.build', { jobId: 'build-1', rebuild: true })
    const sent = (h.windows[0].wc as { sent: unknown[][] }).sent
    await vi.waitFor(() => expect(sent.some((m) => m[0] === IPC_PUSH && m[1] === 'job.done')).toBe(true), { timeout: 30_000 })
    expect(sent.find((m) => m[1] === 'job.done')![2]).toMatchObject({ kind: 'cache.build', jobId: 'build-1', outcome: 'done' })
  }, 40_000)

  it('runs traces and jobs in utility processes, and answers after the compute process is killed', async () => {
    const call = h.ipc.get(IPC_CALL)!
    const ours = { sender: h.windows[0].wc, senderFrame: { url: 'file:///app/out/renderer/index.html' } }
    const trace = { point: { feature: 2, sample: 6, pos: 30 } }
    expect(await call(ours, 'trace.point', trace)).toMatchObject({ ok: true })
    const names = h.forks.map((f) => f.options.serviceName)
    expect(names).toEqual(expect.arrayContaining(['the cache build process', 'the compute process']))
    for (const f of h.forks) {
      expect(f.path).toMatch(/compute-host\.(ts|js)$/)
      expect(f.options.stdio).toBe('inherit')
    }
    const compute = h.forks.filter((f) => f.options.serviceName === 'the compute process').at(-1)!
    const scope = call(ours, 'trace.scope', trace)
    process.kill(compute.pid!, 'SIGKILL')
    const r = (await scope) as { ok: boolean; error?: { code: string; message: string } }
    // Killed before or while it answered: either way the window gets an answer, and the next one works.
    if (!r.ok) expect(r.error).toEqual({ code: 'busy', message: 'the compute process stopped (exit code 9); it was restarted, ask again' })
    expect(await call(ours, 'trace.point', trace)).toMatchObject({ ok: true })
    expect(h.forks.filter((f) => f.options.serviceName === 'the compute process').length).toBe(2)
  }, 60_000)
})
