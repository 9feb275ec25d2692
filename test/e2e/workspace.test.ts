// The workbench end to end, as a researcher uses it, in Debian's Chromium through serve mode and the
// real handler table: open the bundle, build the cache (watching the bar, cancelling once), sort the
// features, open a feature, check the seed's columns and their colours, export CSV and compare it with the
// grid's data, label, save, reload, restore, and refuse a corrupt and a future-version session file.
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadavg } from 'node:os'
import type { BrowserContext, Page } from 'playwright-core'
import type { ActivationRow, Channel, RequestIn, ResponseOf, Result } from '../../common/contract'
import { colourScale, scaleStyle } from '../../renderer/components/grid/coolwarm'
import { visibleToken } from '../../common/text'
import { compareSummaries } from './summary-compare'
import { BUNDLE, OUTPUT, authHeaders, ensureRendererBuilt, launchChromium, openWorkbenchPage, parseCsv, startServe, type Serve } from './harness'

/** expect.poll waits one second by default; a loaded CI machine needs longer. */
function poll<T>(fn: () => T | Promise<T>) {
  return expect.poll(fn, { timeout: 30_000 })
}

/** The demo corpus (1M tokens) takes minutes on two cores; the tiny one seconds. */
const BUILD_TIMEOUT_MS = Number(process.env.FT_E2E_BUILD_TIMEOUT_MS) || (process.env.FT_E2E_BUNDLE ? 30 * 60_000 : 120_000)
// The callbacks given to page.evaluate run in Chromium; this file is type-checked with Node's config,
// which has no DOM library, so the few page globals they use are declared here, for this module only.
interface PageElement {
  textContent: string | null
  getAttribute(name: string): string | null
  closest(selector: string): PageElement | null
  querySelector(selector: string): PageElement | null
}
declare const window: { __bar: string[] }
declare const document: { querySelector(selector: string): PageElement | null }
declare function getComputedStyle(el: unknown): { backgroundColor: string; color: string }
declare class MutationObserver {
  constructor(cb: () => void)
  observe(target: PageElement, options: Record<string, boolean>): void
}

const SEED_COLUMNS = ['str_tokens', 'unique_token', 'context', 'batch', 'pos', 'label', 'activation']
/** The CSV holds the token's id beside its text (export only). */
const CSV_COLUMNS = ['str_tokens', 'token_id', 'unique_token', 'context', 'batch', 'pos', 'label', 'activation']

vi.setConfig({ testTimeout: 180_000 })

let serve: Serve
let browser: { context: BrowserContext; close(): Promise<void> }
let page: Page
const pageErrors: string[] = []
let featureId = -1
let sessionPath = ''

async function shot(name: string) {
  await page.screenshot({ path: join(OUTPUT, `${name}.png`) })
}

/** A grid's rendered cells of one column, in display order (ag-grid renders rows out of DOM order). */
async function columnTexts(gridId: string, colId: string): Promise<string[]> {
  return page.$$eval(`[data-grid-id="${gridId}"] .ag-row .ag-cell[col-id="${colId}"]`, (cells) =>
    cells
      .map((c) => ({ i: Number(c.closest('.ag-row')?.getAttribute('row-index')), t: (c.textContent ?? '').trim() }))
      .sort((a, b) => a.i - b.i)
      .map((x) => x.t),
  )
}

async function cellColours(gridId: string, colId: string): Promise<Array<{ text: string; bg: string; color: string }>> {
  return page.$$eval(`[data-grid-id="${gridId}"] .ag-row .ag-cell[col-id="${colId}"]`, (cells) =>
    cells
      .map((c) => {
        const s = getComputedStyle(c)
        return { i: Number(c.closest('.ag-row')?.getAttribute('row-index')), text: (c.textContent ?? '').trim(), bg: s.backgroundColor, color: s.color }
      })
      .sort((a, b) => a.i - b.i)
      .map(({ text, bg, color }) => ({ text, bg, color })),
  )
}

function rgb(css: string): number[] {
  return (css.match(/\d+/g) ?? []).slice(0, 3).map(Number)
}

async function exportCsvFile(gridId: string): Promise<string> {
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.click(`[data-grid-id="${gridId}"] [data-action="export"]`),
  ])
  return (await download.path())!
}

async function exportCsv(gridId: string): Promise<string[][]> {
  const text = readFileSync(await exportCsvFile(gridId), 'utf8')
  expect(text.charCodeAt(0)).not.toBe(0xfeff) // UTF-8 without a BOM (a setting adds one for Excel)
  return parseCsv(text)
}

