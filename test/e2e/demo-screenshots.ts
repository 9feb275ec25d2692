// Screenshots of the demo bundle for the README and the notes (not a test):
//   npx tsx test/e2e/demo-screenshots.ts --cache FILE [--feature F] [--out DIR]
// FILE is a built activation cache of resources/demo (e.g. from `feature-tracer cache build --bundle
// resources/demo --cache FILE`, about 3 minutes here), so that no build runs inside the script.
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { authHeaders, ensureRendererBuilt, LAUNCH_URL, launchChromium, openWorkbenchPage, ROOT } from './harness'

const { values: args } = parseArgs({
  options: { cache: { type: 'string' }, feature: { type: 'string', default: '2630' }, out: { type: 'string', default: 'test/e2e/output' } },
})
if (!args.cache) throw new Error('--cache FILE: a built cache of resources/demo')
const feature = Number(args.feature)
const out = resolve(args.out!)
mkdirSync(out, { recursive: true })

await ensureRendererBuilt()
const userData = mkdtempSync(join(tmpdir(), 'ft-shots-'))
const serve = spawn(
  process.execPath,
  ['--import', 'tsx', join(ROOT, 'main/transports/serve/cli.ts'), '--bundle', join(ROOT, 'resources/demo'), '--port', '0', '--cache', resolve(args.cache), '--user-data', userData],
  { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
)
const [launchUrl, url, serveToken] = await new Promise<RegExpExecArray>((ok, fail) => {
  let text = ''
  serve.stdout!.on('data', (c) => {
    text += c
    const m = LAUNCH_URL.exec(text)
    if (m) ok(m)
  })
  serve.on('exit', (code) => fail(new Error(`serve exited with ${code}`)))
})
const browser = await launchChromium()
try {
  const errors: string[] = []
  const page = await openWorkbenchPage(browser.context, launchUrl, errors)
  await page.click('[data-tab="features"]')
  await page.waitForSelector('[data-grid-id="features"] .ag-row')
  await page.screenshot({ path: join(out, 'demo-01-features.png') })
  // The features grid is virtualised: open the feature through the token search, as a user would.
  await page.click('[data-tab="tokens"]')
  const token = (await (await fetch(new URL('api/feature.get', url), { method: 'POST', headers: authHeaders(serveToken), body: JSON.stringify({ id: feature, topK: 1 }) })).json()) as {
    value: { top: { str_tokens: string }[] }
  }
  await page.fill('[data-field="token-query"]', token.value.top[0].str_tokens.replace(/·/g, ' ').replace(/↩/g, '\n').replace(/→/g, '\t'))
  await page.keyboard.press('Enter')
  await page.dblclick(`[data-grid-id="token-search"] .ag-row[row-id="${feature}"] .ag-cell[col-id="count"]`)
  await page.waitForSelector(`[data-grid-id="feature:${feature}:top"] .ag-row`)
  await page.waitForSelector(`[data-feature-id="${feature}"] .histogram rect`)
  // The examples' running text is shaded once feature.sequences answers: wait for the marked tokens.
  await page.waitForSelector(`[data-grid-id="feature:${feature}:top"] .ag-row[row-index="0"] [data-field="running-text"] [data-marked="true"]`)
  await page.waitForSelector(`[data-grid-id="feature:${feature}:intervals"] .ag-row[row-index="0"] [data-field="running-text"] [data-marked="true"]`)
  await page.screenshot({ path: join(out, 'demo-02-feature.png') })
  await page.click(`[data-grid-id="feature:${feature}:top"] .ag-row[row-index="0"] [data-action="expand-sequence"]`)
  await page.waitForSelector('[data-field="sequence-dialog"] [data-field="running-text"]')
  await page.screenshot({ path: join(out, 'demo-02b-sequence.png') })
  await page.keyboard.press('Escape')
  // The feature's mechanism atlas (its job runs in the compute process; a few seconds on the demo).
  await page.click(`[data-feature-id="${feature}"] [data-view="atlas"]`)
  const atlas = `[data-feature-id="${feature}"] [data-field="atlas"]`
  await page.click(`${atlas} [data-action="atlas-start"]`)
  await page.waitForSelector(`${atlas}[data-state="done"] [data-field="atlas-summary"]`, { timeout: 300_000 })
  await page.waitForTimeout(1500)
  await page.screenshot({ path: join(out, 'demo-06-atlas.png') })
  await page.click(`[data-feature-id="${feature}"] [data-view="examples"]`)
  await page.click(`[data-grid-id="feature:${feature}:top"] .ag-row[row-index="0"] .ag-cell[col-id="str_tokens"] .token-link`)
  const tab = page.locator('[data-tab^="trace:"][aria-selected="true"]')
  await tab.waitFor()
  const tabId = (await tab.getAttribute('data-tab'))!
  const panel = `[data-trace-tab="${tabId}"]`
  await page.waitForSelector(`${panel}[data-loading="false"][data-scope-loading="false"]`)
  await page.screenshot({ path: join(out, 'demo-03-trace.png') })
  await page.click(`${panel} [data-section="attention"]`)
  await page.waitForTimeout(500)
  await page.screenshot({ path: join(out, 'demo-04-trace-attention.png') })
  await page.click(`${panel} [data-section="circuits"]`)
  await page.waitForTimeout(500)
  await page.screenshot({ path: join(out, 'demo-05-trace-circuits.png') })
  process.stdout.write(`screenshots in ${out}${errors.length ? `; page errors: ${errors.join('; ')}` : ''}\n`)
} finally {
  await browser.close()
  serve.kill('SIGTERM')
  rmSync(userData, { recursive: true, force: true })
}
