// Progressive builds (issue 13 item 3) in Debian's Chromium through serve mode, on the tiny bundle (no
// shipped summary): while the build runs, the features browser and a feature tab show its partial summary
// marked with the share of the corpus covered, which grows; when it ends, the final numbers replace it.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { Page } from 'playwright-core'
import { callServe, ensureRendererBuilt, startWorkbench, type Serve, type Workbench } from './harness'

vi.setConfig({ testTimeout: 180_000 })

let workbench: Workbench | undefined
let serve: Serve
let page: Page
let pageErrors: string[]

/** The percentage in a partial banner, or null when there is none. */
async function shownPercent(selector: string): Promise<number | null> {
  const el = await page.$(selector)
  if (!el) return null
  const m = /(\d+) %/.exec((await el.textContent()) ?? '')
  return m ? Number(m[1]) : null
}

/** A features-grid cell of feature `id` (the grid is sorted by id, and the tiny SAE has 64 rows). */
async function featureCell(id: number, col: string): Promise<string> {
  return ((await page.textContent(`[data-grid-id="features"] .ag-row[row-id="${id}"] .ag-cell[col-id="${col}"]`)) ?? '').trim()
}

beforeAll(async () => {
  await ensureRendererBuilt()
  // 24 one-sequence chunks, 400 ms apart, a partial summary after each: about ten seconds to watch.
  process.env.FT_BUILD_CHUNK_SEQS = '1'
  process.env.FT_BUILD_PAUSE_MS = '400'
  process.env.FT_BUILD_PARTIAL_MS = '0'
  workbench = await startWorkbench()
  ;({ serve, page, pageErrors } = workbench)
}, 300_000)

afterAll(async () => {
  await workbench?.stop()
})

describe('progressive build', () => {
  it('fills the features browser and a feature tab during the build, marked partial, then shows the final numbers', async () => {
    await expect.poll(() => page.getAttribute('[data-tab="cache"]', 'aria-selected'), { timeout: 30_000 }).toBe('true')
    expect(await page.$('[data-field="features-partial"]')).toBeNull()
    await page.click('[data-action="build"]')
    await page.click('[data-tab="features"]')
    await page.waitForSelector('[data-field="features-partial"]', { timeout: 60_000 })
    await page.waitForSelector('[data-grid-id="features"] .ag-row')
    const first = (await shownPercent('[data-field="features-partial"]')) as number
    expect(first).toBeGreaterThan(0)
    expect(first).toBeLessThan(100)
    // Partial rows: no F1 or top token yet.
    expect(await featureCell(0, 'f1')).toBe('')
    const partialFirings = Number((await featureCell(0, 'count')).replace(/,/g, ''))

    // A feature tab opened now is partial too, with top activations over what was processed.
    await page.fill('[data-field="goto-feature"]', '#0')
    await page.press('[data-field="goto-feature"]', 'Enter')
    await page.waitForSelector('[data-field="feature-partial"]', { timeout: 30_000 })
    await page.waitForSelector('[data-grid-id="feature:0:top"] .ag-row')

    // It grows while the build runs (read again every few seconds).
    await page.click('[data-tab="features"]')
    await expect.poll(() => shownPercent('[data-field="features-partial"]'), { timeout: 60_000 }).toBeGreaterThan(first)

    // The end: the marker goes, and the grid shows the finished cache's numbers.
    await expect.poll(() => page.$('[data-field="features-partial"]'), { timeout: 120_000 }).toBeNull()
    const final = (await callServe(serve, 'features.list', {})).features
    expect((await callServe(serve, 'features.list', {})).partial).toBeUndefined()
    await expect.poll(() => featureCell(0, 'count'), { timeout: 30_000 }).toBe(final[0].count.toLocaleString('en-US'))
    expect(await featureCell(0, 'f1')).toBe(final[0].f1 === null ? '' : final[0].f1.toFixed(3))
    // What the partial rows showed was a part of the corpus: no more firings than the whole.
    expect(partialFirings).toBeLessThanOrEqual(final[0].count)
    expect(partialFirings).toBeGreaterThan(0)

    await page.click('[data-tab="feature:0"]')
    await expect.poll(() => page.$('[data-field="feature-partial"]'), { timeout: 30_000 }).toBeNull()
    expect(pageErrors).toEqual([])
  })
})