/** The handler table directly, over the same HTTP bridge the page uses. */
async function ipc<C extends Channel>(channel: C, payload: RequestIn<C>): Promise<ResponseOf<C>> {
  const res = await fetch(new URL(`api/${channel}`, serve.url), { method: 'POST', headers: authHeaders(serve.token), body: JSON.stringify(payload) })
  const r = (await res.json()) as Result<ResponseOf<C>>
  if (!r.ok) throw new Error(`${channel}: ${r.error.code}: ${r.error.message}`)
  return r.value
}

async function sortBy(gridId: string, colId: string, dir: 'asc' | 'desc') {
  const header = page.locator(`[data-grid-id="${gridId}"] .ag-header-cell[col-id="${colId}"]`)
  for (let i = 0; i < 3 && (await header.getAttribute('aria-sort')) !== (dir === 'asc' ? 'ascending' : 'descending'); i++) {
    await header.locator('.ag-header-cell-label').click()
  }
  expect(await header.getAttribute('aria-sort')).toBe(dir === 'asc' ? 'ascending' : 'descending')
}

async function openSession(path: string) {
  await page.click('[data-action="session-open"]')
  await page.fill('[role="dialog"] [data-field="path"]', path)
  await page.click('[role="dialog"] [data-action="confirm"]')
}

/** A bundle that ships its summary (the demo) shows its features before any build. */
const SHIPPED = existsSync(join(BUNDLE, 'summary.sqlite.br'))
/** From starting serve to the features on screen, less Chromium's own start (a user's browser is running). */
const firstView = { serveReadyMs: 0, pageToFeaturesMs: 0 }

beforeAll(async () => {
  mkdirSync(OUTPUT, { recursive: true })
  await ensureRendererBuilt()
  if (!process.env.FT_E2E_BUNDLE) {
    // Small, slowed chunks: the tiny corpus then builds in ~2 s with a dozen progress pushes, so there
    // is a bar to watch and a build to cancel. A real bundle has enough chunks of its own.
    process.env.FT_BUILD_CHUNK_SEQS ??= '2'
    process.env.FT_BUILD_PAUSE_MS ??= '150'
  }
  const t0 = performance.now()
  serve = await startServe()
  firstView.serveReadyMs = performance.now() - t0
  browser = await launchChromium()
  const t1 = performance.now()
  page = await openWorkbenchPage(browser.context, serve.launchUrl, pageErrors)
  if (SHIPPED) await page.waitForSelector('[data-grid-id="features"] .ag-row', { timeout: 60_000 })
  firstView.pageToFeaturesMs = performance.now() - t1
}, 300_000)

afterEach(async ({ task }) => {
  if (task.result?.state === 'fail') await shot(`failed-${task.name.replace(/\W+/g, '-')}`).catch(() => {})
})

afterAll(async () => {
  await browser?.close()
  await serve?.stop()
})

