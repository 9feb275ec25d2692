// A real cache build on the tiny bundle (a job process + ONNX Runtime), checked against an independent
// recount from the engine's raw CSR output and against the PyTorch goldens; then kill/resume and key
// mismatches.
import { cpSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadBundle, type Bundle } from '../../main/bundle'
import { OrtEngine } from '../../main/compute/ort-engine'
import { unwrap } from '../../main/app/dispatch'
import type { Workbench } from '../../main/app/workbench'
import { build, dumpAnswers, dumpTables, tempDir, tinyWorkbench, TINY } from './helpers/cache'
import { readGolden, relErr } from './helpers/golden'
import { decodeFeatureActs } from '../../main/cache/encode'
import { runBuild } from '../../main/cache/build'
import { openCacheDb } from '../../main/cache/schema'
import { cacheKeyOf, logitWeightsOf } from '../../main/cache/bundle-link'
import { logitEffects, type LogitWeights } from '../../main/cache/logits'
import { topIndices } from '../../main/trace/math'
import { visibleToken } from '../../common/text'

const CHUNK_SEQS = 4
/** Each test starts worker threads or processes; a machine shared with a training job can be very slow. */
const SLOW = 300_000

/** Dense [nTokens, dSae] activations from the engine, over the same chunks the build uses. */
async function engineActs(bundle: Bundle): Promise<Float32Array> {
  const engine = await OrtEngine.create(bundle, { eagerSae: true })
  const { nSeq, seqLen, data } = bundle.tokens
  const dSae = bundle.config.sae.d_sae
  const dense = new Float32Array(nSeq * seqLen * dSae)
  try {
    for (let s0 = 0; s0 < nSeq; s0 += CHUNK_SEQS) {
      const s1 = Math.min(nSeq, s0 + CHUNK_SEQS)
      const acts = await engine.saeActs(data.subarray(s0 * seqLen, s1 * seqLen), s1 - s0, seqLen)
      for (let r = 0; r < acts.nTokens; r++) {
        for (let j = acts.rowPtr[r]; j < acts.rowPtr[r + 1]; j++) dense[(s0 * seqLen + r) * dSae + acts.featureIds[j]] = acts.values[j]
      }
    }
  } finally {
    await engine.dispose()
  }
  return dense
}

