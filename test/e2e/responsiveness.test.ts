// Responsiveness of a click in the browser (issue 14 §9): from main's answer to what the page shows.
// The page marks when trace.point and trace.scope answered (renderer/stores/trace.ts, performance marks
// with the tab's id); an observer in the page notes when the trace header and then the batch's grids are
// in the DOM and a frame has been painted after them. Several clicks on a feature's top activations (new
// batches and kept ones); the times go to test/e2e/output/trace-responsiveness.json with their medians and
// the machine's load average (the times are wall clock: a loaded machine stretches them). On the demo
// bundle: FT_E2E_BUNDLE=resources/demo npx vitest run test/e2e/responsiveness.test.ts (or `npx tsx
// test/bench/responsiveness.ts`, part of `npm run bench`).
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import type { BrowserContext, Page } from 'playwright-core'
import type { Channel, FeatureSummary, RequestIn, ResponseOf, Result } from '../../common/contract'
import { BUNDLE, OUTPUT, authHeaders, ensureRendererBuilt, launchChromium, openWorkbenchPage, startServe, type Serve } from './harness'

vi.setConfig({ testTimeout: 600_000 })
const CLICKS = 6
/** The target: header and grids on screen within 100 ms of their answers (reported, not asserted). */
const TARGET_MS = 100
/** A loaded 2-core CI machine gets ten times the target before the test fails. */
const LIMIT_MS = 1000

let serve: Serve
let browser: { context: BrowserContext; close(): Promise<void> }
let page: Page
const pageErrors: string[] = []

async function ipc<C extends Channel>(channel: C, payload: RequestIn<C>): Promise<ResponseOf<C>> {
  const res = await fetch(new URL(`api/${channel}`, serve.url), { method: 'POST', headers: authHeaders(serve.token), body: JSON.stringify(payload) })
  const r = (await res.json()) as Result<ResponseOf<C>>
  if (!r.ok) throw new Error(`${channel}: ${r.error.code}: ${r.error.message}`)
  return r.value
}

/** The features list, building the cache first when the bundle ships no summary (the tiny fixture). */
async function features(): Promise<FeatureSummary[]> {
  const shipped = await ipc('features.list', {}).catch(() => null)
  if (shipped) return shipped.features
  if ((await ipc('cache.status', {})).state !== 'ready') {
    await ipc('cache.build', { jobId: crypto.randomUUID(), rebuild: false, full: false })
    await expect.poll(async () => (await ipc('cache.status', {})).state, { timeout: 120_000, interval: 500 }).toBe('ready')
  }
  return (await ipc('features.list', {})).features
}

interface Timing {
  tab: string
  /** ms from the click's request to trace.point's answer, and from there to the header on screen. */
  pointAnswer: number
  header: number
  /** ms from trace.point's answer to trace.scope's, and from there to the batch's grid rows on screen. */
  scopeAnswer: number
  grids: number
}

// Runs in the page: a promise of when (performance.now()) each selector first matched, a frame later.
const WATCH = `(sels) => new Promise((resolve) => {
  const seen = {}
  const check = () => {
    for (const [k, s] of Object.entries(sels)) {
      if (seen[k] === undefined && document.querySelector(s)) {
        seen[k] = null
        requestAnimationFrame(() => setTimeout(() => {
          seen[k] = performance.now()
          if (Object.values(seen).filter((v) => typeof v === 'number').length === Object.keys(sels).length) { obs.disconnect(); resolve(seen) }
        }, 0))
      }
    }
  }
  const obs = new MutationObserver(check)
  obs.observe(document.body, { subtree: true, childList: true, attributes: true })
  window.__ftWatch = true
})`

beforeAll(async () => {
  mkdirSync(OUTPUT, { recursive: true })
  await ensureRendererBuilt()
  serve = await startServe()
  browser = await launchChromium()
  page = await openWorkbenchPage(browser.context, serve.launchUrl, pageErrors)
}, 600_000)

afterAll(async () => {
  await browser?.close()
  await serve?.stop()
})

