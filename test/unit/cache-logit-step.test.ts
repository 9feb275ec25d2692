// The logit step (main/cache/logit-step.ts): a build that stops after its summary committed, before the
// logit effects are stored, leaves a cache that answers every feature view, the logit effects exact from
// the weights (checked against the PyTorch goldens of tools/golden.py); building it again runs only the
// logit step, and the file then holds what a clean build holds, byte for byte.
import { spawnSync } from 'node:child_process'
import { copyFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { loadBundle, type Bundle } from '../../main/bundle'
import { corpusViewOf } from '../../main/bundle/corpus'
import { unwrap } from '../../main/app/dispatch'
import { runBuild } from '../../main/cache/build'
import { cacheKeyOf, logitWeightsOf } from '../../main/cache/bundle-link'
import { CacheReader } from '../../main/cache/query'
import { openCacheDb, readMeta } from '../../main/cache/schema'
import { OrtEngine } from '../../main/compute/ort-engine'
import type { FeatureDetail } from '../../common/contract'
import { dumpTables, tempDir, tinyWorkbench, TINY } from './helpers/cache'
import { readGolden } from './helpers/golden'

const BIN = 'bin/feature-tracer.mjs'
const CHUNK_SEQS = 4
const TOL = 1e-4
const SLOW = 300_000

/** The effects a view shows for a feature, checked against PyTorch's W_dec[f]·W_out·W_U (`exact`, all tokens). */
function expectExact(logits: FeatureDetail['logits'], exact: Float32Array): void {
  const scale = Math.max(...exact.map(Math.abs))
  const sorted = Array.from(exact).sort((a, b) => b - a)
  expect(logits.top).toHaveLength(10)
  expect(logits.bottom).toHaveLength(10)
  // Ids may differ from PyTorch's order only where two effects tie within the tolerance: compare values.
  logits.top.forEach((l, i) => expect(Math.abs(l.effect - sorted[i]) / scale).toBeLessThan(TOL))
  logits.bottom.forEach((l, i) => expect(Math.abs(l.effect - sorted[sorted.length - 1 - i]) / scale).toBeLessThan(TOL))
  for (const l of [...logits.top, ...logits.bottom]) expect(Math.abs(l.effect - exact[l.tokenId]) / scale).toBeLessThan(TOL)
}

function cli(args: string[], env: Record<string, string>) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf-8', env: { ...process.env, ...env }, timeout: 240_000 })
  return { code: r.status, out: `${r.stdout}${r.stderr}` }
}

describe('the logit step after finalize', () => {
  let bundle: Bundle
  let dir: string
  let stopped: string
  const golden = readGolden('test/fixtures/golden/tiny')

  beforeAll(async () => {
    bundle = await loadBundle(TINY)
    dir = tempDir('ft-logit-step-')
    // A build that stops after finalize: its logit step fails (as a kill there would end it).
    stopped = join(dir, 'stopped.sqlite')
    const db = openCacheDb(stopped)
    const engine = await OrtEngine.create(bundle, { eagerSae: true })
    const phases: string[] = []
    try {
      const killed = runBuild({
        db,
        engine,
        key: cacheKeyOf(bundle),
        corpus: bundle.tokens.data,
        vocabSize: bundle.config.model.d_vocab,
        chunkSeqs: CHUNK_SEQS,
        onProgress: (p) => phases.push(p.phase),
        logitTable: async () => {
          throw new Error('killed in the logit step')
        },
      })
      await expect(killed).rejects.toThrow('killed in the logit step')
    } finally {
      db.close()
      await engine.dispose()
    }
    expect(phases.slice(-2)).toEqual(['finalize', 'logits'])
  }, SLOW)

  it('answers the feature views of a build stopped after finalize, with exact logit effects from the weights', async () => {
    expect(golden.points.length).toBeGreaterThan(0)
    const input = { path: stopped, key: cacheKeyOf(bundle), view: corpusViewOf(bundle) }
    const withWeights = new CacheReader({ ...input, logitWeights: logitWeightsOf(bundle) })
    const without = new CacheReader({ ...input, logitWeights: null })
    try {
      expect(withWeights.status().state).toBe('ready')
      expect(without.logitsPending()).toBe(true)
      for (const p of golden.points) {
        const exact = golden.f32(`${p.key}.logit_effect`).data
        expectExact(withWeights.detail(p.feature, 5).logits, exact)
        // main's reader holds no weights: it has none to show and says they are still to come.
        expect(without.detail(p.feature, 5).logits).toEqual({ top: [], bottom: [] })
      }
    } finally {
      withWeights.close()
      without.close()
    }

    // The app: feature.get has the compute process compute them.
    const appDir = tempDir('ft-logit-step-app-')
    copyFileSync(stopped, join(appDir, 'cache.sqlite'))
    const wb = tinyWorkbench(appDir)
    try {
      expect(unwrap(await wb.invoke('cache.status', {}))).toMatchObject({ state: 'ready', logitsPending: true })
      for (const p of golden.points) expectExact(unwrap(await wb.invoke('feature.get', { id: p.feature, topK: 5 })).logits, golden.f32(`${p.key}.logit_effect`).data)
      // The Cache tab's "Finish the logit effects": cache.build runs the step, then the cache stores them.
      unwrap(await wb.invoke('cache.build', { jobId: crypto.randomUUID() }))
      const state = async () => {
        const s = unwrap(await wb.invoke('cache.status', {}))
        return `${s.state}${s.logitsPending ? ', logit effects pending' : ''}`
      }
      await expect.poll(state, { timeout: 120_000, interval: 200 }).toBe('ready')
      const db = openCacheDb(join(appDir, 'cache.sqlite'), { readonly: true })
      try {
        expect((db.prepare('SELECT COUNT(*) AS n FROM feature WHERE logit_top_ids IS NULL').get() as { n: number }).n).toBe(0)
      } finally {
        db.close()
      }
      for (const p of golden.points) expectExact(unwrap(await wb.invoke('feature.get', { id: p.feature, topK: 5 })).logits, golden.f32(`${p.key}.logit_effect`).data)
    } finally {
      await wb.close()
    }
  }, SLOW)

  it('runs only the logit step when built again, and then holds what a clean build holds', () => {
    const env = { XDG_CACHE_HOME: join(dir, 'xdg-cache'), FEATURE_TRACER_USER_DATA: join(dir, 'user'), FEATURE_TRACER_CHUNK_SEQS: String(CHUNK_SEQS) }
    const resumed = join(dir, 'resumed.sqlite')
    copyFileSync(stopped, resumed)
    const rerun = cli(['cache', 'build', '--bundle', TINY, '--cache', resumed], env)
    expect(rerun.code, rerun.out).toBe(0)
    expect(rerun.out).toContain('logit effects')
    // No chunk was computed again, nor the summary finalized again.
    expect(rerun.out).not.toMatch(/cache build: \d|finalizing/)
    const db = openCacheDb(resumed, { readonly: true })
    try {
      expect(readMeta(db).logit_effects).toBeUndefined()
      expect((db.prepare('SELECT COUNT(*) AS n FROM feature WHERE logit_top_ids IS NULL').get() as { n: number }).n).toBe(0)
    } finally {
      db.close()
    }

    const clean = join(dir, 'clean.sqlite')
    const build = cli(['cache', 'build', '--bundle', TINY, '--cache', clean], env)
    expect(build.code, build.out).toBe(0)
    expect(dumpTables(resumed)).toBe(dumpTables(clean))
    // The logit effects are in what is compared (a build without its logit step differs there).
    expect(dumpTables(stopped)).not.toBe(dumpTables(clean))
  }, SLOW)
})
