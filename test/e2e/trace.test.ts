// Tracing end to end, as a researcher does it, in Debian's Chromium through serve mode: open a feature,
// click a top activation to trace there, read v's token scores, the heads × source heatmap and the sum
// check, switch convention and heads, export a trace grid, trace a typed prompt, compare two traces, pin
// one and get it back from the session, score the whole corpus in the background (progress, result,
// cancel). Numbers on screen are checked against the PyTorch goldens of tools/golden.py and against the
// same handler table called directly over HTTP.
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { BrowserContext, Page } from 'playwright-core'
import type { Channel, PromptViewJson, RequestIn, ResponseOf, Result, TraceComparisonJson, TraceJson } from '../../common/contract'
import { colourScale, scaleStyle } from '../../renderer/components/grid/coolwarm'
import { readGolden, relErr, type Golden, type GoldenPoint } from '../unit/helpers/golden'
import { BUNDLE, OUTPUT, ROOT, authHeaders, ensureRendererBuilt, launchChromium, openWorkbenchPage, parseCsv, startServe, type Serve } from './harness'

/** The golden point's fields this test reads besides the shared ones (tools/golden.py writes them). */
type Point = GoldenPoint & {
  /** The golden batch (its scores_v / scores_u): sequences batch_start … batch_start + batch_size − 1. */
  batch_start: number
  batch_size: number
  u_dot_resid_mid: number
  v_dot_resid_mid: number
  fidelity_pearson: number
  best_head: number
  circuit_source_pos: number
  W_E_v_top: [number, number][]
  decomposition_v: { heads: number[][]; heads_ov: number[][]; total: number; earlier_attn_out: number[] }
  qk_grid: { head: number; tokens: number[]; relative_positions: number[]; scores: (number | null)[][] }
}

const SCORE_COLUMNS = ['str_tokens', 'unique_token', 'context', 'batch', 'pos', 'label', 'score']
/** A CSV holds the token's id beside its text (export only): score is column 7, batch 4, pos 5. */
const CSV_SCORE_COLUMNS = ['str_tokens', 'token_id', 'unique_token', 'context', 'batch', 'pos', 'label', 'score']
const BUILD_TIMEOUT_MS = Number(process.env.FT_E2E_BUILD_TIMEOUT_MS) || (process.env.FT_E2E_BUNDLE ? 30 * 60_000 : 120_000)
/** The goldens exist for the tiny bundle; FT_E2E_BUNDLE runs the same flow without them. */
const GOLDEN_DIR = join(ROOT, 'test/fixtures/golden/tiny')
const useGolden = BUNDLE === join(ROOT, 'test/fixtures/tiny')

vi.setConfig({ testTimeout: 180_000 })

let serve: Serve
let browser: { context: BrowserContext; close(): Promise<void> }
let page: Page
let golden: Golden | null = null
const pageErrors: string[] = []

/** The point this test traces: a golden point among its feature's top activations. */
let gp: Point
let tabId = ''
/** The first trace, opened from the feature's top row. */
let firstTab = ''
let firstPoint = { feature: 0, sample: 0, pos: 0 }

function poll<T>(fn: () => T | Promise<T>) {
  // Generous: the machine running CI may be shared with a training job.
  return expect.poll(fn, { timeout: 60_000 })
}

async function shot(name: string) {
  await page.screenshot({ path: join(OUTPUT, `${name}.png`) })
}

/** The handler table directly, over the same HTTP bridge the page uses. */
async function ipc<C extends Channel>(channel: C, payload: RequestIn<C>): Promise<ResponseOf<C>> {
  const res = await fetch(new URL(`api/${channel}`, serve.url), { method: 'POST', headers: authHeaders(serve.token), body: JSON.stringify(payload) })
  const r = (await res.json()) as Result<ResponseOf<C>>
  if (!r.ok) throw new Error(`${channel}: ${r.error.code}: ${r.error.message}`)
  return r.value
}

function q(id: string): string {
  return `[data-trace-tab="${id}"]`
}

async function columnTexts(gridId: string, colId: string): Promise<string[]> {
  return page.$$eval(`[data-grid-id="${gridId}"] .ag-row .ag-cell[col-id="${colId}"]`, (cells) =>
    cells
      .map((c) => ({ i: Number(c.closest('.ag-row')?.getAttribute('row-index')), t: (c.textContent ?? '').trim() }))
      .sort((a, b) => a.i - b.i)
      .map((x) => x.t),
  )
}

async function exportCsv(gridId: string): Promise<{ rows: string[][]; name: string }> {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click(`[data-grid-id="${gridId}"] [data-action="export"]`)])
  const text = readFileSync((await download.path())!, 'utf8')
  expect(text.charCodeAt(0)).not.toBe(0xfeff) // UTF-8 without a BOM
  return { rows: parseCsv(text), name: download.suggestedFilename() }
}

/** A fresh page (the stores start empty), then the session file opened from the top bar. */
async function reloadAndRestore(path: string) {
  await page.reload()
  await page.waitForSelector('.app[data-started="true"]')
  await page.click('[data-action="session-open"]')
  await page.fill('[role="dialog"] [data-field="path"]', path)
  await page.click('[role="dialog"] [data-action="confirm"]')
  await page.waitForSelector('[data-field="session-notice"]')
}

async function waitTrace(id: string) {
  await page.waitForSelector(`${q(id)}[data-loading="false"] [data-field="trace-activation"]`)
}

async function num(selector: string, attr = 'data-value'): Promise<number> {
  return Number(await page.getAttribute(selector, attr))
}

/** The corpus-scores progress bar's numbers, or null while it is not shown. */
async function barState(bar: string): Promise<{ done: number; total: number; jobId: string } | null> {
  const [el] = await page.$$eval(bar, (els) => els.map((e) => ({ done: Number(e.getAttribute('data-done')), total: Number(e.getAttribute('data-total')), jobId: e.getAttribute('data-job-id') ?? '' })))
  return el ?? null
}

function rgb(css: string): number[] {
  return (css.match(/\d+/g) ?? []).slice(0, 3).map(Number)
}

/** |a − b| within `rel` of the scale, plus half a unit of the 4 decimals the grids show. */
function closeTo(a: number, b: number, scale: number, rel = 1e-4) {
  expect(Math.abs(a - b), `${a} vs ${b}`).toBeLessThanOrEqual(rel * Math.max(1, Math.abs(scale)) + 5.1e-5)
}

beforeAll(async () => {
  mkdirSync(OUTPUT, { recursive: true })
  if (!useGolden) return
  golden = readGolden(GOLDEN_DIR)
  await ensureRendererBuilt()
  // One sequence per chunk and a pause after each: the tiny corpus's scores then take a few seconds, with a
  // push per chunk, so there is a progress bar to watch and a job to cancel.
  process.env.FT_CORPUS_CHUNK_SEQS ??= '1'
  process.env.FT_CORPUS_PAUSE_MS ??= '200'
  serve = await startServe()
  browser = await launchChromium()
  page = await openWorkbenchPage(browser.context, serve.launchUrl, pageErrors)
}, 300_000)

afterEach(async ({ task }) => {
  if (task.result?.state === 'fail') await shot(`failed-trace-${task.name.replace(/\W+/g, '-')}`).catch(() => {})
})

afterAll(async () => {
  await browser?.close()
  await serve?.stop()
})