describe('activation cache on the tiny bundle', () => {
  let dir: string
  let wb: Workbench
  let bundle: Bundle
  let dense: Float32Array
  let nTokens: number
  let dSae: number

  beforeAll(async () => {
    dir = tempDir()
    wb = tinyWorkbench(dir, { build: { chunkSeqs: CHUNK_SEQS } })
    bundle = await loadBundle(TINY)
    dense = await engineActs(bundle)
    nTokens = bundle.tokens.nSeq * bundle.tokens.seqLen
    dSae = bundle.config.sae.d_sae
    expect(unwrap(await wb.invoke('cache.status', {})).state).toBe('missing')
    const progress: number[] = []
    const done = await build(wb, { full: true, onProgress: (p) => progress.push(p.doneTokens) })
    expect(done.outcome).toBe('done')
    expect(done.cache.state).toBe('ready')
    expect(progress.at(-1)).toBe(nTokens)
    expect(progress.length).toBeGreaterThanOrEqual(Math.ceil(bundle.tokens.nSeq / CHUNK_SEQS))
  }, SLOW)
  afterAll(async () => wb?.close())

  it.each([true, false])('stores every non-zero activation, and the per-feature stats match a brute-force recount (includeBos %s)', async (includeBos) => {
    const list = unwrap(await wb.invoke('features.list', { includeBos }))
    const { features } = list
    expect(features).toHaveLength(dSae)
    expect(list.bos).toBe(includeBos ? 'included' : 'excluded')
    const corpus = bundle.tokens.data
    const { seqLen } = bundle.tokens
    // The tiny bundle prepends BOS id 0 to every sequence (and has no 0 elsewhere); without BOS, position 0
    // is no token at all: neither a firing nor an occurrence.
    const counted = (t: number) => includeBos || t % seqLen !== 0
    let bosFeatures = 0
    for (const f of features) {
      let count = 0
      let max = 0
      let sum = 0
      let onBos = 0
      let all = 0
      let allSum = 0
      let allMax = 0
      const perToken = new Map<number, number>()
      for (let t = 0; t < nTokens; t++) {
        const v = dense[t * dSae + f.id]
        if (v === 0) continue
        // The flags count every firing, whichever the mode.
        all++
        allSum += v
        allMax = Math.max(allMax, v)
        if (corpus[t] === 0) onBos++
        if (!counted(t)) continue
        count++
        sum += v
        max = Math.max(max, v)
        perToken.set(corpus[t], (perToken.get(corpus[t]) ?? 0) + 1)
      }
      if (onBos > 0) bosFeatures++
      expect(f.count).toBe(count)
      expect(f.density).toBeCloseTo(count / (includeBos ? nTokens : nTokens - bundle.tokens.nSeq), 12)
      expect(f.max).toBe(max)
      expect(f.mean).toBeCloseTo(count ? sum / count : 0, 10)
      const flags = all === 0 ? [] : [onBos >= 0.99 * all && 'bos_only', allMax - allSum / all <= 1e-3 * allMax && 'constant', all / nTokens > 0.1 && 'dense'].filter(Boolean)
      expect(f.flags).toEqual(flags)
      if (count === 0) {
        expect(f.topTokenId).toBeNull()
        continue
      }
      const best = Math.max(...perToken.values())
      const topToken = Math.min(...[...perToken].filter(([, c]) => c === best).map(([t]) => t))
      const occ = corpus.reduce((n, t, i) => n + (t === topToken && counted(i) ? 1 : 0), 0)
      expect(f.topTokenId).toBe(topToken)
      const p = best / count
      const r = best / occ
      expect(f.precision).toBeCloseTo(p, 12)
      expect(f.recall).toBeCloseTo(r, 12)
      expect(f.f1).toBeCloseTo((2 * p * r) / (p + r), 12)
    }
    // The tiny bundle's features fire on BOS, so the two modes tell something apart.
    expect(bosFeatures).toBeGreaterThan(0)
  }, SLOW)

  it.each([true, false])('answers feature.get with the top activations, intervals and histogram of the recount (includeBos %s)', async (includeBos) => {
    const { seqLen } = bundle.tokens
    // Without BOS, position 0 (BOS in every sequence of the tiny bundle) is neither a firing nor an occurrence.
    const counted = (t: number) => includeBos || t % seqLen !== 0
    const dead = unwrap(await wb.invoke('features.list', {})).features.find((f) => f.count === 0)
    // The features firing on BOS most, so that the modes differ in the features checked.
    const onBos = Array.from({ length: dSae }, (_, f) => f).sort((a, b) => bosFirings(b) - bosFirings(a) || a - b)
    function bosFirings(f: number): number {
      let n = 0
      for (let t = 0; t < nTokens; t += seqLen) if (dense[t * dSae + f] !== 0) n++
      return n
    }
    expect(bosFirings(onBos[0])).toBeGreaterThan(0)
    for (const id of [0, 5, dSae - 1, onBos[0], onBos[1], ...(dead ? [dead.id] : [])]) {
      const d = unwrap(await wb.invoke('feature.get', { id, includeBos }))
      expect(d.bos).toBe(includeBos ? 'included' : 'excluded')
      const firing: [number, number][] = []
      for (let t = 0; t < nTokens; t++) if (dense[t * dSae + id] !== 0 && counted(t)) firing.push([t, dense[t * dSae + id]])
      const expectedTop = [...firing].sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, 100)
      expect(d.top.map((r) => [r.batch * seqLen + r.pos, r.activation])).toEqual(expectedTop)
      for (const r of d.top) {
        expect(r.label).toBe(`${r.batch}/${r.pos}`)
        expect(r.unique_token).toBe(`${r.str_tokens}/${r.pos}`)
        expect(r.token_id).toBe(bundle.tokens.data[r.batch * seqLen + r.pos])
        expect(r.context).toContain(`|${r.str_tokens}|`)
        expect(r.str_tokens).not.toMatch(/[ \n\t]/)
      }
      expect(d.histogram.counts.reduce((a, b) => a + b, 0)).toBe(firing.length)
      expect(d.intervals).toHaveLength(firing.length ? 10 : 0)
      expect(d.intervals.reduce((n, b) => n + b.count, 0)).toBe(firing.length)
      for (const b of d.intervals) {
        expect(b.examples.length).toBe(Math.min(5, b.count))
        for (const e of b.examples) expect(e.activation >= b.lo && e.activation <= b.hi).toBe(true)
      }
      // Quantile groups: every firing in one group, the groups ascending, examples inside their group.
      expect(d.quantiles.reduce((n, g) => n + g.count, 0)).toBe(firing.length)
      for (const [i, g] of d.quantiles.entries()) {
        expect(firing.filter(([, v]) => v >= g.lo && v <= g.hi).length).toBe(g.count)
        if (i > 0) expect(g.lo).toBeGreaterThan(d.quantiles[i - 1].hi)
        expect(g.examples.length).toBe(Math.min(3, g.count))
        for (const e of g.examples) expect(e.activation >= g.lo && e.activation <= g.hi).toBe(true)
      }
      // Below the threshold: the top token where the engine's activation is 0.
      const occurrencesOfTop = firing.length ? bundle.tokens.data.filter((t, i) => t === d.stats.topTokenId && counted(i)).length : 0
      expect(d.below.length).toBe(Math.min(5, occurrencesOfTop - (d.stats.count ? Math.round((d.stats.precision ?? 0) * d.stats.count) : 0)))
      for (const r of [...d.top, ...d.below, ...d.intervals.flatMap((b) => b.examples), ...d.quantiles.flatMap((g) => g.examples)]) expect(counted(r.batch * seqLen + r.pos)).toBe(true)
      for (const r of d.below) {
        expect(r.token_id).toBe(d.stats.topTokenId)
        expect(r.activation).toBe(0)
        expect(dense[(r.batch * seqLen + r.pos) * dSae + id]).toBe(0)
      }
      expect(d.logits.top).toHaveLength(10)
      expect(d.logits.bottom).toHaveLength(10)
      expect(d.logits.top[0].effect).toBeGreaterThanOrEqual(d.logits.top[9].effect)
      expect(d.logits.bottom[0].effect).toBeLessThanOrEqual(d.logits.bottom[9].effect)
    }
  }, SLOW)

  it('stores every firing: its place exactly, its value to 1/131,070 of the max, and they agree with the PyTorch goldens', async () => {
    const db = new Database(join(dir, 'cache.sqlite'), { readonly: true })
    expect(db.prepare("SELECT value FROM meta WHERE key = 'acts_values'").pluck().get()).toBe('u16-of-max')
    const stored = (id: number) => {
      const row = db.prepare('SELECT a.token_deltas, a.vals, f.max FROM feature_acts a JOIN feature f USING (id) WHERE id = ?').get(id) as { token_deltas: Buffer; vals: Buffer; max: number }
      const acts = decodeFeatureActs(row.token_deltas, row.vals, row.max)
      const col = new Float32Array(nTokens)
      acts.tokens.forEach((t, i) => (col[t] = acts.values[i]))
      return col
    }
    for (let f = 0; f < dSae; f++) {
      const col = stored(f)
      let max = 0
      for (let t = 0; t < nTokens; t++) max = Math.max(max, dense[t * dSae + f])
      for (let t = 0; t < nTokens; t++) {
        const want = dense[t * dSae + f]
        // Zero stays zero (no firing is stored there); a firing keeps its place, and the max is exact.
        if (want === 0) expect(col[t]).toBe(0)
        else expect(Math.abs(col[t] - want)).toBeLessThanOrEqual(max / 131_070 + max * 2 ** -24)
        if (want === max && max > 0) expect(col[t]).toBe(max)
      }
    }
    const golden = readGolden('test/fixtures/golden/tiny')
    expect(golden.points.length).toBeGreaterThan(0)
    for (const p of golden.points) {
      const want = golden.f32(`${p.key}.acts_batch`).data
      expect(want.length).toBe(nTokens)
      expect(relErr(stored(p.feature), want)).toBeLessThan(1e-4)
      const d = unwrap(await wb.invoke('feature.get', { id: p.feature }))
      expect(Math.abs(d.stats.max - Math.max(...want)) / Math.max(...want)).toBeLessThan(1e-4)
    }
    db.close()
  }, SLOW)

  it('answers "which features fire on token X" from the stored firings', async () => {
    const token = bundle.tokens.data[5]
    const res = unwrap(await wb.invoke('features.byToken', { tokenId: token, limit: 10_000 }))
    const occurrences = bundle.tokens.data.reduce((n, t) => n + (t === token ? 1 : 0), 0)
    expect(res.tokens).toEqual([expect.objectContaining({ id: token, occurrences })])
    const expected = new Map<number, number>()
    for (let t = 0; t < nTokens; t++) {
      if (bundle.tokens.data[t] !== token) continue
      for (let f = 0; f < dSae; f++) if (dense[t * dSae + f] !== 0) expected.set(f, (expected.get(f) ?? 0) + 1)
    }
    expect(new Map(res.features.map((f) => [f.id, f.count]))).toEqual(expected)
    for (let i = 1; i < res.features.length; i++) expect(res.features[i - 1].count).toBeGreaterThanOrEqual(res.features[i].count)
    const byText = unwrap(await wb.invoke('features.byToken', { text: bundle.tokenizer.tokenString(token), limit: 5 }))
    expect(byText.tokens.map((t) => t.id)).toContain(token)
  }, SLOW)

  it('stores logit effects that match W_dec·W_out·W_U computed in float64', async () => {
    const weights = logitWeightsOf(bundle)
    expect(weights).not.toBeNull()
    for (let id = 0; id < dSae; id++) {
      const { logits } = unwrap(await wb.invoke('feature.get', { id, topK: 1 }))
      const exact = logitEffects(weights as LogitWeights, id)
      const scale = Math.max(...exact.map(Math.abs))
      expect(logits.top.map((l) => l.tokenId)).toEqual(topIndices(exact, 10))
      expect(logits.bottom.map((l) => l.tokenId)).toEqual(topIndices(exact, 10, false))
      for (const l of [...logits.top, ...logits.bottom]) {
        expect(Math.abs(l.effect - exact[l.tokenId]) / scale).toBeLessThan(1e-5)
        expect(l.token).toBe(visibleToken(bundle.tokenizer.tokenString(l.tokenId)))
      }
    }
  }, SLOW)

  it('refuses unknown features and answers a query in milliseconds', async () => {
    expect(await wb.invoke('feature.get', { id: dSae })).toEqual({ ok: false, error: { code: 'not_found', message: expect.stringContaining(`feature ${dSae}`) } })
    const t0 = performance.now()
    for (let id = 0; id < dSae; id++) unwrap(await wb.invoke('feature.get', { id }))
    expect((performance.now() - t0) / dSae).toBeLessThan(50)
  }, SLOW)

  it('resumes a killed build from its last committed chunk, with a byte-identical result', async () => {
    const clean = await dumpAnswers(wb)
    const killedDir = tempDir()
    const killed = tinyWorkbench(killedDir, { build: { chunkSeqs: 2, pauseMsPerChunk: 100 } })
    let cancelled = false
    const end = await build(killed, {
      full: true,
      onProgress: (p, jobId) => {
        if (!cancelled && p.doneTokens >= 3 * 2 * bundle.tokens.seqLen) {
          cancelled = true
          void killed.invoke('job.cancel', { jobId })
        }
      },
    })
    expect(end.outcome).toBe('cancelled')
    const partial = unwrap(await killed.invoke('cache.status', {}))
    expect(partial.state).toBe('partial')
    expect(partial.doneTokens).toBeGreaterThan(0)
    expect(partial.doneTokens).toBeLessThan(nTokens)
    // The feature views read the partial summary meanwhile (cache-partial.test.ts recounts it); token search waits.
    const list = unwrap(await killed.invoke('features.list', {}))
    expect(list.partial?.totalTokens).toBe(nTokens)
    expect(list.partial?.doneTokens).toBeGreaterThan(0)
    expect(list.partial?.doneTokens).toBeLessThanOrEqual(partial.doneTokens)
    expect((await killed.invoke('features.byToken', { tokenId: 0, limit: 10 })).ok).toBe(false)
    await killed.close()

    // A new process-like start: fresh workbench, no pause, asked for another chunk size (the stored one wins).
    const resumed = tinyWorkbench(killedDir, { build: { chunkSeqs: 5 } })
    const progress: number[] = []
    expect((await build(resumed, { full: true, onProgress: (p) => progress.push(p.doneTokens) })).outcome).toBe('done')
    expect(progress[0]).toBe(partial.doneTokens)
    // The tiny bundle's clean build used 4-sequence chunks, the resumed one 2: compare with a clean 2.
    const cleanTwoDir = tempDir()
    const cleanTwo = tinyWorkbench(cleanTwoDir, { build: { chunkSeqs: 2 } })
    await build(cleanTwo, { full: true })
    expect(await dumpAnswers(resumed)).toBe(await dumpAnswers(cleanTwo))
    expect(dumpTables(join(killedDir, 'cache.sqlite'))).toBe(dumpTables(join(cleanTwoDir, 'cache.sqlite')))
    // And the chunking does not change what a researcher sees.
    expect(await dumpAnswers(cleanTwo)).toBe(clean)
    await resumed.close()
    await cleanTwo.close()
  }, SLOW)

  it('refuses a cache built for other hashes or another schema, and rebuilds it', async () => {
    const before = await dumpAnswers(wb)
    const path = join(dir, 'cache.sqlite')
    for (const [key, value, words] of [
      ['model_sha256', 'f'.repeat(64), 'model.safetensors'],
      ['schema_version', '0', 'schema'],
      ['tokens_sha256', '0'.repeat(64), 'tokens.safetensors'],
    ]) {
      const db = new Database(path)
      db.prepare('UPDATE meta SET value = ? WHERE key = ?').run(value, key)
      db.close()
      const status = unwrap(await wb.invoke('cache.status', {}))
      expect(status.state).toBe('stale')
      expect(status.reason).toContain(words)
      const refused = await wb.invoke('feature.get', { id: 0 })
      expect(refused.ok ? null : refused.error.code).toBe('cache_stale')
      expect((await build(wb, { full: true })).outcome).toBe('done')
      expect(unwrap(await wb.invoke('cache.status', {})).state).toBe('ready')
    }
    expect(await dumpAnswers(wb)).toBe(before)
  }, SLOW)

  it('finalizes the same tables when memory forces many passes over the chunks', async () => {
    const engine = await OrtEngine.create(bundle, { eagerSae: true })
    const paths = [join(tempDir(), 'one-pass.sqlite'), join(tempDir(), 'many-passes.sqlite')]
    try {
      for (const [i, path] of paths.entries()) {
        const db = openCacheDb(path)
        await runBuild({
          db,
          engine,
          key: cacheKeyOf(bundle),
          corpus: bundle.tokens.data,
          vocabSize: bundle.config.model.d_vocab,
          chunkSeqs: CHUNK_SEQS,
          maxEntriesPerPass: i === 0 ? undefined : 500,
          full: true,
        })
        db.close()
      }
    } finally {
      await engine.dispose()
    }
    // ~10k firings with a budget of 500 per pass: about twenty passes, one result.
    expect(dumpTables(paths[0]).length).toBeGreaterThan(10_000)
    expect(dumpTables(paths[1])).toBe(dumpTables(paths[0]))
  }, SLOW)

  it('reports a build that fails in its worker as a failed job, with the reason', async () => {
    const d = tempDir()
    const bundleDir = join(d, 'bundle')
    cpSync(TINY, bundleDir, { recursive: true })
    const broken = tinyWorkbench(d, { bundleDir })
    unwrap(await broken.invoke('bundle.info', {}))
    rmSync(join(bundleDir, 'sae.safetensors')) // after main opened it: the worker's own load fails
    const end = await build(broken)
    expect(end.outcome).toBe('failed')
    expect(end.error?.message).toMatch(/sae\.safetensors .* does not exist/)
    await broken.close()
  }, SLOW)

  it('refuses to build where a folder stands at the cache path, and leaves it', async () => {
    const d = tempDir()
    mkdirSync(join(d, 'cache.sqlite'))
    writeFileSync(join(d, 'cache.sqlite', 'kept.txt'), 'x')
    const wb = tinyWorkbench(d)
    expect(unwrap(await wb.invoke('cache.status', {})).state).toBe('foreign')
    const r = await wb.invoke('cache.build', { jobId: 'job-1', rebuild: true })
    expect(r.ok ? null : r.error.code).toBe('cache_foreign')
    expect(readdirSync(join(d, 'cache.sqlite'))).toEqual(['kept.txt'])
    await wb.close()
  }, SLOW)

  it('refuses a second build while one runs, and reports a missing cache clearly', async () => {
    const d = tempDir()
    const other = tinyWorkbench(d, { build: { chunkSeqs: 2, pauseMsPerChunk: 50 } })
    const first = unwrap(await other.invoke('cache.build', { jobId: 'first' }))
    const second = await other.invoke('cache.build', { jobId: 'second' })
    expect(second.ok ? null : second.error.code).toBe('busy')
    const building = unwrap(await other.invoke('cache.status', {}))
    expect(building.state).toBe('building')
    const missing = await other.invoke('feature.get', { id: 1 })
    expect(missing.ok ? null : missing.error.code).toBe('cache_missing')
    expect(first.jobId).toBe('first')
    expect(unwrap(await other.invoke('job.cancel', { jobId: first.jobId }))).toEqual({ cancelled: true })
    expect(unwrap(await other.invoke('job.cancel', { jobId: first.jobId }))).toEqual({ cancelled: false })
    await other.close()
  }, SLOW)
})
