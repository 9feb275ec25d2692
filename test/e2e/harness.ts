// What the workspace e2e needs around the page: a built renderer, the real serve entry on a random
// loopback port with a throw-away cache and user-data folder, and Debian's Chromium (never a Playwright
// browser download).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import type { Channel, RequestIn, ResponseOf, Result } from '../../common/contract'

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
export const OUTPUT = join(ROOT, 'test/e2e/output')
/** The tiny bundle keeps CI fast; FT_E2E_BUNDLE=resources/demo runs the same test on the demo. */
export const BUNDLE = resolve(ROOT, process.env.FT_E2E_BUNDLE ?? 'test/fixtures/tiny')
export const CHROMIUM = process.env.FT_CHROMIUM ?? '/usr/bin/chromium'

function newestMtime(path: string): number {
  const st = statSync(path)
  if (!st.isDirectory()) return st.mtimeMs
  return Math.max(st.mtimeMs, ...readdirSync(path).map((n) => newestMtime(join(path, n))))
}

function rendererIsFresh(): boolean {
  const built = join(ROOT, 'out/renderer/index.html')
  const sources = ['renderer', 'common'].map((p) => join(ROOT, p))
  return existsSync(built) && statSync(built).mtimeMs >= Math.max(...sources.map(newestMtime))
}

/**
 * Builds with electron-vite when out/renderer is missing or older than the renderer's sources. vitest
 * runs e2e files in parallel processes; a lock folder (mkdir is atomic) lets one of them build.
 */
export async function ensureRendererBuilt(): Promise<void> {
  const lock = join(ROOT, 'out/.e2e-build-lock')
  mkdirSync(join(ROOT, 'out'), { recursive: true })
  for (;;) {
    if (rendererIsFresh()) return
    try {
      mkdirSync(lock)
      break
    } catch {
      // Another test file is building; a lock older than 5 minutes is left over from a killed run.
      if (Date.now() - statSync(lock, { throwIfNoEntry: false })!.mtimeMs > 300_000) rmSync(lock, { recursive: true, force: true })
      await new Promise((r) => setTimeout(r, 500))
    }
  }
  try {
    if (rendererIsFresh()) return
    const r = spawnSync(process.execPath, [join(ROOT, 'node_modules/electron-vite/bin/electron-vite.js'), 'build'], {
      cwd: ROOT,
      stdio: 'inherit',
      env: { ...process.env, ELECTRON_SKIP_BINARY_DOWNLOAD: '1' },
    })
    if (r.status !== 0) throw new Error(`electron-vite build failed (exit ${r.status})`)
  } finally {
    rmSync(lock, { recursive: true, force: true })
  }
}

export interface Serve {
  /** http://127.0.0.1:PORT/, without the token: the base of /api calls (send `authHeaders(token)`). */
  url: string
  /** The URL serve printed, with `?token=`: what a user opens, and what the page takes its token from. */
  launchUrl: string
  token: string
  tmp: string
  proc: ChildProcess
  log: () => string
  stop(): Promise<void>
}

/** The URL `feature-tracer serve` prints on stdout: http://127.0.0.1:PORT/?token=TOKEN. */
export const LAUNCH_URL = /(http:\/\/127\.0\.0\.1:\d+\/)\?token=([A-Za-z0-9_-]+)/

