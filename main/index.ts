// The Electron shell: app lifecycle and the one window. Everything else (bundles, cache, sessions) is in
// the Workbench, which answers the preload's calls through the same dispatch as serve mode and the CLI.
import { app, BrowserWindow, dialog, ipcMain, session, shell, utilityProcess, type IpcMainInvokeEvent } from 'electron'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { openDialogOptions, saveDialogOptions, type FileDialog } from './app/dialog'
import { createWorkbench, type Workbench } from './app/workbench'
import type { HostLauncher } from './jobs/launcher'
import type { FromHost } from './jobs/protocol'
import { bindingFile, currentRuntime, sqliteLoadError } from './native/sqlite'
import { FIX_COMMAND, pageUrl, sqliteProblemPage } from './native/startup-page'
import { lastAutosavedBundle } from './session/file'
import { CONTENT_SECURITY_POLICY } from './transports/serve/server'
import { IPC_CALL, IPC_PUSH } from '../common/ipc-channels'

const PRELOAD = fileURLToPath(new URL('../preload/index.cjs', import.meta.url))
const RENDERER_HTML = fileURLToPath(new URL('../renderer/index.html', import.meta.url))
const DEV_SERVER = process.env.ELECTRON_RENDERER_URL

let workbench: Workbench | null = null
let win: BrowserWindow | null = null

function demoBundleDir(): string {
  return app.isPackaged ? join(process.resourcesPath, 'demo') : join(app.getAppPath(), 'resources/demo')
}

/** The bundle to open: --bundle DIR, else the newest autosaved session's (if it still exists), else the demo. */
function initialBundleDir(userDataDir: string): string {
  const i = process.argv.indexOf('--bundle')
  if (i > 0 && process.argv[i + 1]) return process.argv[i + 1]
  // No autosave yet, or none we can read: the demo is the right start either way.
  const last = lastAutosavedBundle(userDataDir)
  return last && existsSync(last) ? last : demoBundleDir()
}

/** Only our own page may call the handler table (not a navigated-away or injected frame). */
function fromOurPage(e: IpcMainInvokeEvent): boolean {
  const url = e.senderFrame?.url ?? ''
  return e.sender === win?.webContents && (DEV_SERVER ? url.startsWith(DEV_SERVER) : url.startsWith('file://'))
}