// The flow checks its numbers against the tiny bundle's goldens; other bundles have none.
describe.skipIf(!useGolden)('tracing in the browser (serve mode)', () => {
  it('builds the cache and opens a feature that has golden points among its top activations', async () => {
    await page.click('[data-tab="cache"]')
    await page.click('[data-action="build"]')
    await page.waitForSelector('text=Cache built.', { timeout: BUILD_TIMEOUT_MS })

    const candidates = ((golden?.points ?? []) as Point[]).filter((p) => p.feature >= 0)
    let found: Point | undefined
    for (const p of candidates) {
      const detail = await ipc('feature.get', { id: p.feature, topK: 100 })
      // The top row itself is traced first; the golden point must be another row.
      if (detail.top.slice(1).some((r) => r.batch === p.sample && r.pos === p.pos)) {
        found = p
        break
      }
    }
    expect(found, 'a golden point among its feature’s top activations').toBeDefined()
    gp = found!
    await page.click('[data-tab="features"]')
    await page.dblclick(`[data-grid-id="features"] .ag-row[row-id="${gp.feature}"] .ag-cell[col-id="max"]`)
    await page.waitForSelector(`[data-grid-id="feature:${gp.feature}:top"] .ag-row`)
  }, BUILD_TIMEOUT_MS + 60_000)

  it('clicks a top activation to trace there, with the activation the cache stored', async () => {
    const grid = `feature:${gp.feature}:top`
    const row = `[data-grid-id="${grid}"] .ag-row[row-index="0"]`
    const [batch, pos, activation] = await Promise.all(['batch', 'pos', 'activation'].map(async (c) => Number((await page.textContent(`${row} .ag-cell[col-id="${c}"]`))!.trim())))
    const link = page.locator(`${row} .ag-cell[col-id="str_tokens"] .token-link`)
    expect(await link.getAttribute('title')).toMatch(/trace/i)
    await link.click()
    firstPoint = { feature: gp.feature, sample: batch, pos }
    firstTab = `trace:${gp.feature}:${batch}/${pos}`
    await poll(() => page.getAttribute(`[data-tab="${firstTab}"]`, 'aria-selected')).toBe('true')
    await waitTrace(firstTab)
    // The cache's activation (SAE graph over the corpus) and the trace's (forward + linearization) agree.
    closeTo(await num(`${q(firstTab)} [data-field="trace-activation"]`), activation, activation)
    expect(await page.textContent(`${q(firstTab)} [data-field="trace-point"]`)).toBe(`sample ${batch}, pos ${pos}`)
    await shot('trace-01-from-top-activation')
  })

  it('traces a golden point and shows v’s token scores as PyTorch computes them', async () => {
    const grid = `feature:${gp.feature}:top`
    await page.click(`[data-tab="feature:${gp.feature}"]`)
    // The quick filter brings the row into the rendered window wherever it sits in the top 100.
    await page.fill(`[data-grid-id="${grid}"] .grid-filter`, `${gp.sample}/${gp.pos}`)
    await page.click(`[data-grid-id="${grid}"] .ag-row[row-id="${gp.sample}/${gp.pos}"] .token-link`)
    tabId = `trace:${gp.feature}:${gp.sample}/${gp.pos}`
    await poll(() => page.getAttribute(`[data-tab="${tabId}"]`, 'aria-selected')).toBe('true')
    await waitTrace(tabId)

    closeTo(await num(`${q(tabId)} [data-field="trace-activation"]`), gp.activation, gp.activation)
    const direct = await ipc('trace.run', { point: { feature: gp.feature, sample: gp.sample, pos: gp.pos } })
    // A trace opens in u (issue 14 §5): its u·resid_mid is PyTorch's, v's value is beside it.
    expect(await page.getAttribute(q(tabId), 'data-convention')).toBe('u')
    expect(await page.textContent(`${q(tabId)} [data-field="convention-label"]`)).toContain(direct.u.label)
    closeTo(await num(`${q(tabId)} [data-field="trace-dot"]`), gp.u_dot_resid_mid, gp.u_dot_resid_mid)
    closeTo(await num(`${q(tabId)} [data-field="trace-dot-other"]`), direct.v.dotResidMid, 1, 0)
    // Every header number says what it is on hover.
    const help = async (field: string) => (await page.locator(`${q(tabId)} [data-field="${field}"]`).locator('xpath=..').getAttribute('title')) ?? ''
    expect(await help('trace-token')).toMatch(/vocabulary id/)
    expect(await help('trace-activation')).toMatch(/gate/)
    expect(await help('trace-pre-activation')).toMatch(/W_enc\[:,f\]/)
    expect(await help('trace-ln-scale')).toMatch(/^LN2 scale: √\(var \+ ε\) of resid_mid .*u freezes it/)
    expect(await help('trace-cos-vu')).toMatch(/^cos\(v, u\)/)
    expect(await help('trace-dot')).toMatch(/^u·resid_mid: the first-order value of the pre-activation/)
    expect(await help('trace-dot-other')).toMatch(/^v·resid_mid: ≈ 0/)
    await shot('trace-02a-opens-in-u')
    // v is one click away.
    await page.click(`${q(tabId)} [data-convention="v"]`)
    await poll(() => page.getAttribute(q(tabId), 'data-convention')).toBe('v')
    expect(await page.textContent(`${q(tabId)} [data-field="convention-label"]`)).toContain(direct.v.label)
    expect(await help('trace-dot')).toMatch(/^v·resid_mid/)

    const { rows, name } = await exportCsv(`${tabId}:tokens-top`)
    expect(name).toBe(`trace-f${gp.feature}-s${gp.sample}-p${gp.pos}-v-token-scores-top.csv`)
    expect(rows[0]).toEqual(['str_tokens', 'id', 'score'])
    const want = gp.W_E_v_top
    expect(rows.length - 1).toBe(want.length)
    const wE = golden!.f32(`${gp.key}.W_E_v`).data
    rows.slice(1).forEach((r, i) => {
      closeTo(Number(r[2]), want[i][1], want[0][1]) // the i-th highest score
      closeTo(Number(r[2]), wE[Number(r[1])], want[0][1]) // and the score of the token shown
    })
    await shot('trace-02-token-scores')
  })

  it('shows the heads × source heatmap and a sum check whose total is trace.run’s and whose residual is small', async () => {
    await page.click(`${q(tabId)} [data-section="attention"]`)
    const cells = page.locator(`${q(tabId)} [data-field="head-source-heatmap"] rect[data-head]`)
    const heads = gp.decomposition_v.heads
    await poll(() => cells.count()).toBe(heads.length * (gp.pos + 1))
    const shown = await cells.evaluateAll((els) => els.map((e) => ({ h: Number(e.getAttribute('data-head')), s: Number(e.getAttribute('data-source')), v: Number(e.getAttribute('data-value')), fill: e.getAttribute('fill') ?? '' })))
    const flat = heads.flat()
    const scale = colourScale('diverging', flat, 'zero') // symmetric around a white zero
    expect(relErr(shown.map((c) => c.v), shown.map((c) => heads[c.h][c.s]))).toBeLessThan(1e-4)
    expect(flat.length).toBe(shown.length)
    for (const c of shown) {
      const want = rgb(scaleStyle(heads[c.h][c.s], scale).backgroundColor)
      rgb(c.fill).forEach((x, k) => expect(Math.abs(x - want[k])).toBeLessThanOrEqual(3))
    }
    const direct = await ipc('trace.run', { point: { feature: gp.feature, sample: gp.sample, pos: gp.pos } })
    const labels = await page.$$eval(`${q(tabId)} [data-field="source-token"]`, (els) => els.map((e) => e.textContent ?? ''))
    expect(labels).toEqual(direct.sequenceStrTokens.slice(0, gp.pos + 1))

    const d = direct.v.decomposition
    const termScale = [d.embed ?? 0, d.pos ?? 0, ...d.attn.flatMap((a) => [a.b_O, ...a.heads.flat()]), ...d.mlpOut].reduce((a, x) => a + Math.abs(x), 0)
    // v·resid_mid ≈ 0 at the point (LayerNorm's scale invariance): shown in exponent form, 4 significant digits.
    const total = Number(await page.textContent(`${q(tabId)} [data-field="sum-total"]`))
    expect(Math.abs(total - d.total)).toBeLessThanOrEqual(5e-4 * Math.abs(d.total))
    expect(Math.abs((await num(`${q(tabId)} [data-field="sum-total"]`)) - d.total)).toBeLessThanOrEqual(1e-9 * termScale)
    expect(Math.abs(d.total - gp.decomposition_v.total)).toBeLessThan(1e-4 * termScale)
    const residual = Number(await page.textContent(`${q(tabId)} [data-field="sum-residual"]`))
    expect(Math.abs(residual)).toBeLessThan(1e-4 * termScale)
    expect(await page.getAttribute(`${q(tabId)} [data-field="sum-check"]`, 'data-ok')).toBe('true')

    await page.check(`${q(tabId)} [data-field="ov-only"]`)
    const ov = await cells.evaluateAll((els) => els.map((e) => ({ h: Number(e.getAttribute('data-head')), s: Number(e.getAttribute('data-source')), v: Number(e.getAttribute('data-value')) })))
    expect(relErr(ov.map((c) => c.v), ov.map((c) => gp.decomposition_v.heads_ov[c.h][c.s]))).toBeLessThan(1e-4)
    await page.uncheck(`${q(tabId)} [data-field="ov-only"]`)

    // Two attention layers come before layer 1's resid_mid: the picker shows layer 0's heads × sources too,
    // which with its b_O add up to PyTorch's attn_out of layer 0 along v.
    const picker = `${q(tabId)} [data-field="heatmap-layer"]`
    const shownLayer = () => page.getAttribute(`${q(tabId)} [data-field="head-source-heatmap"]`, 'data-layer')
    expect(await page.$$eval(`${picker} option`, (os) => os.map((o) => o.getAttribute('value')))).toEqual(['0', '1'])
    expect(await shownLayer()).toBe('1')
    await page.selectOption(picker, '0')
    await poll(shownLayer).toBe('0')
    const layer0 = await cells.evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-value'))))
    expect(layer0.length).toBe(heads.length * (gp.pos + 1))
    closeTo(layer0.reduce((a, x) => a + x, d.attn[0].b_O), gp.decomposition_v.earlier_attn_out[0], termScale)
    await page.selectOption(picker, '1')
    await poll(shownLayer).toBe('1')
    await shot('trace-03-attention')
  })

  it('opens the heatmap on the point’s neighbourhood, head labels fixed, and keeps its scroll and selection across clicks', async () => {
    const map = `${q(tabId)} [data-field="head-source-heatmap"]`
    const scroller = `${map} [data-field="heatmap-scroll"]`
    // A window too narrow for every source: the heatmap opens anew (another section and back) and scrolls.
    await page.setViewportSize({ width: 240, height: 900 })
    try {
      await page.click(`${q(tabId)} [data-section="overview"]`)
      await page.click(`${q(tabId)} [data-section="attention"]`)
      await page.waitForSelector(`${map} rect[data-head]`)
      const box = async (sel: string) => (await page.locator(sel).first().boundingBox())!
      const scroll = () => page.$eval(scroller, (e) => ({ left: e.scrollLeft, client: e.clientWidth, width: e.scrollWidth }))
      const opened = await scroll()
      expect(opened.width, 'the sources overflow the narrow window').toBeGreaterThan(opened.client)
      expect(opened.left).toBeGreaterThan(0)
      // The point's own column is in view.
      const view = await box(scroller)
      const pointCell = await box(`${map} rect[data-head="0"][data-source="${gp.pos}"]`)
      expect(pointCell.x).toBeGreaterThanOrEqual(view.x - 1)
      expect(pointCell.x + pointCell.width).toBeLessThanOrEqual(view.x + view.width + 1)
      // Head labels stay where they are while the cells scroll under them.
      const label = await box(`${map} [data-field="head-label"]`)
      const cell0 = await box(`${map} rect[data-head="0"][data-source="${gp.pos}"]`)
      await page.$eval(scroller, (e) => e.scrollTo({ left: 0 }))
      await poll(async () => (await scroll()).left).toBe(0)
      expect((await box(`${map} [data-field="head-label"]`)).x).toBe(label.x)
      expect((await box(`${map} rect[data-head="0"][data-source="${gp.pos}"]`)).x).toBeGreaterThan(cell0.x)
      // Scrolled to the middle, a click picks its cell and re-runs the trace; the scroll and the pick stay.
      const middle = Math.round((opened.width - opened.client) / 2)
      await page.$eval(scroller, (e, x) => e.scrollTo({ left: x }), middle)
      await poll(async () => (await scroll()).left).toBe(middle)
      const s = Math.min(gp.pos, Math.floor((middle + 4) / 22) + 1)
      const picked = `${map} rect[data-head="1"][data-source="${s}"]`
      await page.click(picked)
      await poll(() => page.getAttribute(picked, 'class')).toContain('picked')
      await page.waitForSelector(`${q(tabId)}[data-loading="false"]`)
      expect((await scroll()).left).toBe(middle)
      expect(await page.getAttribute(picked, 'class')).toContain('picked')
      expect(await page.locator(`${map} rect.picked`).count()).toBe(1)
      // And after another section.
      await page.click(`${q(tabId)} [data-section="overview"]`)
      await page.click(`${q(tabId)} [data-section="attention"]`)
      await page.waitForSelector(picked)
      expect((await scroll()).left).toBe(middle)
      expect(await page.getAttribute(picked, 'class')).toContain('picked')
      await shot('trace-03b-heatmap-narrow')
      // Back to the default head and source (the strongest), which the circuit goldens are of.
      await page.click(`${map} rect[data-head="${gp.best_head}"][data-source="${gp.circuit_source_pos}"]`, { force: true })
      await page.waitForSelector(`${q(tabId)}[data-loading="false"]`)
    } finally {
      await page.setViewportSize({ width: 1440, height: 900 })
    }
  })

  it('switches to u, whose total is the first-order value PyTorch gives', async () => {
    await page.click(`${q(tabId)} [data-convention="u"]`)
    await poll(() => page.getAttribute(q(tabId), 'data-convention')).toBe('u')
    const direct = await ipc('trace.run', { point: { feature: gp.feature, sample: gp.sample, pos: gp.pos } })
    expect(await page.textContent(`${q(tabId)} [data-field="convention-label"]`)).toContain(direct.u.label)
    const total = Number(await page.textContent(`${q(tabId)} [data-field="sum-total"]`))
    closeTo(total, direct.u.decomposition.total, 1, 0)
    closeTo(total, gp.u_dot_resid_mid, gp.u_dot_resid_mid)
    closeTo(await num(`${q(tabId)} [data-field="trace-dot"]`), gp.u_dot_resid_mid, gp.u_dot_resid_mid)
    expect(Math.abs(Number(await page.textContent(`${q(tabId)} [data-field="sum-residual"]`)))).toBeLessThan(1e-4 * Math.abs(total))
    await shot('trace-04-attention-u')
  })

  it('switches heads: per-head tables as PyTorch computes them, the QK grid recomputed for the head', async () => {
    await page.click(`${q(tabId)} [data-section="circuits"]`)
    const qkGrid = `${tabId}:qk-grid`
    await page.waitForSelector(`[data-grid-id="${qkGrid}"] .ag-row`)
    // The default head is the strongest one; its QK grid is the golden one (nulls blank).
    const g = gp.qk_grid
    expect(await page.getAttribute(`${q(tabId)} .circuits`, 'data-head')).toBe(String(g.head))
    const scale = Math.max(...g.scores.flat().map((x) => Math.abs(x ?? 0)))
    for (const [k, r] of g.relative_positions.entries()) {
      const col = await columnTexts(qkGrid, `rel${r}`)
      expect(col).toHaveLength(g.tokens.length)
      col.forEach((t, i) => {
        const want = g.scores[i][k]
        if (want === null) expect(t).toBe('')
        else closeTo(Number(t), want, scale)
      })
    }

    const heads = await page.locator(`${q(tabId)} .circuits .seg [data-head]`).count()
    expect(heads).toBe(golden!.f32(`${gp.key}.blocks.${golden!.layer}.attn.hook_pattern`).dims[0])
    const other = (g.head + 1) % heads
    await page.click(`${q(tabId)} .circuits .seg [data-head="${other}"]`)
    await poll(() => page.getAttribute(`${q(tabId)} .circuits`, 'data-head')).toBe(String(other))
    // Until the new head's trace.point answers, no other head's tables stand under it: a loading line instead.
    const shown = await page.$eval(`${q(tabId)} .circuits`, (el) => el.querySelector('.tables')?.getAttribute('data-tables-head') ?? (el.querySelector('[data-tables-loading]') ? 'loading' : 'none'))
    expect(['loading', String(other)]).toContain(shown)
    await poll(() => page.textContent(`[data-grid-id="${qkGrid}"] .grid-title`)).toContain(`H${other})`)
    // The tables are the trace's head's only: the new head's come with its trace.point's answer.
    await page.waitForSelector(`${q(tabId)} .tables[data-tables-head="${other}"] [data-grid-id="${tabId}:ov-top"] .ag-row`)
    // OV token scores of u for the new head, top 20: the highest of PyTorch's, and each token's own score.
    const ovU = golden!.f32(`${gp.key}.ov_tokens_u.h${other}`).data
    const sorted = Array.from(ovU).sort((a, b) => b - a)
    const { rows } = await exportCsv(`${tabId}:ov-top`)
    expect(rows.length - 1).toBe(20)
    rows.slice(1).forEach((r, i) => {
      closeTo(Number(r[2]), sorted[i], sorted[0])
      closeTo(Number(r[2]), ovU[Number(r[1])], sorted[0])
    })
    const direct = await ipc('trace.run', { point: { feature: gp.feature, sample: gp.sample, pos: gp.pos }, options: { head: other } })
    expect(await columnTexts(qkGrid, 'rel-1')).toEqual(direct.qkGrid.scores.map((s) => (s[0] === null ? '' : s[0].toFixed(4))))
    expect(await page.textContent(`${q(tabId)} [data-vocab="${tabId}:qk-seed"] .figure-title`)).toContain('QK (seed definition)')
    await shot('trace-05-circuits')

    // The source of the LN+OV and QK tables is picked here too: each option carries the head's term.
    const sourcePicker = `${q(tabId)} [data-field="circuit-source"]`
    expect(await page.inputValue(sourcePicker)).toBe(String(gp.circuit_source_pos))
    const options = await page.$$eval(`${sourcePicker} option`, (os) => os.map((o) => o.textContent ?? ''))
    expect(options).toHaveLength(gp.pos + 1)
    const uHeads = direct.u.decomposition.attn.find((a) => a.layer === direct.circuitLayer)!.heads[other]
    // As the page writes numbers (format.ts fmtNum): 4 decimals, exponent form below 1e-3.
    const written = (x: number) => (x !== 0 && Math.abs(x) < 1e-3 ? x.toExponential(3) : x.toFixed(4))
    options.forEach((o, i) => expect(o).toContain(written(uHeads[i])))
    const elsewhere = gp.circuit_source_pos === 0 ? 1 : 0
    await page.selectOption(sourcePicker, String(elsewhere))
    await poll(() => page.textContent(`${q(tabId)} [data-vocab="${tabId}:ln-ov"]`)).toContain(`p = source ${elsewhere} `)
    await page.waitForSelector(`${q(tabId)}[data-loading="false"]`)
    const moved = await ipc('trace.run', { point: { feature: gp.feature, sample: gp.sample, pos: gp.pos }, options: { head: other, sourcePos: elsewhere } })
    expect(moved.u.headTables.head).toBe(other)
    const lnOv = moved.u.headTables.lnOv.top
    const { rows: lnRows } = await exportCsv(`${tabId}:ln-ov-top`)
    lnRows.slice(1, 6).forEach((r, i) => closeTo(Number(r[2]), lnOv[i].score, lnOv[0].score))
    await page.selectOption(sourcePicker, String(gp.circuit_source_pos))
    await poll(() => page.textContent(`${q(tabId)} [data-vocab="${tabId}:ln-ov"]`)).toContain(`p = source ${gp.circuit_source_pos} `)
    await page.waitForSelector(`${q(tabId)}[data-loading="false"]`)
  })

  it('exports the activation-score grid to CSV as shown, with PyTorch’s scores', async () => {
    await page.click(`${q(tabId)} [data-convention="v"]`)
    await page.click(`${q(tabId)} [data-section="overview"]`)
    const grid = `${tabId}:scores`
    await page.waitForSelector(`[data-grid-id="${grid}"] .ag-row`)
    const { rows, name } = await exportCsv(grid)
    expect(name).toBe(`trace-f${gp.feature}-s${gp.sample}-p${gp.pos}-v-activation-scores.csv`)
    expect(rows[0]).toEqual(CSV_SCORE_COLUMNS)
    const shown = await Promise.all(SCORE_COLUMNS.map((c) => columnTexts(grid, c)))
    expect(shown[0].length).toBeGreaterThan(5)
    // The grid's rows in its order: the same places, the raw score that the grid shows rounded.
    for (let r = 0; r < shown[0].length; r++) {
      expect(rows[r + 1][6]).toBe(shown[5][r])
      closeTo(Number(shown[6][r]), Number(rows[r + 1][7]), 1, 1e-4)
    }
    // resid_mid·v of every row against PyTorch's, by the row's place in the batch.
    const scores = golden!.f32(`${gp.key}.scores_v`).data
    const seqLen = gp.positions.length
    const start = gp.batch_start
    const top = Math.max(...scores)
    closeTo(Number(rows[1][7]), top, top)
    for (const r of rows.slice(1)) closeTo(Number(r[7]), scores[(Number(r[4]) - start) * seqLen + Number(r[5])], top)
  })

  it('shows fidelity: Pearson r as PyTorch computes it and a scatter over the batch', async () => {
    await page.click(`${q(tabId)} [data-section="fidelity"]`)
    const r = Number(await page.textContent(`${q(tabId)} [data-field="pearson"]`))
    closeTo(r, gp.fidelity_pearson, 1)
    const direct = await ipc('trace.run', { point: { feature: gp.feature, sample: gp.sample, pos: gp.pos } })
    expect(Number(await page.getAttribute(`${q(tabId)} [data-field="fidelity-scatter"]`, 'data-points'))).toBe(direct.scopePreActivations.length)
    const grid = `[data-grid-id="${tabId}:disagreements"]`
    await page.waitForSelector(`${grid} .ag-row`)
    await shot('trace-06-fidelity')

    // Every column fits: the error column's right edge is inside the grid.
    const gridBox = (await page.locator(`${grid} .ag-root`).boundingBox())!
    const errorHeader = (await page.locator(`${grid} .ag-header-cell[col-id="error"]`).boundingBox())!
    expect(errorHeader.x + errorHeader.width).toBeLessThanOrEqual(gridBox.x + gridBox.width + 1)

    // The disagreements among the tokens where the feature fires, as PyTorch's batch arrays give them.
    await page.click(`${q(tabId)} [data-field="disagreement-set"] [data-set="firing"]`)
    await poll(() => page.getAttribute(`${q(tabId)} [data-field="disagreement-set"]`, 'data-set')).toBe('firing')
    await poll(() => page.textContent(`${grid} .grid-title`)).toContain('where the feature fires')
    const [scores, pre, acts] = ['scores_v', 'pre_batch', 'acts_batch'].map((k) => golden!.f32(`${gp.key}.${k}`).data)
    const want = Array.from(pre.keys())
      .filter((i) => acts[i] > 0)
      .map((i) => gp.pre_activation + scores[i] - gp.v_dot_resid_mid - pre[i])
      .sort((a, b) => Math.abs(b) - Math.abs(a))
    const { rows, name } = await exportCsv(`${tabId}:disagreements`)
    expect(name).toBe(`trace-f${gp.feature}-s${gp.sample}-p${gp.pos}-v-disagreements-firing.csv`)
    const col = (c: string): number => rows[0].indexOf(c)
    expect(rows.length - 1).toBe(Math.min(100, want.length))
    const seqLen = gp.positions.length
    rows.slice(1).forEach((r, k) => {
      expect(acts[(Number(r[col('batch')]) - gp.batch_start) * seqLen + Number(r[col('pos')])]).toBeGreaterThan(0)
      closeTo(Number(r[col('error')]), want[k], want[0])
    })

    // The scatter has axes: round ticks inside the plotted range, evenly spaced, with titles.
    const scatter = `${q(tabId)} [data-field="fidelity-scatter"]`
    for (const axis of ['x', 'y']) {
      const ticks = await page.$$eval(`${scatter} [data-field="${axis}-tick"]`, (gs) => gs.map((g) => ({ v: Number(g.getAttribute('data-value')), px: Number(g.getAttribute('data-px')), text: g.textContent ?? '' })))
      expect(ticks.length, `${axis} ticks`).toBeGreaterThanOrEqual(3)
      ticks.forEach((t) => expect(Number(t.text)).toBeCloseTo(t.v, 6))
      const step = ticks[1].v - ticks[0].v
      const px = ticks[1].px - ticks[0].px
      ticks.forEach((t, i) => {
        expect(t.v - ticks[0].v).toBeCloseTo(i * step, 9)
        expect(t.px - ticks[0].px).toBeCloseTo(i * px, 6)
      })
    }
    expect(await page.textContent(`${scatter} [data-field="x-label"]`)).toBe('true pre-activation')
    expect(await page.textContent(`${scatter} [data-field="y-label"]`)).toBe('linear prediction')
    await shot('trace-06a-fidelity-firing')
  })

  it('shows the causal checks: Pearson r, a scatter of every check and a grid whose CSV holds the handler’s numbers', async () => {
    await page.click(`${q(tabId)} [data-section="causal"]`)
    await page.waitForSelector(`${q(tabId)} [data-field="causal-checks"][data-loading="false"]`)
    const direct = await ipc('trace.ablate', { point: { feature: gp.feature, sample: gp.sample, pos: gp.pos } })
    expect(Number(await page.getAttribute(`${q(tabId)} [data-field="ablation-scatter"]`, 'data-points'))).toBe(direct.ablations.length)
    // The same axes as the fidelity scatter: ticks with their values on both axes.
    for (const axis of ['x', 'y']) expect(await page.locator(`${q(tabId)} [data-field="ablation-scatter"] [data-field="${axis}-tick"]`).count()).toBeGreaterThanOrEqual(3)
    closeTo(await num(`${q(tabId)} [data-field="causal-pearson"]`), direct.pearson!, 1)
    const grid = `${tabId}:causal`
    await page.waitForSelector(`[data-grid-id="${grid}"] .ag-row`)
    const { rows, name } = await exportCsv(grid)
    expect(name).toBe(`trace-f${gp.feature}-s${gp.sample}-p${gp.pos}-causal-checks.csv`)
    const col = (c: string): number => rows[0].indexOf(c)
    for (const c of ['check', 'layer', 'head', 'source', 'str_tokens', 'predicted', 'actual', 'gap', 'mean_predicted', 'mean_actual']) expect(col(c), c).toBeGreaterThanOrEqual(0)
    expect(rows.length - 1).toBe(direct.ablations.length)
    const byCheck = new Map(direct.ablations.map((a) => [`L${a.layer}H${a.head} ← ${a.source ?? 'all'}`, a]))
    const scale = Math.max(...direct.ablations.map((a) => Math.abs(a.actual)))
    for (const r of rows.slice(1)) {
      const a = byCheck.get(r[col('check')])!
      closeTo(Number(r[col('predicted')]), a.predicted, scale)
      closeTo(Number(r[col('actual')]), a.actual, scale)
      closeTo(Number(r[col('mean_actual')]), a.meanActual!, scale)
    }
    // Sorted by |predicted|, largest first, as the grid shows it.
    const predicted = rows.slice(1).map((r) => Math.abs(Number(r[col('predicted')])))
    expect(predicted).toEqual([...predicted].sort((x, y) => y - x))
    await shot('trace-06b-causal')
  })

  it('traces a typed prompt from the prompt view, and shows the handler’s errors', async () => {
    await page.click('[data-tab="prompt"]')
    await page.fill('[data-field="prompt-text"]', '')
    await page.click('[data-action="prompt-run"]')
    await poll(() => page.textContent('[data-field="prompt-error"]')).toMatch(/empty/)

    const long = 'def tokenize(text): return text.split() '.repeat(20)
    await page.fill('[data-field="prompt-text"]', long)
    await page.click('[data-action="prompt-run"]')
    const tooLong = await ipc('trace.prompt', { prompt: long }).then(
      () => '',
      (e: Error) => e.message,
    )
    expect(tooLong).toMatch(/n_ctx/)
    await poll(() => page.textContent('[data-field="prompt-error"]')).toContain(tooLong.replace(/^[^:]+: [^:]+: /, ''))

    const prompt = 'def tokenize(text):\n    "Split'
    await page.fill('[data-field="prompt-text"]', prompt)
    await page.fill('[data-field="prompt-feature"]', String(gp.feature))
    await page.click('[data-action="prompt-run"]')
    await page.waitForSelector('[data-field="heat-strip"] [data-pos]')
    expect(await page.locator('[data-field="prompt-error"]').count()).toBe(0)
    const view: PromptViewJson = await ipc('trace.prompt', { prompt, feature: gp.feature })
    expect(await page.locator('[data-field="heat-strip"] [data-pos]').count()).toBe(view.tokens.length)
    expect((await columnTexts('prompt-tokens', 'str_tokens')).slice(0, 3)).toEqual(view.tokens.slice(0, 3).map((t) => t.str_tokens))
    // Trace at the token where the feature is strongest (a small position keeps blanks in the QK grid).
    const acts = view.strip!.activations
    const at = acts.indexOf(Math.max(...acts))
    await shot('trace-07-prompt-view')
    await page.click(`[data-field="heat-strip"] [data-pos="${at}"]`)
    const promptTab = await page.getAttribute('.tab-strip [role="tab"][aria-selected="true"]', 'data-tab')
    expect(promptTab).toMatch(new RegExp(`^trace:${gp.feature}:prompt-.+/${at}$`))
    await waitTrace(promptTab!)
    const direct: TraceJson = await ipc('trace.run', { point: { feature: gp.feature, prompt, token: at } })
    const shownAct = await num(`${q(promptTab!)} [data-field="trace-activation"]`)
    expect(shownAct).toBe(direct.activation)
    closeTo(shownAct, acts[at], acts[at]) // the SAE graph's activation, through another path
    expect(await page.textContent(`${q(promptTab!)} [data-field="trace-point"]`)).toBe(`prompt token ${at}`)
    await shot('trace-08-prompt-trace')
  })

  it('compares two open traces: cosines as trace.compare and the vectors give', async () => {
    await page.click(`[data-tab="${tabId}"]`)
    await page.click(`${q(tabId)} [data-action="compare"]`)
    await poll(() => page.getAttribute('[data-tab="compare"]', 'aria-selected')).toBe('true')
    await page.selectOption('[data-field="compare-b"]', firstTab)
    expect(await page.inputValue('[data-field="compare-convention"]')).toBe('u')
    await page.selectOption('[data-field="compare-convention"]', 'v')
    await page.click('[data-action="compare-run"]')
    await page.waitForSelector('[data-field="compare-cos-v"]')
    const a = { feature: gp.feature, sample: gp.sample, pos: gp.pos }
    const b = firstPoint
    const cmp: TraceComparisonJson = await ipc('trace.compare', { a, b, convention: 'v' })
    const cosV = Number(await page.textContent('[data-field="compare-cos-v"]'))
    closeTo(cosV, cmp.cosineV, 1, 0)
    // The cosine from the two v vectors themselves.
    const [ta, tb] = await Promise.all([ipc('trace.run', { point: a }), ipc('trace.run', { point: b })])
    const dot = (x: number[], y: number[]) => x.reduce((s, xi, i) => s + xi * y[i], 0)
    closeTo(cosV, dot(ta.v.vector, tb.v.vector) / Math.sqrt(dot(ta.v.vector, ta.v.vector) * dot(tb.v.vector, tb.v.vector)), 1, 1e-5)
    const ids = (await columnTexts('compare-more-a', 'tokenId')).map(Number)
    expect(ids.slice(0, 5)).toEqual(cmp.tokenScoreDiff.moreInA.slice(0, 5).map((d) => d.tokenId))
    // Every token by its text, as trace.run's vocabulary rows write it, not '#id'.
    const all = await ipc('trace.run', { point: a, options: { vocabRows: 'all' } })
    const texts = new Map(all.v.tokenScores.rows!.map(([id, str]) => [id, str]))
    const shownTokens = await columnTexts('compare-more-a', 'str_tokens')
    expect(shownTokens.length).toBeGreaterThan(0)
    shownTokens.forEach((t, i) => {
      expect(t).toBe(texts.get(ids[i])!.trim())
      expect(t).not.toMatch(/^#\d+$/)
    })
    // The decompositions side by side (issue 14 §6): every term of each once (each side adds up to that
    // trace's own sum of terms), the largest |A − B| first in the grid.
    const sum = (k: 'a' | 'b') => cmp.terms.reduce((s, t) => s + t[k], 0)
    closeTo(sum('a'), ta.v.decomposition.sumOfTerms, ta.v.decomposition.sumOfTerms, 1e-5)
    closeTo(sum('b'), tb.v.decomposition.sumOfTerms, tb.v.decomposition.sumOfTerms, 1e-5)
    const top = `[data-grid-id="compare-terms"] .ag-row[row-index="0"]`
    await page.waitForSelector(top)
    const cell = async (col: string) => (await page.textContent(`${top} .ag-cell[col-id="${col}"]`))!.trim()
    expect(await cell('kind')).toBe(cmp.terms[0].kind)
    closeTo(Number(await cell('diff')), cmp.terms[0].diff, 1, 0)
    expect(Math.abs(cmp.terms[0].diff)).toBe(Math.max(...cmp.terms.map((t) => Math.abs(t.diff))))

    // Both directions' activation scores over A's batch (issue 14 §6): A's are PyTorch's resid_mid·v_A, B's
    // are B's own trace's scores where B's batch is A's; Pearson r from those arrays.
    const scatter = '[data-field="compare-score-scatter"]'
    await page.waitForSelector(scatter)
    const goldA = golden!.f32(`${gp.key}.scores_v`).data
    expect(Number(await page.getAttribute(scatter, 'data-points'))).toBe(goldA.length)
    expect(relErr(cmp.scores.a, Array.from(goldA))).toBeLessThan(1e-4)
    expect(tb.scope).toEqual(ta.scope)
    expect(relErr(cmp.scores.b, tb.v.activationScores)).toBeLessThan(1e-4)
    const mean = (x: ArrayLike<number>) => Array.from(x).reduce((s, v) => s + v, 0) / x.length
    const [ma, mb] = [mean(goldA), mean(tb.v.activationScores)]
    const cov = (x: ArrayLike<number>, mx: number, y: ArrayLike<number>, my: number) => Array.from(x).reduce((s, v, i) => s + (v - mx) * (y[i] - my), 0)
    const r = cov(goldA, ma, tb.v.activationScores, mb) / Math.sqrt(cov(goldA, ma, goldA, ma) * cov(tb.v.activationScores, mb, tb.v.activationScores, mb))
    closeTo(await num(`${scatter} [data-field="compare-score-pearson"]`), r, 1, 1e-4)
    expect(cmp.scores.pointA).toBe((gp.sample - gp.batch_start) * gp.positions.length + gp.pos)
    expect(cmp.scores.pointB).toBe((b.sample - gp.batch_start) * gp.positions.length + b.pos)
    for (const axis of ['x', 'y']) expect(await page.locator(`${scatter} [data-field="${axis}-tick"]`).count()).toBeGreaterThanOrEqual(3)
    expect(await page.textContent(`${scatter} [data-field="x-label"]`)).toBe('A: v_A·resid_mid')
    await shot('trace-09-compare')
  })

  it('pins a trace into the session and restores it by re-running it', async () => {
    await page.click(`[data-tab="${tabId}"]`)
    await page.click(`${q(tabId)} [data-action="pin"]`)
    expect(await page.getAttribute(`${q(tabId)} [data-action="pin"]`, 'aria-pressed')).toBe('true')
    const path = join(serve.tmp, 'traces.ftsession')
    await page.keyboard.press('Control+s')
    await page.fill('[role="dialog"] [data-field="path"]', path)
    await page.keyboard.press('Enter')
    await page.waitForSelector('[data-field="session-notice"]')
    const saved = JSON.parse(readFileSync(path, 'utf8')) as { state: { tabs: { id: string; kind: string; pinned?: boolean; point?: unknown }[] } }
    const traces = saved.state.tabs.filter((t) => t.kind === 'trace')
    // Every trace tab is kept; the pinned one is marked (it keeps its whole-corpus scores too).
    expect(traces.filter((t) => t.pinned).map((t) => t.id)).toEqual([tabId])
    expect(traces.find((t) => t.id === tabId)!.point).toEqual({ feature: gp.feature, sample: gp.sample, pos: gp.pos })
    expect((traces.find((t) => t.id === tabId) as { convention?: string }).convention).toBe('v')
    expect(traces.map((t) => t.id)).toContain(firstTab)

    await reloadAndRestore(path)
    await poll(() => page.getAttribute(`[data-tab="${tabId}"]`, 'aria-selected')).toBe('true')
    expect(await page.locator(`[data-tab="${firstTab}"]`).count()).toBe(1) // unpinned, restored too
    await waitTrace(tabId)
    closeTo(await num(`${q(tabId)} [data-field="trace-activation"]`), gp.activation, gp.activation)
    expect(await page.getAttribute(`${q(tabId)} [data-action="pin"]`, 'aria-pressed')).toBe('true')
    // Its saved convention, not the default u a new trace opens in.
    expect(await page.getAttribute(q(tabId), 'data-convention')).toBe('v')
    await shot('trace-10-restored')
  })

  it('scores the whole corpus from a trace tab: a moving progress bar, then a top score PyTorch bounds and gives', async () => {
    await page.click(`[data-tab="${tabId}"]`)
    await waitTrace(tabId)
    await page.click(`${q(tabId)} [data-section="corpus"]`)
    const panel = `${q(tabId)} [data-field="corpus-scores"]`
    await page.click(`${panel} [data-action="corpus-start"]`)
    const info = await ipc('bundle.info', {})
    const corpusTokens = info.dataset.n_seq * info.dataset.seq_len
    // Mid-way: some of the corpus's tokens done, a rate and an ETA.
    const bar = `${panel} [data-field="corpus-progress"]`
    await poll(async () => {
      const b = await barState(bar)
      return !!b && b.jobId !== '' && b.done > 0 && b.done < b.total && b.total === corpusTokens
    }).toBe(true)
    expect(await page.textContent(`${panel} [data-field="corpus-rate"]`)).toMatch(/^[\d,]+ tokens\/s$/)
    expect(await page.textContent(`${panel} [data-field="corpus-eta"]`)).toMatch(/^ETA \d+ s$/)
    const percent = Number(await page.getAttribute(bar, 'aria-valuenow'))
    expect(percent).toBeGreaterThan(0)
    expect(percent).toBeLessThan(100)
    await shot('trace-11-corpus-progress')

    const result = `${panel} [data-field="corpus-result"]`
    await page.waitForSelector(result)
    expect(await page.locator(bar).count()).toBe(0)
    expect(await page.getAttribute(panel, 'data-state')).toBe('done')
    expect(await page.textContent(`${panel} [data-field="corpus-tokens"]`)).toContain(corpusTokens.toLocaleString('en-US'))

    // The golden batch is part of the corpus: its highest resid_mid·v bounds the corpus's from below, and
    // the row of the golden batch's top token shows PyTorch's score.
    const scores = golden!.f32(`${gp.key}.scores_v`).data
    const seqLen = gp.positions.length
    const goldenTop = Math.max(...scores)
    const at = scores.indexOf(goldenTop)
    const label = `${gp.batch_start + Math.floor(at / seqLen)}/${at % seqLen}`
    const corpusMax = await num(`${panel} [data-field="corpus-max"]`)
    expect(corpusMax).toBeGreaterThanOrEqual(goldenTop - 1e-4 * Math.abs(goldenTop))

    const top = `${tabId}:corpus-top`
    const { rows, name } = await exportCsv(top)
    expect(name).toBe(`trace-f${gp.feature}-s${gp.sample}-p${gp.pos}-v-corpus-top.csv`)
    expect(rows[0]).toEqual(CSV_SCORE_COLUMNS)
    expect(rows.length - 1).toBe(100)
    closeTo(Number(rows[1][7]), corpusMax, corpusMax)
    const bottom = await exportCsv(`${tabId}:corpus-bottom`)
    expect(bottom.rows[0]).toEqual(CSV_SCORE_COLUMNS)
    const corpusMin = Number(bottom.rows[1][7])
    expect(corpusMin).toBeLessThanOrEqual(Math.min(...scores) + 1e-4 * Math.abs(goldenTop))
    // One scale around zero over both grids: a positive score red, a negative one blue, ±x alike in depth.
    const both = colourScale('diverging', [corpusMin, corpusMax], 'zero')
    for (const [grid, value] of [[top, corpusMax], [`${tabId}:corpus-bottom`, corpusMin]] as const) {
      const style = await page.getAttribute(`[data-grid-id="${grid}"] .ag-row[row-index="0"] .ag-cell[col-id="score"]`, 'style')
      expect(rgb(/background-color:\s*([^;]+)/.exec(style ?? '')?.[1] ?? '')).toEqual(rgb(scaleStyle(value, both).backgroundColor))
    }
    await shot('trace-12-corpus-result')
    await page.fill(`[data-grid-id="${top}"] .grid-filter`, label)
    const row = `[data-grid-id="${top}"] .ag-row[row-id="${label}"]`
    const shownScore = Number((await page.textContent(`${row} .ag-cell[col-id="score"]`))!.trim())
    expect(Math.abs(shownScore - goldenTop)).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(goldenTop)))

    // Every token is in the histogram; the corpus-wide fidelity is the golden batch's when that batch is the corpus.
    expect(Number(await page.getAttribute(`${panel} [data-field="corpus-histogram"] svg`, 'data-total'))).toBe(corpusTokens)
    expect(Number(await page.getAttribute(`${panel} [data-field="fidelity-scatter"]`, 'data-points'))).toBeGreaterThan(0)
    await page.waitForSelector(`[data-grid-id="${tabId}:corpus-disagreements"] .ag-row`)
    if (gp.batch_start === 0 && gp.batch_size === info.dataset.n_seq) {
      closeTo(Number(await page.textContent(`${panel} [data-field="corpus-pearson"]`)), gp.fidelity_pearson, 1)
    }
    await page.locator(`${panel} [data-field="corpus-histogram"]`).scrollIntoViewIfNeeded()
    await shot('trace-13-corpus-fidelity')

    // Its token traces there.
    await page.click(`${row} .token-link`)
    const there = `trace:${gp.feature}:${label}`
    await poll(() => page.getAttribute(`[data-tab="${there}"]`, 'aria-selected')).toBe('true')
    await waitTrace(there)
    const [s, p] = label.split('/')
    expect(await page.textContent(`${q(there)} [data-field="trace-point"]`)).toBe(`sample ${s}, pos ${p}`)
  })

  it('cancels a corpus job mid-way and keeps the other convention’s result', async () => {
    await page.click(`[data-tab="${tabId}"]`)
    const panel = `${q(tabId)} [data-field="corpus-scores"]`
    const vJob = await page.getAttribute(`${panel} [data-field="corpus-result"]`, 'data-job-id')
    await page.click(`${q(tabId)} [data-convention="u"]`)
    await poll(() => page.getAttribute(panel, 'data-state')).toBe('idle')
    expect(await page.locator(`${panel} [data-field="corpus-result"]`).count()).toBe(0)
    await page.click(`${panel} [data-action="corpus-start"]`)
    const bar = `${panel} [data-field="corpus-progress"]`
    let jobId = ''
    await poll(async () => {
      const b = await barState(bar)
      jobId = b?.jobId ?? ''
      return !!b && jobId !== '' && b.done > 0 && b.done < b.total
    }).toBe(true)
    await page.click(`${panel} [data-action="corpus-cancel"]`)
    await page.waitForSelector(`${panel}[data-state="cancelled"] [data-field="corpus-cancelled"]`)
    expect(await page.locator(bar).count()).toBe(0)
    expect(await page.locator(`${panel} [data-field="corpus-result"]`).count()).toBe(0)
    // Main never finished it: no result under its id, and a new job may start.
    await expect(ipc('trace.corpusScores.result', { jobId })).rejects.toThrow(/not_found/)
    expect(await page.isEnabled(`${panel} [data-action="corpus-start"]`)).toBe(true)
    await shot('trace-14-corpus-cancelled')

    await page.click(`${q(tabId)} [data-convention="v"]`)
    await poll(() => page.getAttribute(`${panel} [data-field="corpus-result"]`, 'data-job-id')).toBe(vJob)
  })

  it('keeps a pinned trace’s whole-corpus scores in the session: restored from the file, not recomputed', async () => {
    await page.click(`[data-tab="${tabId}"]`)
    const panel = `${q(tabId)} [data-field="corpus-scores"]`
    const vJob = (await page.getAttribute(`${panel} [data-field="corpus-result"]`, 'data-job-id'))!
    const corpusMax = await num(`${panel} [data-field="corpus-max"]`)
    const path = join(serve.tmp, 'corpus.ftsession')
    await page.click('[data-action="session-save-as"]')
    await page.fill('[role="dialog"] [data-field="path"]', path)
    await page.keyboard.press('Enter')
    await poll(() => existsSync(path)).toBe(true) // main writes it atomically: there means complete
    const saved = JSON.parse(readFileSync(path, 'utf8')) as { state: { tabs: { id: string; corpusScores?: Record<string, { jobId: string }> }[] } }
    const tab = saved.state.tabs.find((t) => t.id === tabId)!
    expect(Object.keys(tab.corpusScores ?? {})).toEqual(['v']) // u's job was cancelled: nothing to keep
    expect(tab.corpusScores!.v.jobId).toBe(vJob)

    await reloadAndRestore(path)
    await page.click(`[data-tab="${tabId}"]`)
    await page.click(`${q(tabId)} [data-section="corpus"]`)
    // The same result: its job id is the saved one (a new job would have a new id), and no job ran.
    await poll(() => page.getAttribute(`${panel} [data-field="corpus-result"]`, 'data-job-id')).toBe(vJob)
    expect(await page.getAttribute(panel, 'data-state')).toBe('done')
    expect(await num(`${panel} [data-field="corpus-max"]`)).toBe(corpusMax)
  })

  it('shows the point part of a trace at once and fills the batch grids when the scope part arrives', async () => {
    // Hold main's trace.scope answers back (the HTTP bridge's POST) until released.
    let release!: () => void
    const held = new Promise<void>((r) => (release = r))
    await page.route('**/api/trace.scope', async (route) => {
      await held
      await route.continue()
    })
    try {
      await page.click(`[data-tab="${tabId}"]`)
      await page.click(`${q(tabId)} [data-section="overview"]`)
      const row = `[data-grid-id="${tabId}:scores"] .ag-row[row-index="3"]`
      const label = (await page.textContent(`${row} .ag-cell[col-id="label"]`))!.trim()
      await page.click(`${row} .ag-cell[col-id="str_tokens"] .token-link`)
      const there = `trace:${gp.feature}:${label}`
      await poll(() => page.getAttribute(`[data-tab="${there}"]`, 'aria-selected')).toBe('true')
      // The point part is shown: the activation, W_E·v's rows, the heatmap; the scope part is pending.
      await waitTrace(there)
      await page.waitForSelector(`[data-vocab="${there}:tokens"] .ag-row`)
      expect(await page.getAttribute(q(there), 'data-scope-loading')).toBe('true')
      // The batch's grid is already there (issue 14 §9: created while the batch runs, so the answer only
      // sets its rows), empty and marked loading, with its columns, the score's among them.
      const scores = `[data-grid-id="${there}:scores"]`
      await page.waitForSelector(`${scores} .ag-header-cell[col-id="score"]`)
      expect(await page.getAttribute(scores, 'data-loading')).toBe('true')
      expect(await page.textContent(`${scores} [data-field="grid-loading"]`)).toMatch(/running the batch through the model/)
      expect(await page.locator(`${scores} .ag-row`).count()).toBe(0)
      await page.click(`${q(there)} [data-section="attention"]`)
      await page.waitForSelector(`${q(there)} [data-field="sum-check"]`)
      await shot('trace-15-scope-pending')
      release()
      await page.click(`${q(there)} [data-section="overview"]`)
      await page.waitForSelector(`${scores} .ag-row`)
      expect(await page.getAttribute(q(there), 'data-scope-loading')).toBe('false')
      expect(await page.getAttribute(scores, 'data-loading')).toBe('false')
      expect(await page.locator(`${scores} [data-field="grid-loading"]:visible`).count()).toBe(0)
      expect(await page.locator(`${q(there)} [data-field="scope-pending"]`).count()).toBe(0)
      // The columns were made before the rows, yet the scores are painted on the rows' own scale (its bound
      // the largest |score| the grid shows), and the legend says so: not on the empty grid's scale.
      const shown = (await exportCsv(`${there}:scores`)).rows.slice(1).map((r) => Number(r[7]))
      const bound = Math.max(...shown.map(Math.abs))
      closeTo(Number(await page.getAttribute(`${scores} [data-field="colour-legend"]`, 'data-bound')), bound, bound)
      const painted = await page.getAttribute(`${scores} .ag-row[row-index="3"] .ag-cell[col-id="score"]`, 'style')
      const want = rgb(scaleStyle(shown[3], colourScale('diverging', shown, 'zero')).backgroundColor)
      rgb(/background-color:\s*([^;]+)/.exec(painted ?? '')?.[1] ?? '').forEach((c, k) => expect(Math.abs(c - want[k])).toBeLessThanOrEqual(2))
    } finally {
      release()
      await page.unroute('**/api/trace.scope')
    }
  })

  it('warms the batch of a token link the pointer rests on (trace.prefetch)', async () => {
    const asked: number[][] = []
    await page.route('**/api/trace.prefetch', async (route) => {
      asked.push((route.request().postDataJSON() as { samples: number[] }).samples)
      await route.continue()
    })
    try {
      await page.click(`[data-tab="feature:${gp.feature}"]`)
      const row = `[data-grid-id="feature:${gp.feature}:top"] .ag-row[row-index="2"]`
      const batch = Number((await page.textContent(`${row} .ag-cell[col-id="batch"]`))!.trim())
      await page.hover(`${row} .ag-cell[col-id="str_tokens"] .token-link`)
      await poll(() => asked.some((s) => s.length === 1 && s[0] === batch)).toBe(true)
    } finally {
      await page.unroute('**/api/trace.prefetch')
    }
  })

  it('opens new traces in the convention the settings choose', async () => {
    const choose = async (c: 'u' | 'v') => {
      await page.click('[data-action="settings"]')
      await page.selectOption('[data-field="trace-convention"]', c)
      await page.click('[data-action="settings"]')
    }
    await choose('v')
    try {
      await page.click(`[data-tab="feature:${gp.feature}"]`)
      const grid = `[data-grid-id="feature:${gp.feature}:top"]`
      await page.fill(`${grid} .grid-filter`, '')
      // A top row whose point has no tab yet (an open one keeps its own convention).
      const open = await page.$$eval('[role="tab"][data-tab^="trace:"]', (t) => t.map((x) => x.getAttribute('data-tab')))
      let there = ''
      for (let i = 1; i < 10 && !there; i++) {
        const label = (await page.textContent(`${grid} .ag-row[row-index="${i}"] .ag-cell[col-id="label"]`))?.trim()
        if (label && !open.includes(`trace:${gp.feature}:${label}`)) {
          there = `trace:${gp.feature}:${label}`
          await page.click(`${grid} .ag-row[row-index="${i}"] .token-link`)
        }
      }
      expect(there).not.toBe('')
      await poll(() => page.getAttribute(`[data-tab="${there}"]`, 'aria-selected')).toBe('true')
      await waitTrace(there)
      expect(await page.getAttribute(q(there), 'data-convention')).toBe('v')
    } finally {
      await choose('u')
    }
  })

  it('keeps the token out of the address bar, and without it says which URL to open', async () => {
    // The page dropped ?token= at start; the reloads above found it in the tab's sessionStorage.
    expect(page.url()).not.toContain('token')
    expect(new URL(page.url()).origin).toBe(new URL(serve.url).origin)
    const bare = await browser.context.newPage()
    try {
      await bare.goto(serve.url)
      await poll(() => bare.locator('[role="alert"]').allTextContents()).toContainEqual(
        expect.stringContaining('open the URL printed by feature-tracer serve, with its ?token='),
      )
    } finally {
      await bare.close()
    }
  })

  it('ran without page errors or CSP violations', () => {
    expect(pageErrors).toEqual([])
  })
})