describe('a click in the browser', () => {
  it(`shows the trace header and the grids within ${LIMIT_MS} ms of their answers`, async () => {
    const list = await features()
    // The busiest feature that is not degenerate (the tiny SAE's live ones are all dense: then any).
    const live = list.filter((f) => f.count >= 6 * 7)
    const feature = (live.some((f) => f.flags.length === 0) ? live.filter((f) => f.flags.length === 0) : live).reduce((a, b) => (b.count > a.count ? b : a))
    await page.fill('[data-field="goto-feature"]', `#${feature.id}`)
    await page.press('[data-field="goto-feature"]', 'Enter')
    const top = `[data-grid-id="feature:${feature.id}:top"]`
    await page.waitForSelector(`${top} .ag-row`)
    const timings: Timing[] = []
    const loadBefore = loadavg()
    for (let i = 0; i < CLICKS; i++) {
      await page.click(`[data-tab="feature:${feature.id}"]`)
      const row = `${top} .ag-row[row-index="${i * 7}"]`
      const label = (await page.textContent(`${row} .ag-cell[col-id="label"]`))!.trim()
      const tab = `trace:${feature.id}:${label}`
      const sels = { header: `[data-trace-tab="${tab}"] .trace-header`, grids: `[data-grid-id="${tab}:scores"] .ag-row` }
      const watching = page.evaluate(`(${WATCH})(${JSON.stringify(sels)})`) as Promise<{ header: number; grids: number }>
      await page.waitForFunction('window.__ftWatch === true')
      await page.evaluate('window.__ftWatch = false')
      await page.click(`${row} .ag-cell[col-id="str_tokens"] .token-link`)
      const seen = await watching
      const marks = (await page.evaluate(`performance.getEntriesByType('mark').filter((m) => m.detail && m.detail.tab === ${JSON.stringify(tab)}).map((m) => [m.name, m.startTime])`)) as [string, number][]
      const at = (name: string) => marks.filter(([n]) => n === name).at(-1)?.[1] ?? NaN
      const t: Timing = {
        tab,
        pointAnswer: at('ft:trace.point') - at('ft:trace.request'),
        header: seen.header - at('ft:trace.point'),
        scopeAnswer: at('ft:trace.scope') - at('ft:trace.point'),
        grids: seen.grids - at('ft:trace.scope'),
      }
      timings.push(t)
      // Close it: each click then opens a fresh tab, as the researcher's first click on a token does.
      await page.click(`[data-tab="${tab}"] .close`)
    }
    const median = (k: keyof Omit<Timing, 'tab'>) => {
      const v = timings.map((t) => t[k]).sort((a, b) => a - b)
      return v[Math.floor(v.length / 2)]
    }
    const loadAtEnd = loadavg()
    const summary = {
      bundle: BUNDLE,
      clicks: timings.length,
      median: { pointAnswer: median('pointAnswer'), header: median('header'), scopeAnswer: median('scopeAnswer'), grids: median('grids') },
      targetMs: TARGET_MS,
      withinTarget: { header: timings.filter((t) => t.header <= TARGET_MS).length, grids: timings.filter((t) => t.grids <= TARGET_MS).length },
      // 1-, 5- and 15-minute load averages before and after the clicks, on this many cores.
      loadAverage: { before: loadBefore, after: loadAtEnd, cores: cpus().length },
      timings,
    }
    writeFileSync(join(OUTPUT, 'trace-responsiveness.json'), JSON.stringify(summary, null, 2))
    console.log('trace responsiveness (ms):', JSON.stringify(summary.median), 'load average:', loadAtEnd.map((l) => l.toFixed(2)).join(' '))
    for (const t of timings) {
      for (const k of ['pointAnswer', 'header', 'scopeAnswer', 'grids'] as const) expect(Number.isFinite(t[k]), `${t.tab} ${k}`).toBe(true)
      expect(t.header, t.tab).toBeGreaterThanOrEqual(0)
      expect(t.grids, t.tab).toBeGreaterThanOrEqual(0)
      expect(t.header, t.tab).toBeLessThan(LIMIT_MS)
      expect(t.grids, t.tab).toBeLessThan(LIMIT_MS)
    }
    expect(pageErrors).toEqual([])
  })
})