/** Each window shows one page of ours: links open in the user's browser, and the page never navigates. */
function confine(w: BrowserWindow): void {
  w.webContents.setWindowOpenHandler(({ url }) => {
    if (/^https?:\/\//.test(url)) void shell.openExternal(url)
    return { action: 'deny' }
  })
  w.webContents.on('will-navigate', (e) => e.preventDefault())
  w.on('closed', () => {
    if (win === w) win = null
  })
}

/** Instead of the workbench, when better-sqlite3 cannot load: a page that says why and what fixes it. */
function createProblemWindow(html: string): BrowserWindow {
  const w = new BrowserWindow({
    width: 860,
    height: 640,
    title: 'Feature Tracer cannot start',
    backgroundColor: '#ffffff',
    webPreferences: { contextIsolation: true, sandbox: true, nodeIntegration: false, webSecurity: true, spellcheck: false, disableBlinkFeatures: 'Auxclick' },
  })
  confine(w)
  void w.loadURL(pageUrl(html))
  return w
}

function createWindow(wb: Workbench): BrowserWindow {
  const w = new BrowserWindow({
    width: 1440,
    height: 900,
    minWidth: 900,
    minHeight: 600,
    show: false,
    title: 'Feature Tracer',
    backgroundColor: '#ffffff',
    webPreferences: {
      preload: PRELOAD,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      webSecurity: true,
      spellcheck: false,
      // A middle click would open a link in a new window without the window-open handler's say.
      disableBlinkFeatures: 'Auxclick',
    },
  })
  w.once('ready-to-show', () => w.show())
  confine(w)
  const unsubscribe = wb.subscribe((event, payload) => {
    if (!w.isDestroyed()) w.webContents.send(IPC_PUSH, event, payload)
  })
  w.on('closed', unsubscribe)
  if (DEV_SERVER) void w.loadURL(DEV_SERVER)
  else void w.loadFile(RENDERER_HTML)
  return w
}

/** Native dialogs for the dialog.* channels, modal to the window. */
const fileDialog: FileDialog = {
  async pick(req) {
    if (req.mode === 'save') {
      const options = saveDialogOptions(req)
      const r = win ? await dialog.showSaveDialog(win, options) : await dialog.showSaveDialog(options)
      return r.canceled || !r.filePath ? null : r.filePath
    }
    const options = openDialogOptions(req)
    const r = win ? await dialog.showOpenDialog(win, options) : await dialog.showOpenDialog(options)
    return r.canceled || r.filePaths.length === 0 ? null : r.filePaths[0]
  },
}

/**
 * The compute process and each job's process as Electron utility processes (main/jobs/launcher.ts): a
 * native abort there ends only that process, which the Workbench reports and restarts.
 */
const utilityLauncher: HostLauncher = (entry, name) => {
  // The app runs from the electron-vite build, so `entry` is compute-host.js next to this file.
  const child = utilityProcess.fork(entry.path, [], { serviceName: name, stdio: 'inherit' })
  let exited = false
  return {
    get pid() {
      return child.pid
    },
    send: (message) => {
      if (!exited) child.postMessage(message)
    },
    onMessage: (listener) => void child.on('message', (message: unknown) => listener(message as FromHost)),
    onExit: (listener) =>
      void child.once('exit', (code: number) => {
        exited = true
        listener(`exit code ${code}`)
      }),
    kill: () => void child.kill(),
  }
}

/** better-sqlite3 must load before the Workbench opens its cache: under Electron it needs a build for
 *  Electron's ABI (main/native/sqlite.ts). Without one, the window explains instead of failing blank. */
function showSqliteProblem(): boolean {
  const error = sqliteLoadError()
  if (!error) return false
  const runtime = currentRuntime()
  console.error(`Feature Tracer: better-sqlite3 does not load: ${error}\nFix: ${FIX_COMMAND}`)
  const page = sqliteProblemPage({ error, runtime, expected: bindingFile(runtime), packaged: app.isPackaged })
  win = createProblemWindow(page)
  app.on('activate', () => {
    if (!win) win = createProblemWindow(page)
  })
  return true
}

async function start(): Promise<void> {
  await app.whenReady()
  // The file:// page carries the CSP in a meta tag; the header covers the dev server and anything else.
  session.defaultSession.webRequest.onHeadersReceived((details, callback) => {
    if (DEV_SERVER) return callback({ responseHeaders: details.responseHeaders })
    callback({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [CONTENT_SECURITY_POLICY] } })
  })
  session.defaultSession.setPermissionRequestHandler((_wc, _permission, grant) => grant(false))
  // CSV exports reach main as downloads of a blob: URL. With no save path set, Electron's default
  // will-download behaviour is the native save dialog, which is what the export should show.
  if (showSqliteProblem()) return

  const userDataDir = app.getPath('userData')
  // The compute process starts with each bundle: the status bar names its provider at once, and the first
  // trace finds the weights loaded.
  const wb = createWorkbench({ userDataDir, bundleDir: initialBundleDir(userDataDir), dialog: fileDialog, compute: { launcher: utilityLauncher }, startComputeOnOpen: true })
  workbench = wb

  ipcMain.handle(IPC_CALL, (e, channel: unknown, payload: unknown) => {
    if (!fromOurPage(e)) return { ok: false, error: { code: 'internal', message: 'call from an unknown frame refused' } }
    return wb.dispatch(String(channel), payload)
  })

  win = createWindow(wb)
  app.on('activate', () => {
    if (!win) win = createWindow(wb)
  })
}

app.on('window-all-closed', () => {
  if (process.platform !== 'darwin') app.quit()
})

let quitting = false
app.on('will-quit', (e) => {
  if (quitting || !workbench) return
  // Let a running cache build stop cleanly (its committed chunks stay) before the process exits.
  e.preventDefault()
  quitting = true
  void workbench.close().finally(() => app.quit())
})

void start()
