// Statistics without BOS (issue 14 §3) in Debian's Chromium through serve mode: a feature that fires on BOS
// shows its numbers without those firings by default, says so next to them, shows them with BOS when
// Settings → "Exclude BOS" is turned off, and the choice is kept after a reload. The numbers the page must
// show are asked over HTTP in both modes (test/unit/cache-bos.test.ts and cache.test.ts check those against
// a recount).
import { describe, expect, it, vi } from 'vitest'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import type { FeatureSummary } from '../../common/contract'
import { OUTPUT, callServe, type Serve } from './harness'
import { useWorkbench } from './use-workbench'

vi.setConfig({ testTimeout: 180_000 })
const BUILD_TIMEOUT_MS = Number(process.env.FT_E2E_BUILD_TIMEOUT_MS) || (process.env.FT_E2E_BUNDLE ? 30 * 60_000 : 120_000)

let serve: Serve
let page: Page
let pageErrors: string[]
let without: FeatureSummary
let withBos: FeatureSummary

function poll<T>(fn: () => T | Promise<T>) {
  return expect.poll(fn, { timeout: 30_000 })
}

const tab = () => `.feature-tab[data-feature-id="${without.id}"]`

/** The feature tab's header: the BOS note's mode and the firings shown. */
async function shown(): Promise<{ mode: string | null; firings: string }> {
  const mode = await page.getAttribute(`${tab()} [data-field="bos-mode"]`, 'data-value')
  const firings = await page.$$eval(`${tab()} .stats > div`, (divs) => divs.find((d) => d.querySelector('dt')?.textContent === 'firings')?.querySelector('dd')?.textContent?.trim() ?? '')
  return { mode, firings }
}

async function setExcludeBos(on: boolean): Promise<void> {
  await page.click('[data-action="settings"]')
  await page.setChecked('[data-field="exclude-bos"]', on)
  await page.keyboard.press('Escape')
}

useWorkbench('bos', (wb) => ({ serve, page, pageErrors } = wb))

describe('statistics without BOS (issue 14 §3)', () => {
  it('builds the cache; the feature with the most BOS firings has other numbers in each mode', async () => {
    await page.click('[data-tab="cache"]')
    await page.click('[data-action="build"]')
    await page.waitForSelector('[data-field="cache-built"]', { timeout: BUILD_TIMEOUT_MS })
    const excluded = await callServe(serve, 'features.list', {})
    const included = await callServe(serve, 'features.list', { includeBos: true })
    expect([excluded.bos, included.bos]).toEqual(['excluded', 'included'])
    const most = included.features.reduce((a, b) => (b.count - excluded.features[b.id].count > a.count - excluded.features[a.id].count ? b : a))
    withBos = most
    without = excluded.features[most.id]
    // The bundle's sequences start with BOS, and this feature fires there.
    expect(withBos.count).toBeGreaterThan(without.count)
  }, BUILD_TIMEOUT_MS + 60_000)

  it('shows the numbers without BOS by default and says so, in the browser and the feature tab', async () => {
    await page.click('[data-tab="features"]')
    await poll(() => page.getAttribute('.features-browser [data-field="bos-mode"]', 'data-value')).toBe('excluded')
    await page.fill('[data-field="goto-feature"]', `#${without.id}`)
    await page.press('[data-field="goto-feature"]', 'Enter')
    await page.waitForSelector(`${tab()} [data-field="bos-mode"]`)
    await poll(shown).toEqual({ mode: 'excluded', firings: without.count.toLocaleString('en-US') })
    const top = await callServe(serve, 'feature.get', { id: without.id })
    // No top example of the default view is a BOS position.
    expect(top.top.every((r) => r.pos !== 0)).toBe(true)
    await page.screenshot({ path: join(OUTPUT, 'bos-excluded.png') })
  })

  it('the switch in Settings shows them with BOS, and the choice is kept after a reload', async () => {
    await setExcludeBos(false)
    await page.click(`[data-tab="feature:${without.id}"]`)
    await poll(shown).toEqual({ mode: 'included', firings: withBos.count.toLocaleString('en-US') })
    // The autosave keeps the open tab across the reload (its debounce).
    await page.waitForTimeout(3500)
    await page.reload()
    await page.waitForSelector('.app[data-started="true"]')
    await page.click(`[data-tab="feature:${without.id}"]`)
    await page.waitForSelector(`${tab()} [data-field="bos-mode"]`)
    await poll(shown).toEqual({ mode: 'included', firings: withBos.count.toLocaleString('en-US') })
    await page.click('[data-action="settings"]')
    expect(await page.isChecked('[data-field="exclude-bos"]')).toBe(false)
    await page.keyboard.press('Escape')
    await page.click('[data-tab="features"]')
    await poll(() => page.getAttribute('.features-browser [data-field="bos-mode"]', 'data-value')).toBe('included')
    await setExcludeBos(true)
    await page.click(`[data-tab="feature:${without.id}"]`)
    await poll(shown).toEqual({ mode: 'excluded', firings: without.count.toLocaleString('en-US') })
    expect(pageErrors).toEqual([])
  })
})
