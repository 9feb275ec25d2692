// Examples as running text (issue 14 §1) in Debian's Chromium through serve mode: the context column of a
// feature's grids shows ±24 tokens (the Settings window) of each example's sequence, every token shaded by
// the feature's activation on the grid's scale (the maximum the deepest red, 0 white), its id and value on
// hover, the example's token marked; ⤢ shows the whole sequence; the shading comes from feature.sequences,
// called here over HTTP as the independent answer the page's colours are checked against.
import { describe, expect, it, vi } from 'vitest'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import type { FeatureDetail, FeatureSequence } from '../../common/contract'
import { colourScale, scaleStyle } from '../../renderer/components/grid/coolwarm'
import { OUTPUT, callServe, type Serve } from './harness'
import { useWorkbench } from './use-workbench'

vi.setConfig({ testTimeout: 180_000 })
const BUILD_TIMEOUT_MS = Number(process.env.FT_E2E_BUILD_TIMEOUT_MS) || (process.env.FT_E2E_BUNDLE ? 30 * 60_000 : 120_000)

let serve: Serve
let page: Page
let pageErrors: string[]
let featureId = -1
let detail: FeatureDetail
let seqLen = 0

function poll<T>(fn: () => T | Promise<T>) {
  return expect.poll(fn, { timeout: 30_000 })
}

function rgb(css: string): number[] {
  return (css.match(/\d+/g) ?? []).slice(0, 3).map(Number)
}

function expectColour(css: string, want: string) {
  const w = rgb(want)
  rgb(css).forEach((v, k) => expect(Math.abs(v - w[k]), `${css} vs ${want}`).toBeLessThanOrEqual(3))
}

interface Tok {
  pos: number
  text: string
  title: string
  bg: string
  marked: boolean
}

/** The running-text tokens under `selector`, in order. */
async function tokens(selector: string): Promise<Tok[]> {
  return page.$$eval(`${selector} [data-field="running-text"] .tok`, (els) =>
    els.map((e) => ({
      pos: Number(e.getAttribute('data-pos')),
      text: e.textContent ?? '',
      title: e.getAttribute('title') ?? '',
      bg: getComputedStyle(e).backgroundColor,
      marked: e.getAttribute('data-marked') === 'true',
    })),
  )
}
declare function getComputedStyle(el: unknown): { backgroundColor: string }

const topRow = (i: number) => `[data-grid-id="feature:${featureId}:top"] .ag-row[row-index="${i}"] .ag-cell[col-id="context"]`

useWorkbench('rt', (wb) => ({ serve, page, pageErrors } = wb))

