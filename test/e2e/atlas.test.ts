// The mechanism atlas end to end in Debian's Chromium through serve mode, on the tiny bundle: build the
// cache, open feature 0 (the atlas goldens' feature), switch to its Atlas view, start the atlas (its
// progress bar shows while the job runs), read the result (points, the cross-fidelity share) against the
// same handler table called over HTTP, then move the threshold slider and watch the clusters change as the
// tree's cut says; the result and the threshold come back from the session after a reload.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import { cutTree } from '../../common/atlas'
import type { AtlasJson } from '../../common/contract'
import { colourScale, scaleStyle } from '../../renderer/components/grid/coolwarm'
import { BUNDLE, OUTPUT, ROOT, callServe, ensureRendererBuilt, startWorkbench, type Serve, type Workbench } from './harness'

const useTiny = BUNDLE === join(ROOT, 'test/fixtures/tiny')
const FEATURE = 0
vi.setConfig({ testTimeout: 180_000 })

let workbench: Workbench | undefined
let serve: Serve
let page: Page
let pageErrors: string[]
// evaluate callbacks run in Chromium; this file is type-checked without the DOM library.
declare function getComputedStyle(el: unknown): { backgroundColor: string }

async function setThreshold(t: number): Promise<void> {
  // A range input takes no typing: set its value and send the input event Vue's v-model listens to.
  await page.evaluate(`(() => {
    const input = document.querySelector('[data-field="atlas-threshold"]')
    input.value = '${t}'
    input.dispatchEvent(new Event('input', { bubbles: true }))
  })()`)
}

async function clusterCount(): Promise<number> {
  return Number(await page.getAttribute('[data-field="atlas-cluster-count"]', 'data-count'))
}

beforeAll(async () => {
  mkdirSync(OUTPUT, { recursive: true })
  if (!useTiny) return
  await ensureRendererBuilt()
  workbench = await startWorkbench()
  ;({ serve, page, pageErrors } = workbench)
}, 300_000)

afterAll(async () => {
  await workbench?.stop()
})