describe('workspace in the browser (serve mode)', () => {
  it('opens the bundle and shows it in the status bar', async () => {
    await poll(() => page.textContent('[data-field="status-bundle"]')).toMatch(/tiny|gelu|demo/i)
    // The execution provider from the moment the bundle opens (the compute process starts with it), before
    // any trace or build: 'starting…' until it is ready, then the provider it runs on, as main names it.
    expect(await page.textContent('[data-field="status-provider"]')).toMatch(/^EP: (starting…|cpu|cuda|dml|coreml)$/)
    await poll(() => page.textContent('[data-field="status-provider"]')).toMatch(/^EP: (cpu|cuda|dml|coreml)$/)
    expect(await page.textContent('[data-field="status-provider"]')).toBe(`EP: ${(await ipc('bundle.info', {})).provider}`)
    if (SHIPPED) return // the next test
    // No cache yet: the app sends the user to the Cache tab.
    await poll(() => page.getAttribute('[data-tab="cache"]', 'aria-selected')).toBe('true')
    expect(await page.textContent('[data-field="cache-state"]')).toMatch(/missing|partial|stale/)
  })

  it.runIf(SHIPPED)('shows every feature of a bundle that ships its summary at once, with no build', async () => {
    const total = firstView.serveReadyMs + firstView.pageToFeaturesMs
    writeFileSync(join(OUTPUT, 'first-view.json'), JSON.stringify({ ...firstView, totalMs: total }, null, 2))
    console.log(`first view: serve ready ${firstView.serveReadyMs.toFixed(0)} ms, page to features ${firstView.pageToFeaturesMs.toFixed(0)} ms`)
    expect(await page.getAttribute('[data-tab="features"]', 'aria-selected')).toBe('true')
    const info = await ipc('bundle.info', {})
    await poll(() => page.textContent('[data-grid-id="features"] .grid-count')).toContain(info.sae.d_sae.toLocaleString('en-US'))
    expect(await page.textContent('[data-field="status-cache"]')).toContain('shipped summary')
    await page.click('[data-grid-id="features"] .ag-row[row-index="0"] .ag-cell[col-id="id"]')
    await page.keyboard.press('Enter')
    await page.waitForSelector('[data-grid-id$=":top"] .ag-row')
    await page.click('[data-tab="cache"]')
    expect(await page.textContent('[data-field="cache-state"]')).toMatch(/missing/)
    expect(await page.textContent('[data-field="cache-shipped"]')).toContain('work now, with no build')
    expect(await page.isEnabled('[data-action="build"]')).toBe(true)
    // The goal is 5 s (issue 13), met on an idle machine; a loaded one (CI's two cores, other jobs) is let
    // off to 15 s. Last, so that a slow start does not keep the checks above from running.
    expect(total).toBeLessThan(loadavg()[0] < 1 ? 5_000 : 15_000)
  })

  it('builds the cache with a moving progress bar, and cancels and resumes it', async () => {
    // Record every state of the bar: pushes can be quicker than polling.
    await page.evaluate(() => {
      const w = window
      w.__bar = []
      const bar = document.querySelector('[role="progressbar"]')!
      const panel = bar.closest('.cache-panel')!
      new MutationObserver(() => {
        w.__bar.push(`${bar.getAttribute('aria-valuenow')}|${panel.querySelector('[data-field="rate"]')?.textContent}|${panel.querySelector('[data-field="eta"]')?.textContent}`)
      }).observe(panel, { subtree: true, attributes: true, characterData: true, childList: true })
    })
    await page.click('[data-action="build"]')
    await page.waitForSelector('[data-action="cancel"]')
    await poll(() => page.getAttribute('[role="progressbar"]', 'aria-valuenow')).not.toBe('0')
    await shot('01-cache-building')
    await page.click('[data-action="cancel"]')
    await page.waitForSelector('text=Build cancelled')
    expect(await page.textContent('[data-field="cache-state"]')).toMatch(/partial/)

    await page.click('[data-action="build"]') // resumes from the committed chunks
    await page.waitForSelector('text=Cache built.', { timeout: BUILD_TIMEOUT_MS })
    expect(await page.getAttribute('[role="progressbar"]', 'aria-valuenow')).toBe('100')
    const bar = await page.evaluate(() => window.__bar)
    const values = [...new Set(bar.map((b) => Number(b.split('|')[0])))]
    expect(values.filter((v) => v > 0 && v < 100).length).toBeGreaterThan(2)
    expect(bar.some((b) => /\d[\d,]* tokens\/s\|ETA \d/.test(b))).toBe(true)
    expect(await page.textContent('[data-field="status-cache"]')).toContain('ready')
    await poll(() => page.textContent('[data-field="status-provider"]')).toMatch(/EP: (cpu|cuda|dml|coreml)/)
    await shot('02-cache-ready')
  }, BUILD_TIMEOUT_MS + 60_000)

  it.runIf(SHIPPED)('builds the summary the bundle ships (checked row by row)', async () => {
    const info = await ipc('bundle.info', {})
    const state = await ipc('cache.status', {})
    expect([state.state, state.fullTable]).toEqual(['ready', false])
    const shipped = join(serve.tmp, `${info.hash}.shipped.sqlite`)
    expect(existsSync(shipped)).toBe(true)
    const c = compareSummaries(state.path, shipped)
    writeFileSync(join(OUTPUT, 'shipped-summary-check.json'), JSON.stringify(c, null, 2))
    console.log(
      `shipped summary vs fresh build: ${c.identicalFeatureRows}/${c.features} feature rows, ${c.identicalNoBosRows}/${c.noBosFeatures} non-BOS rows and ${c.identicalTokenRows}/${c.tokens} token rows identical`,
    )
    expect(c.features).toBe(info.sae.d_sae)
    expect(c.noBosFeatures).toBeGreaterThan(0)
    expect(c.problems).toEqual([])
  })

  it('sorts the features browser', async () => {
    await page.click('[data-tab="features"]')
    await page.waitForSelector('[data-grid-id="features"] .ag-row')
    await sortBy('features', 'max', 'desc')
    const max = (await columnTexts('features', 'max')).map(Number)
    expect(max.length).toBeGreaterThan(5)
    expect([...max].sort((a, b) => b - a)).toEqual(max)
    featureId = Number((await columnTexts('features', 'id'))[0])
    await shot('03-features-sorted')
  })

  it("opens a feature with the seed columns, activations shaded from white at 0 to the feature's maximum", async () => {
    // Keyboard: arrows move between rows, Enter opens.
    await page.click(`[data-grid-id="features"] .ag-row[row-index="1"] .ag-cell[col-id="max"]`)
    await page.keyboard.press('ArrowUp')
    await page.waitForSelector(`[data-grid-id="features"] .ag-row[row-index="0"] .ag-cell-focus`)
    await page.keyboard.press('Enter')
    const grid = `feature:${featureId}:top`
    await page.waitForSelector(`[data-grid-id="${grid}"] .ag-row`)
    expect(await page.getAttribute(`[data-tab="feature:${featureId}"]`, 'aria-selected')).toBe('true')
    const headers = await page.$$eval(`[data-grid-id="${grid}"] .ag-header-cell`, (hs) =>
      hs.map((h) => ({ id: h.getAttribute('col-id'), text: (h.querySelector('.ag-header-cell-text')?.textContent ?? '').trim(), x: h.getBoundingClientRect().x })).sort((a, b) => a.x - b.x),
    )
    expect(headers.map((h) => h.id)).toEqual(SEED_COLUMNS)
    expect(headers.map((h) => h.text)).toEqual(SEED_COLUMNS)

    const csv = await exportCsv(grid)
    expect(csv[0]).toEqual(CSV_COLUMNS)
    const acts = csv.slice(1).map((r) => Number(r[7]))
    const [min, max] = [Math.min(...acts), Math.max(...acts)]
    const scale = colourScale('sequential', acts, 'zero', max) // the top activation is the feature's maximum
    const cells = await cellColours(grid, 'activation')
    expect(Number(cells[0].text)).toBeCloseTo(max, 4) // sorted by activation, highest first
    for (const c of cells) {
      const want = rgb(scaleStyle(Number(c.text), scale).backgroundColor)
      rgb(c.bg).forEach((v, k) => expect(Math.abs(v - want[k])).toBeLessThanOrEqual(3))
    }
    expect(rgb(cells[0].bg)).toEqual([165, 15, 21])
    await sortBy(grid, 'activation', 'asc')
    const low = await cellColours(grid, 'activation')
    expect(rgb(low[0].bg)).toEqual(rgb(scaleStyle(min, scale).backgroundColor))
    expect(rgb(low[0].bg)[0]).toBeGreaterThanOrEqual(rgb(low[0].bg)[2]) // a low activation is pale, never blue
    await sortBy(grid, 'activation', 'desc')
    await page.waitForSelector(`[data-feature-id="${featureId}"] .histogram rect`)
    await shot('04-feature-tab')
  })

  it("exports CSV with the grid's data: raw numbers, token text and id, parsed as CSV", async () => {
    const grid = `feature:${featureId}:top`
    const file = await exportCsvFile(grid)
    const text = readFileSync(file, 'utf8')
    const csv = parseCsv(text)
    expect(text.charCodeAt(0)).not.toBe(0xfeff)
    // Python's csv module (what a researcher loads it with) reads the same header and rows, no BOM in a name.
    const py = spawnSync('/usr/bin/python3', ['-c', 'import csv,json,sys; print(json.dumps(list(csv.reader(open(sys.argv[1], encoding="utf-8", newline="")))))', file], { encoding: 'utf8' })
    expect(py.status).toBe(0)
    expect(JSON.parse(py.stdout)).toEqual(csv)
    expect(csv[0]).toEqual(CSV_COLUMNS)
    const col = (name: string) => CSV_COLUMNS.indexOf(name)
    expect(csv.length - 1).toBe(Number((await page.textContent(`[data-grid-id="${grid}"] .grid-count`))!.split('/')[1].replace(/\D/g, '')))
    // The grid's data, from the same handler: every CSV row is one of its rows, with every number exact.
    const data = new Map<string, ActivationRow>((await ipc('feature.get', { id: featureId, topK: 100 })).top.map((r) => [r.label, r]))
    const shown = await Promise.all(SEED_COLUMNS.map((c) => columnTexts(grid, c)))
    for (const [i, row] of csv.slice(1).entries()) {
      const r = data.get(row[col('label')])!
      expect(r).toBeDefined()
      expect(Number(row[col('activation')])).toBe(r.activation) // full precision, no rounding
      expect(Number(row[col('token_id')])).toBe(r.token_id)
      expect(Number(row[col('batch')])).toBe(r.batch)
      expect(Number(row[col('pos')])).toBe(r.pos)
      expect(visibleToken(row[col('str_tokens')])).toBe(r.str_tokens) // the text itself, not ·/↩/→
      expect(row[col('unique_token')]).toBe(r.unique_token)
      for (const v of [row[col('activation')], row[col('batch')]]) expect(v).toMatch(/^-?[\d.]+(e-?\d+)?$/) // no separators, no %
      // In the grid's order, and what the grid shows rounded.
      if (i < shown[0].length) {
        expect(shown[SEED_COLUMNS.indexOf('label')][i]).toBe(r.label)
        expect(Number(shown[SEED_COLUMNS.indexOf('activation')][i])).toBeCloseTo(r.activation, 4)
      }
    }
    expect(new Set(csv.slice(1).map((r) => r[col('label')])).size).toBe(data.size)
    // Ctrl/Cmd+E exports the grid last worked in.
    await page.click(`[data-grid-id="${grid}"] .ag-row[row-index="0"] .ag-cell[col-id="pos"]`)
    const [download] = await Promise.all([page.waitForEvent('download'), page.keyboard.press('Control+e')])
    expect(download.suggestedFilename()).toBe(`feature-${featureId}-top-activations.csv`)
  })

  it('finds features by token', async () => {
    const top = (await page.textContent(`[data-feature-id="${featureId}"] .stats .mono`))!.trim()
    await page.click('[data-tab="tokens"]')
    await page.fill('[data-field="token-query"]', top.replace(/·/g, ' ').replace(/↩/g, '\n').replace(/→/g, '\t'))
    await page.keyboard.press('Enter')
    await page.waitForSelector('[data-grid-id="token-search"] .ag-row')
    const ids = (await columnTexts('token-search', 'id')).map(Number)
    expect(ids).toContain(featureId)
    await page.dblclick(`[data-grid-id="token-search"] .ag-row[row-id="${featureId}"] .ag-cell[col-id="count"]`)
    await poll(() => page.getAttribute(`[data-tab="feature:${featureId}"]`, 'aria-selected')).toBe('true')
    await page.click('[data-tab="tokens"]')
    await shot('05-token-search')
  })

  it('labels a feature, saves the session with Ctrl+S, reloads and restores it', async () => {
    await page.click(`[data-tab="feature:${featureId}"]`)
    const label = 'e2e: fires on “the” ✓'
    await page.fill(`[data-feature-id="${featureId}"] [data-field="label"]`, label)
    await page.keyboard.press('Enter')
    await page.waitForSelector('text=Label saved')
    await page.click('[data-tab="features"]')
    await poll(() => page.textContent(`[data-grid-id="features"] .ag-row[row-id="${featureId}"] .ag-cell[col-id="label"]`)).toBe(label)

    sessionPath = join(serve.tmp, 'workspace.ftsession')
    await page.click(`[data-tab="feature:${featureId}"]`)
    await page.keyboard.press('Control+s')
    await page.fill('[role="dialog"] [data-field="path"]', sessionPath)
    await page.keyboard.press('Enter')
    await page.waitForSelector('[data-field="session-notice"]')
    const saved = JSON.parse(readFileSync(sessionPath, 'utf8'))
    expect(saved.format).toBe('feature-tracer-session')
    expect(saved.labels[String(featureId)].label).toBe(label)
    expect(saved.state.tabs.map((t: { id: string }) => t.id)).toContain(`feature:${featureId}`)
    expect(saved.state.activeTab).toBe(`feature:${featureId}`)

    // Change the workspace, then reload the page: the session file must bring it back.
    await page.click(`[data-tab="feature:${featureId}"] .close`)
    await page.click('[data-tab="features"]')
    await sortBy('features', 'density', 'asc')
    await page.reload()
    await page.waitForSelector('.app[data-started="true"]')
    await openSession(sessionPath)
    await page.waitForSelector('[data-field="session-notice"]')
    await poll(() => page.getAttribute(`[data-tab="feature:${featureId}"]`, 'aria-selected')).toBe('true')
    await poll(() => page.inputValue(`[data-feature-id="${featureId}"] [data-field="label"]`)).toBe(label)
    await page.click('[data-tab="features"]')
    expect(await page.getAttribute('[data-grid-id="features"] .ag-header-cell[col-id="max"]', 'aria-sort')).toBe('descending')
    await page.click(`[data-tab="feature:${featureId}"]`)
    await shot('06-session-restored')
  })

  it('refuses a corrupt or future-version session file, with the message, and leaves it untouched', async () => {
    const corrupt = join(serve.tmp, 'corrupt.ftsession')
    const bytes = '{"format":"feature-tracer-session","version":1,"savedAt":'
    writeFileSync(corrupt, bytes)
    await openSession(corrupt)
    const banner = page.locator('[data-field="session-error"]')
    await banner.waitFor()
    expect(await banner.textContent()).toMatch(/Session not restored: .+/)
    expect(readFileSync(corrupt, 'utf8')).toBe(bytes)
    expect(await page.getAttribute(`[data-tab="feature:${featureId}"]`, 'aria-selected')).toBe('true')
    await shot('07-session-refused')

    const future = join(serve.tmp, 'future.ftsession')
    const saved = JSON.parse(readFileSync(sessionPath, 'utf8'))
    writeFileSync(future, JSON.stringify({ ...saved, version: 99 }))
    await openSession(future)
    await poll(() => banner.textContent()).toMatch(/version/i)
  })

  it('autosaves the workspace and reopens it on the next start', async () => {
    const since = new Date().toISOString()
    await page.click('[data-tab="features"]')
    await page.click(`[data-tab="feature:${featureId}"]`)
    // One slot per bundle: user-data/autosave/<bundle hash>.ftsession.
    const slots = join(serve.tmp, 'user-data', 'autosave')
    const autosave = () => readdirSync(slots).filter((n) => /^[0-9a-f]{64}\.ftsession$/.test(n)).map((n) => join(slots, n))[0]
    const read = () => {
      try {
        return JSON.parse(readFileSync(autosave(), 'utf8')) as { savedAt: string; state: { activeTab: string } }
      } catch {
        return null
      }
    }
    await poll(() => (read()?.savedAt ?? '') > since).toBe(true)
    expect(read()?.state.activeTab).toBe(`feature:${featureId}`)
    await page.reload()
    await poll(() => page.getAttribute(`[data-tab="feature:${featureId}"]`, 'aria-selected')).toBe('true')
  })

  it('a reload right after a change, before the autosave is due, keeps the change (sent as the page goes)', async () => {
    await page.click('[data-tab="features"]')
    await page.click(`[data-tab="feature:${featureId}"]`)
    await poll(() => page.getAttribute(`[data-tab="feature:${featureId}"]`, 'aria-selected')).toBe('true')
    // Now the Cache tab, and reload at once: the debounced autosave (3 s) has not run, the page's pagehide sends it.
    await page.click('[data-tab="cache"]')
    await page.reload()
    await page.waitForSelector('.app[data-started="true"]')
    await poll(() => page.getAttribute('[data-tab="cache"]', 'aria-selected')).toBe('true')
    expect(await page.locator(`[data-tab="feature:${featureId}"]`).count()).toBe(1)
  })

  it('moves an autosave it cannot read aside, names it in a banner, and never overwrites it', async () => {
    const slot = readdirSync(join(serve.tmp, 'user-data', 'autosave')).find((n) => /^[0-9a-f]{64}\.ftsession$/.test(n))!
    const slotPath = join(serve.tmp, 'user-data', 'autosave', slot)
    const damaged = '{"format": "feature-tracer-session", "version": 1, "state": [truncated'
    writeFileSync(slotPath, damaged)
    await page.reload()
    const movedTo = page.locator('[data-field="moved-to"]').first()
    await poll(() => movedTo.textContent()).toContain('.unreadable-')
    const to = (await movedTo.textContent())!.trim()
    expect(readFileSync(to, 'utf8')).toBe(damaged)
    await page.locator('[data-field="notice"] button').first().click()
  })

  it('ran without page errors or CSP violations', () => {
    expect(pageErrors).toEqual([])
  })
})
