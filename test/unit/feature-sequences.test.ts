// feature.sequences (the examples' running text): the feature's activation at every position of whole
// corpus sequences, checked against independent computations: the PyTorch goldens of tools/golden.py
// (float64 torch; `acts_batch` holds the point's feature over its whole batch of sequences, the gate of
// each SAE kind included), the whole SAE run by the engine (saeActs, the cache build's encode) and the
// activations the cache build stored for the feature's top and interval rows. Then what it refuses.
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FeatureDetail, FeatureSequence, Result } from '../../common/contract'
import { createWorkbench, type Workbench } from '../../main/app/workbench'
import { loadBundle } from '../../main/bundle'
import { OrtEngine } from '../../main/compute/ort-engine'
import { featureSequences, prefetchScope } from '../../main/trace'
import { build, tempDir, tinyWorkbench } from './helpers/cache'
import { readGolden, relErr } from './helpers/golden'

const SLOW = 240_000
const TOL = 1e-4

function ok<T>(r: Result<unknown>): T {
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`)
  return r.value as T
}

describe.each(['tiny', 'tiny-topk', 'tiny-jumprelu'])('feature.sequences on %s against the PyTorch goldens', (name) => {
  let wb: Workbench
  beforeAll(() => {
    const dir = tempDir()
    wb = createWorkbench({ bundleDir: `test/fixtures/${name}`, cachePath: join(dir, 'cache.sqlite'), userDataDir: join(dir, 'user') })
  })
  afterAll(async () => wb?.close())

  it('gives every position of every sequence of each golden point’s batch the activation torch computes', async () => {
    const golden = readGolden(`test/fixtures/golden/${name}`)
    for (const p of golden.points as (typeof golden.points[number] & { batch_start: number; batch_size: number })[]) {
      const expected = golden.f32(`${p.key}.acts_batch`)
      const [nSeq, seqLen] = expected.dims
      expect(nSeq).toBe(p.batch_size)
      const samples = Array.from({ length: nSeq }, (_, i) => p.batch_start + i)
      const { feature, sequences } = ok<{ feature: number; sequences: FeatureSequence[] }>(await wb.dispatch('feature.sequences', { feature: p.feature, samples }))
      expect(feature).toBe(p.feature)
      expect(sequences.map((s) => s.sample)).toEqual(samples)
      const got = sequences.flatMap((s) => s.activations)
      expect(got).toHaveLength(nSeq * seqLen)
      expect(relErr(got, expected.data), `${p.key}`).toBeLessThan(TOL)
      // The gate: where torch's activation is 0 (below threshold, outside the top k, negative) ours is 0 too.
      let zeros = 0
      for (let i = 0; i < got.length; i++) {
        if (expected.data[i] === 0) {
          zeros++
          expect(got[i], `${p.key} token ${i}`).toBe(0)
        }
      }
      expect(zeros).toBeGreaterThan(0)
      expect(got.some((v) => v > 0)).toBe(true)
      // The point itself, and its token.
      const seq = sequences[p.sample - p.batch_start]
      expect(seq.tokenIds[p.pos]).toBe(p.token)
      expect(Math.abs(seq.activations[p.pos] - p.activation) / Math.max(1, p.activation)).toBeLessThan(TOL)
    }
  }, SLOW)
})

describe('featureSequences on the engine', () => {
  it('keeps no block, so the batches kept for the next trace stay kept; its values are saeActs’ (the SAE run whole)', async () => {
    const bundle = await loadBundle('test/fixtures/tiny-topk', { hashCacheDir: null })
    const engine = await OrtEngine.create(bundle, { providers: ['cpu'], intraOpNumThreads: 2 })
    try {
      await prefetchScope(bundle, engine, 0)
      const kept = engine.keptBlocks
      expect(kept).toHaveLength(1)
      const samples = [3, 0, 17]
      const f = 54
      const seqs = await featureSequences(bundle, engine, f, samples)
      expect(engine.keptBlocks).toEqual(kept)
      // The whole SAE (the cache build's encode) on the same tokens: every feature of every token.
      const { seqLen } = bundle.tokens
      const tokens = new Int32Array(samples.flatMap((s) => Array.from(bundle.tokens.data.subarray(s * seqLen, (s + 1) * seqLen))))
      const acts = await engine.saeActs(tokens, samples.length, seqLen)
      const whole = Array.from({ length: tokens.length }, (_, t) => {
        for (let j = acts.rowPtr[t]; j < acts.rowPtr[t + 1]; j++) if (acts.featureIds[j] === f) return acts.values[j]
        return 0
      })
      const got = seqs.flatMap((s) => s.activations)
      expect(got.filter((v) => v > 0).length).toBeGreaterThan(0)
      for (let t = 0; t < got.length; t++) {
        expect(got[t] === 0, `token ${t}`).toBe(whole[t] === 0)
        expect(Math.abs(got[t] - whole[t])).toBeLessThan(1e-4 * Math.max(1, Math.abs(whole[t])))
      }
    } finally {
      await engine.dispose()
    }
  }, SLOW)
})

describe('feature.sequences on the tiny bundle against the cache', () => {
  let wb: Workbench
  beforeAll(async () => {
    wb = tinyWorkbench(tempDir())
    expect((await build(wb)).outcome).toBe('done')
  }, SLOW)
  afterAll(async () => wb?.close())

  it('gives each top row’s token, text and activation as the cache build stored them, and the display texts of every token', async () => {
    let checked = 0
    for (const id of [0, 2, 17, 38, 54]) {
      const d = ok<FeatureDetail>(await wb.dispatch('feature.get', { id }))
      const rows = [...d.top, ...d.intervals.flatMap((b) => b.examples)]
      if (!rows.length) continue
      const samples = [...new Set(rows.map((r) => r.batch))].slice(0, 64)
      const { sequences } = ok<{ sequences: FeatureSequence[] }>(await wb.dispatch('feature.sequences', { feature: id, samples }))
      const bySample = new Map(sequences.map((s) => [s.sample, s]))
      for (const r of rows) {
        const s = bySample.get(r.batch)
        if (!s) continue
        expect(s.tokenIds[r.pos]).toBe(r.token_id)
        expect(s.tokens[r.pos]).toBe(r.str_tokens)
        expect(Math.abs(s.activations[r.pos] - r.activation) / Math.max(1, r.activation), `${id} ${r.label}`).toBeLessThan(TOL)
        checked++
      }
      // No token of these sequences beats the feature's max, and the top row's is it.
      expect(Math.max(...sequences.flatMap((s) => s.activations))).toBeLessThanOrEqual(d.stats.max * (1 + TOL))
      // The context string is the tokens' display texts around the row's token.
      const r = d.top[0]
      const s = bySample.get(r.batch)!
      expect(r.context).toBe(`${s.tokens.slice(Math.max(0, r.pos - 5), r.pos).join('')}|${r.str_tokens}|${s.tokens.slice(r.pos + 1, r.pos + 2).join('')}`)
    }
    expect(checked).toBeGreaterThan(20)
  }, SLOW)

  it.each([
    [{ feature: 64, samples: [0] }, /feature 64 does not exist/],
    [{ feature: 0, samples: [24] }, /sample 24 outside \[0, 24\)/],
    [{ feature: 0, samples: [0, 3, 0] }, /distinct/],
    [{ feature: 0, samples: Array.from({ length: 65 }, (_, i) => i) }, /samples/],
    [{ feature: 0, samples: [] }, /samples/],
    [{ feature: 0, samples: [1.5] }, /samples/],
    [{ feature: 0 }, /samples/],
    [{ feature: 0, samples: [0], extra: 1 }, /extra/],
  ])('refuses %j as invalid_request', async (payload, message) => {
    const r = await wb.dispatch('feature.sequences', payload)
    expect(r.ok).toBe(false)
    if (!r.ok) {
      expect(r.error.code).toBe('invalid_request')
      expect(r.error.message).toMatch(message)
    }
  }, SLOW)
})