describe.skipIf(!useTiny)('the mechanism atlas in the browser (serve mode)', () => {
  let atlas: AtlasJson

  it('builds the cache, opens a feature’s Atlas view and starts the atlas: progress, then the result', async () => {
    await page.click('[data-tab="cache"]')
    await page.click('[data-action="build"]')
    await page.waitForSelector('text=Cache built.', { timeout: 120_000 })
    await page.click('[data-tab="features"]')
    await page.dblclick(`[data-grid-id="features"] .ag-row[row-id="${FEATURE}"] .ag-cell[col-id="max"]`)
    await page.click(`[data-feature-id="${FEATURE}"] [data-view="atlas"]`)
    const panel = `[data-feature-id="${FEATURE}"] [data-field="atlas"]`
    await page.waitForSelector(`${panel}[data-state="idle"]`)
    // The bar may show for a moment only (the tiny corpus is quick): record whether it ever appeared.
    await page.evaluate(`(() => {
      window.sawAtlasProgress = false
      new MutationObserver(() => {
        if (document.querySelector('[data-field="atlas-progress"]')) window.sawAtlasProgress = true
      }).observe(document.body, { childList: true, subtree: true })
    })()`)
    await page.click(`${panel} [data-action="atlas-start"]`)
    await page.waitForSelector(`${panel}[data-state="done"] [data-field="atlas-summary"]`, { timeout: 120_000 })
    expect(await page.evaluate('window.sawAtlasProgress')).toBe(true)
    await page.screenshot({ path: join(OUTPUT, 'atlas.png'), fullPage: true })

    // The same atlas over HTTP (the page's job id is its own): same points, same share.
    const jobId = 'e2e-atlas'
    await callServe(serve, 'trace.atlas', { jobId, feature: FEATURE })
    await expect
      .poll(async () => {
        try {
          atlas = await callServe(serve, 'trace.atlas.result', { jobId })
          return true
        } catch {
          return false
        }
      }, { timeout: 60_000 })
      .toBe(true)
    const detail = await callServe(serve, 'feature.get', { id: FEATURE, topK: 100 })
    expect(atlas.points.slice(0, Math.min(64, detail.top.length)).map((p) => p.label)).toEqual(detail.top.slice(0, 64).map((r) => r.label))
    expect(Number(await page.getAttribute('[data-field="atlas-summary"]', 'data-best-share'))).toBe(atlas.bestShare)
    expect(await page.locator('[data-field="atlas-heatmap"]').count()).toBe(1)
    expect(pageErrors).toEqual([])
  })

  it('moving the threshold changes the clusters as the tree’s cut says', async () => {
    const n = atlas.points.length
    const counts: number[] = []
    for (const t of [0, 0.05, 0.2, 1.2]) {
      await setThreshold(t)
      const expected = cutTree(n, atlas.linkage, t)
      await expect.poll(clusterCount).toBe(expected.length)
      expect(Number(await page.getAttribute('[data-field="atlas-heatmap"]', 'data-clusters'))).toBe(expected.length)
      const shown = await page.$$eval('[data-field="atlas-cluster"]', (els) => els.map((e) => Number(e.getAttribute('data-size'))))
      expect(shown).toEqual(expected.slice(0, 12).map((c) => c.members.length))
      counts.push(expected.length)
    }
    // At 1.2 (past every cosine the tiny atlas has) one cluster holds every point; at 0 no two distinct directions join.
    expect(counts[3]).toBe(1)
    expect(counts[0]).toBeGreaterThan(counts[3])
    // A cluster's section: its members as grid rows, its W_E tokens and its term tables.
    const first = page.locator('[data-field="atlas-cluster"]').first()
    expect(await first.locator('.ag-row').count()).toBeGreaterThan(0)
    expect(await first.locator('[data-field="atlas-token"]').count()).toBeGreaterThan(0)
    expect(await first.locator('[data-field="atlas-by-offset"] tr').count()).toBeGreaterThan(1)
    // Its members are shown as the feature's examples are: running text shaded on the feature's scale
    // (feature.sequences over HTTP is the answer to compare with), the member's token marked.
    const row = first.locator('.ag-row[row-index="0"]')
    await row.locator('[data-field="running-text"] [data-marked="true"]').waitFor()
    const [sample, pos] = (await row.getAttribute('row-id'))!.split('/').map(Number)
    const { sequences } = await callServe(serve, 'feature.sequences', { feature: FEATURE, samples: [sample] })
    const { features } = await callServe(serve, 'features.list', {})
    const scale = colourScale('sequential', [], 'zero', features.find((f) => f.id === FEATURE)!.max)
    const toks = await row.locator('.ag-cell[col-id="context"] [data-field="running-text"] .tok').evaluateAll((els) =>
      els.map((e) => ({ pos: Number(e.getAttribute('data-pos')), marked: e.getAttribute('data-marked') === 'true', bg: getComputedStyle(e).backgroundColor })),
    )
    expect(toks.length).toBeGreaterThan(1)
    expect(toks.filter((t) => t.marked).map((t) => t.pos)).toEqual([pos])
    for (const t of toks) expect(t.bg.replace(/\s/g, '')).toBe(scaleStyle(sequences[0].activations[t.pos], scale).backgroundColor.replace(/\s/g, ''))
  })

  it('keeps the atlas and its threshold in the session', async () => {
    await setThreshold(0.2)
    const expected = cutTree(atlas.points.length, atlas.linkage, 0.2).length
    const path = join(serve.tmp, 'atlas.ftsession')
    await page.click('[data-action="session-save-as"]')
    await page.fill('[role="dialog"] [data-field="path"]', path)
    await page.keyboard.press('Enter')
    await expect.poll(() => existsSync(path), { timeout: 60_000 }).toBe(true)
    const saved = JSON.parse(readFileSync(path, 'utf8')) as { state: { ui: Record<string, { threshold?: number; result?: AtlasJson }> } }
    expect(saved.state.ui[`atlas:${FEATURE}`].threshold).toBe(0.2)
    expect(saved.state.ui[`atlas:${FEATURE}`].result?.points.length).toBe(atlas.points.length)
    await page.reload()
    await page.waitForSelector('.app[data-started="true"]')
    await page.click('[data-action="session-open"]')
    await page.fill('[role="dialog"] [data-field="path"]', path)
    await page.click('[role="dialog"] [data-action="confirm"]')
    await page.waitForSelector(`[data-feature-id="${FEATURE}"] [data-field="atlas"] [data-field="atlas-summary"]`)
    await expect.poll(clusterCount).toBe(expected)
  })
})