/** Headers for a direct call to serve's /api (what the page sends). */
export function authHeaders(token: string): Record<string, string> {
  return { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` }
}

/** Starts `main/transports/serve/cli.ts` (what `npm run serve` runs) and waits for the URL it prints. */
export async function startServe(): Promise<Serve> {
  const tmp = mkdtempSync(join(tmpdir(), 'ft-e2e-'))
  const proc = spawn(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'main/transports/serve/cli.ts'), '--bundle', BUNDLE, '--port', '0', '--cache', join(tmp, 'cache.sqlite'), '--user-data', join(tmp, 'user-data')],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FT_NO_BUILD: '1' } },
  )
  let out = ''
  proc.stdout!.on('data', (c) => (out += c))
  proc.stderr!.on('data', (c) => (out += c))
  const [launchUrl, url, token] = await new Promise<RegExpExecArray>((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start:\n${out}`)), 60_000)
    const check = () => {
      const m = LAUNCH_URL.exec(out)
      if (m) {
        clearTimeout(timer)
        resolveUrl(m)
      }
    }
    proc.stdout!.on('data', check)
    proc.on('exit', (code) => reject(new Error(`serve exited with ${code}:\n${out}`)))
  })
  return {
    url,
    launchUrl,
    token,
    tmp,
    proc,
    log: () => out,
    async stop() {
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once('exit', r))
        proc.kill('SIGTERM')
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))])
        if (proc.exitCode === null) proc.kill('SIGKILL')
      }
      rmSync(tmp, { recursive: true, force: true })
    },
  }
}

export async function launchChromium(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const profile = mkdtempSync(join(tmpdir(), 'ft-chromium-'))
  // launchPersistentContext is how Playwright takes a fresh --user-data-dir.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    acceptDownloads: true,
    viewport: { width: 1440, height: 900 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
  return {
    context,
    async close() {
      await context.close()
      rmSync(profile, { recursive: true, force: true })
    },
  }
}

/** RFC 4180 CSV (quoted fields, doubled quotes, newlines inside quotes). */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = []
  let row: string[] = []
  let field = ''
  let quoted = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"'
        i++
      } else if (c === '"') quoted = false
      else field += c
    } else if (c === '"') quoted = true
    else if (c === ',') {
      row.push(field)
      field = ''
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++
      row.push(field)
      rows.push(row)
      row = []
      field = ''
    } else field += c
  }
  if (field.length || row.length) {
    row.push(field)
    rows.push(row)
  }
  return rows
}

/**
 * A new page on the workbench at `url` (a launch URL, with its ?token=), once it has started; page errors
 * and console errors go into `errors`.
 */
export async function openWorkbenchPage(context: BrowserContext, url: string, errors: string[]): Promise<Page> {
  const page = await context.newPage()
  // CI shares two cores with other jobs; generous waits keep a slow machine from failing the test.
  page.setDefaultTimeout(60_000)
  page.setDefaultNavigationTimeout(90_000)
  page.on('pageerror', (e) => errors.push(String(e)))
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text())
  })
  await page.goto(url)
  await page.waitForSelector('.app[data-started="true"]')
  return page
}

/** A channel called directly on serve's /api, as the page calls it; a failure throws `channel: code: message`. */
export async function callServe<C extends Channel>(serve: Serve, channel: C, payload: RequestIn<C>): Promise<ResponseOf<C>> {
  const res = await fetch(new URL(`api/${channel}`, serve.url), { method: 'POST', headers: authHeaders(serve.token), body: JSON.stringify(payload) })
  const r = (await res.json()) as Result<ResponseOf<C>>
  if (!r.ok) throw new Error(`${channel}: ${r.error.code}: ${r.error.message}`)
  return r.value
}

/** serve, Chromium and a workbench page on it: what an e2e file starts before its tests. */
export interface Workbench {
  serve: Serve
  browser: { context: BrowserContext; close(): Promise<void> }
  page: Page
  /** The page's errors and console errors (a test expects none). */
  pageErrors: string[]
  stop(): Promise<void>
}

/** Starts serve and Chromium and opens the workbench page (the renderer must be built). */
export async function startWorkbench(): Promise<Workbench> {
  const serve = await startServe()
  let browser: Workbench['browser'] | undefined
  try {
    browser = await launchChromium()
    const pageErrors: string[] = []
    const page = await openWorkbenchPage(browser.context, serve.launchUrl, pageErrors)
    const opened = browser
    return {
      serve,
      browser: opened,
      page,
      pageErrors,
      async stop() {
        await opened.close()
        await serve.stop()
      },
    }
  } catch (err) {
    // What started is stopped here: the file's afterAll has no workbench to stop.
    await browser?.close()
    await serve.stop()
    throw err
  }
}