describe('examples as running text (issue 14 §1)', () => {
  it('builds the cache and opens the feature with the highest maximum', async () => {
    await page.click('[data-tab="cache"]')
    await page.click('[data-action="build"]')
    await page.waitForSelector('[data-field="cache-built"]', { timeout: BUILD_TIMEOUT_MS })
    const { features } = await callServe(serve, 'features.list', {})
    featureId = features.reduce((a, b) => (b.max > a.max ? b : a)).id
    detail = await callServe(serve, 'feature.get', { id: featureId })
    await page.fill('[data-field="goto-feature"]', `#${featureId}`)
    await page.press('[data-field="goto-feature"]', 'Enter')
    await page.waitForSelector(`${topRow(0)} [data-field="running-text"]`)
  }, BUILD_TIMEOUT_MS + 60_000)

  it('shows ±24 tokens of each top example shaded on the feature’s scale, the example’s token marked, id and value on hover', async () => {
    const scale = colourScale('sequential', [], 'zero', detail.stats.max)
    let sawWhite = false
    for (let i = 0; i < Math.min(5, detail.top.length); i++) {
      const row = detail.top[i]
      const { sequences } = await callServe(serve, 'feature.sequences', { feature: featureId, samples: [row.batch] })
      const seq: FeatureSequence = sequences[0]
      seqLen = seq.tokens.length
      await page.waitForSelector(`${topRow(i)} [data-field="running-text"]`)
      const toks = await tokens(topRow(i))
      const want = Array.from({ length: seqLen }, (_, p) => p).filter((p) => p >= row.pos - 24 && p <= row.pos + 24)
      expect(toks.map((t) => t.pos)).toEqual(want)
      expect(toks.length).toBeGreaterThan(Math.min(seqLen, 25) - 1)
      for (const t of toks) {
        expect(t.text).toBe(seq.tokens[t.pos])
        expectColour(t.bg, scaleStyle(seq.activations[t.pos], scale).backgroundColor)
        expect(t.title).toContain(`id ${seq.tokenIds[t.pos]}`)
        expect(t.title).toContain(seq.activations[t.pos].toFixed(4))
        if (seq.activations[t.pos] === 0) {
          expect(rgb(t.bg)).toEqual([255, 255, 255])
          sawWhite = true
        }
      }
      const marked = toks.filter((t) => t.marked)
      expect(marked.map((t) => t.pos)).toEqual([row.pos])
      expect(marked[0].title).toContain(`id ${row.token_id}`)
      expect(marked[0].title).toContain(row.activation.toFixed(4))
      if (i === 0) {
        expect(row.activation).toBeCloseTo(detail.stats.max, 5)
        expect(rgb(marked[0].bg)).toEqual([165, 15, 21]) // the maximum: the scale's deepest red
      }
    }
    expect(sawWhite).toBe(true)
    // The interval examples use the same running text, on the same scale.
    const iv = `[data-grid-id="feature:${featureId}:intervals"] .ag-row[row-index="0"] .ag-cell[col-id="context"]`
    await page.waitForSelector(`${iv} [data-field="running-text"] [data-marked="true"]`)
    await page.screenshot({ path: join(OUTPUT, 'running-text-top.png') })
  })

  it('expands a row to its whole sequence, every token shaded, the example’s token marked', async () => {
    const row = detail.top[0]
    // ⤢ sits at the cell's right end, inside it (not pushed out by the text).
    const cell = (await page.locator(topRow(0)).boundingBox())!
    const button = (await page.locator(`${topRow(0)} [data-action="expand-sequence"]`).boundingBox())!
    expect(button.x + button.width).toBeLessThanOrEqual(cell.x + cell.width)
    expect(button.x).toBeGreaterThan(cell.x + cell.width / 2)
    expect(button.y).toBeGreaterThanOrEqual(cell.y - 1)
    expect(button.y + button.height).toBeLessThanOrEqual(cell.y + cell.height + 1)
    await page.click(`${topRow(0)} [data-action="expand-sequence"]`)
    const dialog = '[data-field="sequence-dialog"]'
    await page.waitForSelector(`${dialog} [data-field="running-text"]`)
    const toks = await tokens(dialog)
    expect(toks.map((t) => t.pos)).toEqual(Array.from({ length: seqLen }, (_, p) => p))
    expect(toks.filter((t) => t.marked).map((t) => t.pos)).toEqual([row.pos])
    expect(rgb(toks[row.pos].bg)).toEqual([165, 15, 21])
    await page.screenshot({ path: join(OUTPUT, 'running-text-whole.png') })
    await page.keyboard.press('Escape')
    await poll(() => page.locator(dialog).count()).toBe(0)
  })

  it('the window is a setting: 3 tokens either side give at most 7 tokens a row, and it is kept after a reload', async () => {
    await page.click('[data-action="settings"]')
    await page.fill('[data-field="context-window"]', '3')
    await page.press('[data-field="context-window"]', 'Enter')
    await page.click(`[data-tab="feature:${featureId}"]`)
    const row = detail.top[0]
    const want = Array.from({ length: seqLen }, (_, p) => p).filter((p) => p >= row.pos - 3 && p <= row.pos + 3)
    await poll(async () => (await tokens(topRow(0))).map((t) => t.pos)).toEqual(want)
    await page.reload()
    await page.waitForSelector('.app[data-started="true"]')
    await page.click(`[data-tab="feature:${featureId}"]`)
    await page.waitForSelector(`${topRow(0)} [data-field="running-text"]`)
    expect((await tokens(topRow(0))).map((t) => t.pos)).toEqual(want)
    await page.click('[data-action="settings"]')
    await page.fill('[data-field="context-window"]', '24')
    await page.press('[data-field="context-window"]', 'Enter')
    await page.click(`[data-tab="feature:${featureId}"]`)
    await poll(async () => (await tokens(topRow(0))).length).toBeGreaterThan(7)
  })

  it('trace scores: each row’s sequence shaded by every token’s score on the score grid’s diverging scale', async () => {
    const row = detail.top[0]
    await page.click(`[data-grid-id="feature:${featureId}:top"] .ag-row[row-index="0"] .ag-cell[col-id="str_tokens"]`)
    const grid = '[data-trace-tab][data-scope-loading="false"] [data-grid-id$=":scores"]'
    await page.waitForSelector(`${grid} .ag-row[row-index="0"] [data-field="running-text"]`, { timeout: 120_000 })
    const scope = await callServe(serve, 'trace.scope', { point: { feature: featureId, sample: row.batch, pos: row.pos } })
    expect(scope.scope.kind).toBe('batch')
    if (scope.scope.kind !== 'batch') return
    const { start } = scope.scope
    // The tab's convention (Settings: u by default) picks the scores the grid shows.
    const convention = (await page.getAttribute('[data-trace-tab][data-scope-loading="false"]', 'data-convention')) as 'u' | 'v'
    const scores = scope[convention].activationScores
    const legend = page.locator(`${grid} [data-field="colour-legend"]`)
    expect(await legend.getAttribute('data-kind')).toBe('diverging')
    const scale = colourScale('diverging', [], 'zero', Number(await legend.getAttribute('data-bound')))
    const label = (await page.getAttribute(`${grid} .ag-row[row-index="0"]`, 'row-id'))!
    const [sample, pos] = label.split('/').map(Number)
    const toks = await tokens(`${grid} .ag-row[row-index="0"] .ag-cell[col-id="context"]`)
    expect(toks.length).toBeGreaterThan(1)
    expect(toks.filter((t) => t.marked).map((t) => t.pos)).toEqual([pos])
    for (const t of toks) {
      const v = scores[(sample - start) * seqLen + t.pos]
      expectColour(t.bg, scaleStyle(v, scale).backgroundColor)
      expect(t.title).toContain(`score ${v.toFixed(4)}`)
    }
  })

  it('the prompt’s heat strip is the same running text: every token, its activation and id on hover, a click traces there', async () => {
    await page.click('[data-tab="prompt"]')
    await page.fill('[data-field="prompt-text"]', 'def tokenize(text):')
    await page.fill('[data-field="prompt-feature"]', String(featureId))
    await page.click('[data-action="prompt-run"]')
    await page.waitForSelector('[data-field="heat-strip"] [data-field="running-text"]')
    const view = await callServe(serve, 'trace.prompt', { prompt: 'def tokenize(text):', feature: featureId })
    const toks = await tokens('[data-field="heat-strip"]')
    expect(toks.map((t) => t.pos)).toEqual(view.tokens.map((t) => t.pos))
    for (const t of toks) {
      expect(t.text).toBe(view.tokens[t.pos].str_tokens)
      expect(t.title).toContain(`id ${view.tokens[t.pos].tokenId}`)
      expect(t.title).toContain(view.strip!.activations[t.pos].toFixed(4))
    }
    await page.click('[data-field="heat-strip"] .tok[data-pos="1"]')
    await poll(() => page.$$eval('.tab-strip [role="tab"][aria-selected="true"]', (t) => t.map((x) => x.getAttribute('data-tab')))).toEqual([expect.stringMatching(/^trace:/)])
  })

  it('token search: a feature’s kept examples on the searched token, as the same running text', async () => {
    const row = detail.top[0]
    await page.click('[data-tab="tokens"]')
    await page.fill('[data-field="token-query"]', `#${row.token_id}`)
    await page.keyboard.press('Enter')
    await page.waitForSelector('[data-grid-id="token-search"] .ag-row')
    await page.fill('[data-grid-id="token-search"] .grid-filter', String(featureId))
    await page.click(`[data-grid-id="token-search"] .ag-row[row-id="${featureId}"] [data-action="token-hits"]`)
    const grid = `[data-grid-id="token-hits:${featureId}:${row.token_id}"]`
    await page.waitForSelector(`${grid} .ag-row [data-field="running-text"]`)
    const kept = new Map([...detail.top, ...detail.intervals.flatMap((b) => b.examples), ...detail.quantiles.flatMap((b) => b.examples)].filter((r) => r.token_id === row.token_id && r.activation > 0).map((r) => [r.label, r]))
    expect(Number((await page.textContent(`${grid} .grid-count`))!.split('/')[1].replace(/\D/g, ''))).toBe(kept.size)
    const scale = colourScale('sequential', [], 'zero', detail.stats.max)
    const first = `${grid} .ag-row[row-index="0"]`
    const label = (await page.getAttribute(first, 'row-id'))!
    expect(label).toBe(row.label) // the feature's maximum is on this token
    const marked = (await tokens(`${first} .ag-cell[col-id="context"]`)).filter((t) => t.marked)
    expect(marked.map((t) => t.pos)).toEqual([row.pos])
    expectColour(marked[0].bg, scaleStyle(row.activation, scale).backgroundColor)
    expect(marked[0].title).toContain(`id ${row.token_id}`)
  })

  it('ran without page errors', () => {
    expect(pageErrors).toEqual([])
  })
})
