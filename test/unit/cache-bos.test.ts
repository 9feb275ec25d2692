// Statistics without BOS (issue 14 §3, main/cache/bos.ts): finalize over synthetic chunks whose firings the
// test chose, read back in both modes and checked against a recount done here, over the firings not at
// position 0 (every sequence starts with BOS id 0; the same id mid-sequence is a real token and counts).
// Also: a cache built before the split answers with BOS included and says so, and a corpus without BOS.
import { copyFileSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { describe, expect, it } from 'vitest'
import type { FeatureBos, FeatureDetail, FeatureSummary } from '../../common/contract'
import { encodeChunk } from '../../main/cache/encode'
import { finalize } from '../../main/cache/finalize'
import { CacheReader } from '../../main/cache/query'
import { keyToMeta, openCacheDb, SCHEMA_VERSION, writeMeta, type CacheKey } from '../../main/cache/schema'
import { tempDir } from './helpers/cache'

const N_SEQ = 6
const SEQ_LEN = 8
const VOCAB = 10
const D_SAE = 6
const CHUNK_SEQS = 2
const N = N_SEQ * SEQ_LEN

/** A small deterministic generator (mulberry32), so the corpus and firings are the same on every run. */
function rng(seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Token ids: BOS (0) at every position 0 when `bos`, else tokens that differ (no BOS); mid-sequence 0s at two places. */
function makeCorpus(bos: boolean): Int32Array {
  const r = rng(7)
  const c = new Int32Array(N)
  for (let t = 0; t < N; t++) c[t] = t % SEQ_LEN === 0 && bos ? 0 : 1 + Math.floor(r() * (VOCAB - 1))
  c[2 * SEQ_LEN + 4] = 0
  c[5 * SEQ_LEN + 7] = 0
  return c
}

/**
 * Dense [N, D_SAE] activations (float32 values): f0 fires 2.0 on BOS (its max) and on token 3 and some
 * others; f1 only on BOS (bos_only); f2 never at position 0 but on the mid-sequence 0s; f3 on most tokens,
 * BOS strongest; f4 never; f5 only on the mid-sequence 0s, so its top token is BOS's id though it never fires
 * at a BOS position (its recall and "below" examples without BOS must not count the BOS positions).
 */
function makeActs(corpus: Int32Array): Float32Array {
  const r = rng(11)
  const d = new Float32Array(N * D_SAE)
  const set = (t: number, f: number, v: number) => (d[t * D_SAE + f] = Math.fround(v))
  for (let t = 0; t < N; t++) {
    const pos0 = t % SEQ_LEN === 0
    if (pos0) set(t, 0, 2)
    else if (corpus[t] === 3 || r() < 0.3) set(t, 0, 0.1 + r())
    if (pos0) set(t, 1, 0.75)
    if (!pos0 && (corpus[t] === 0 || r() < 0.4)) set(t, 2, 0.2 + r())
    if (pos0) set(t, 3, 5 + r())
    else if (r() < 0.8) set(t, 3, 0.05 + r())
    if (!pos0 && corpus[t] === 0) set(t, 5, 0.5 + r())
  }
  return d
}

const key: CacheKey = { schemaVersion: SCHEMA_VERSION, modelSha256: 'm', saeSha256: 's', tokensSha256: 't', nSeq: N_SEQ, seqLen: SEQ_LEN, dSae: D_SAE }
const display = ['<bos>', ...Array.from({ length: VOCAB - 1 }, (_, i) => `t${i + 1}`)]

/** Writes the dense activations as the build's chunks (token-major CSR) and finalizes them. */
function buildCache(path: string, corpus: Int32Array, dense: Float32Array, full = false): void {
  const db = openCacheDb(path)
  try {
    writeMeta(db, { ...keyToMeta(key), chunk_seqs: String(CHUNK_SEQS), n_chunks: String(N_SEQ / CHUNK_SEQS) })
    const insert = db.prepare('INSERT INTO chunk (idx, n_tokens, nnz, row_ptr, feature_ids, vals) VALUES (?, ?, ?, ?, ?, ?)')
    const chunkTokens = CHUNK_SEQS * SEQ_LEN
    for (let idx = 0; idx < N_SEQ / CHUNK_SEQS; idx++) {
      const rowPtr = [0]
      const ids: number[] = []
      const vals: number[] = []
      for (let r = 0; r < chunkTokens; r++) {
        for (let f = 0; f < D_SAE; f++) {
          const v = dense[(idx * chunkTokens + r) * D_SAE + f]
          if (v === 0) continue
          ids.push(f)
          vals.push(v)
        }
        rowPtr.push(ids.length)
      }
      const b = encodeChunk(Uint32Array.from(rowPtr), Uint32Array.from(ids), Float32Array.from(vals), false)
      insert.run(idx, chunkTokens, ids.length, b.rowPtr, b.featureIds, b.values)
    }
    finalize(db, { corpus, seqLen: SEQ_LEN, chunkSeqs: CHUNK_SEQS, dSae: D_SAE, vocabSize: VOCAB, full })
  } finally {
    db.close()
  }
}

function readerOf(path: string, corpus: Int32Array): CacheReader {
  return new CacheReader({ path, key, view: { corpus, seqLen: SEQ_LEN, display }, logitWeights: null })
}

interface Recount {
  firing: [token: number, value: number][]
  count: number
  max: number
  mean: number
  density: number
  topTokenId: number | null
  precision: number | null
  recall: number | null
  occurrencesOfTop: number
  topCount: number
  hist: number[]
}

/** One feature's numbers over its firings at positions `counted` keeps, against the tokens it keeps. */
function recount(corpus: Int32Array, dense: Float32Array, f: number, counted: (t: number) => boolean): Recount {
  const firing: [number, number][] = []
  for (let t = 0; t < N; t++) if (counted(t) && dense[t * D_SAE + f] !== 0) firing.push([t, dense[t * D_SAE + f]])
  const tokens = Array.from({ length: N }, (_, t) => t).filter(counted)
  const count = firing.length
  const max = Math.max(0, ...firing.map(([, v]) => v))
  const min = Math.min(...firing.map(([, v]) => v))
  const perToken = new Map<number, number>()
  for (const [t] of firing) perToken.set(corpus[t], (perToken.get(corpus[t]) ?? 0) + 1)
  const best = Math.max(0, ...perToken.values())
  const topTokenId = count ? Math.min(...[...perToken].filter(([, c]) => c === best).map(([id]) => id)) : null
  const occurrencesOfTop = tokens.filter((t) => corpus[t] === topTokenId).length
  const hist = new Array<number>(count === 0 ? 0 : max === min ? 1 : 40).fill(0)
  for (const [, v] of firing) hist[max === min ? 0 : Math.min(39, Math.floor(((v - min) / (max - min)) * 40))]++
  return {
    firing,
    count,
    max,
    mean: count ? firing.reduce((s, [, v]) => s + v, 0) / count : 0,
    density: count / tokens.length,
    topTokenId,
    precision: count ? best / count : null,
    recall: count ? best / occurrencesOfTop : null,
    occurrencesOfTop,
    topCount: best,
    hist,
  }
}

const isBos = (corpus: Int32Array) => (t: number) => t % SEQ_LEN === 0 && corpus[t] === 0

function expectSummary(s: FeatureSummary, want: Recount): void {
  expect(s.count).toBe(want.count)
  expect(s.max).toBe(want.max)
  expect(s.mean).toBeCloseTo(want.mean, 12)
  expect(s.density).toBeCloseTo(want.density, 15)
  expect(s.topTokenId).toBe(want.topTokenId)
  if (want.precision === null) expect(s.precision).toBeNull()
  else {
    expect(s.precision).toBeCloseTo(want.precision, 15)
    expect(s.recall).toBeCloseTo(want.recall ?? NaN, 15)
    expect(s.f1).toBeCloseTo((2 * want.precision * (want.recall ?? 0)) / (want.precision + (want.recall ?? 0)), 15)
  }
}

function expectDetail(d: FeatureDetail, want: Recount, dense: Float32Array, corpus: Int32Array, f: number, bosExcluded: boolean): void {
  expectSummary(d.stats, want)
  const top = [...want.firing].sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, 100)
  expect(d.top.map((r) => [r.batch * SEQ_LEN + r.pos, r.activation])).toEqual(top)
  expect(d.histogram.counts).toEqual(want.hist)
  expect(d.intervals.reduce((n, b) => n + b.count, 0)).toBe(want.count)
  expect(d.quantiles.reduce((n, g) => n + g.count, 0)).toBe(want.count)
  const examples = [...d.intervals, ...d.quantiles].flatMap((b) => b.examples)
  if (bosExcluded) for (const e of [...d.top, ...examples]) expect(isBos(corpus)(e.batch * SEQ_LEN + e.pos)).toBe(false)
  expect(d.below).toHaveLength(Math.min(5, want.occurrencesOfTop - want.topCount))
  for (const r of d.below) {
    const t = r.batch * SEQ_LEN + r.pos
    expect(r.token_id).toBe(want.topTokenId)
    expect(dense[t * D_SAE + f]).toBe(0)
    if (bosExcluded) expect(isBos(corpus)(t)).toBe(false)
  }
}

describe('statistics without BOS', () => {
  const corpus = makeCorpus(true)
  const dense = makeActs(corpus)
  const dir = tempDir('ft-bos-')
  const path = join(dir, 'cache.sqlite')
  buildCache(path, corpus, dense, true)

  it('the test data has what the modes must tell apart', () => {
    // f0's and f3's strongest firings are on BOS, f1 fires only there, f2 on mid-sequence 0s only.
    for (const f of [0, 1, 3]) expect(recount(corpus, dense, f, () => true).firing.some(([t]) => isBos(corpus)(t))).toBe(true)
    expect(recount(corpus, dense, 2, () => true).firing.filter(([t]) => corpus[t] === 0)).toHaveLength(2)
    expect(recount(corpus, dense, 0, () => true).topTokenId).toBe(0)
    expect(recount(corpus, dense, 5, () => true)).toMatchObject({ count: 2, topTokenId: 0 })
  })

  it('stores non-BOS rows only for features that fire on BOS, and the number of BOS positions', () => {
    const db = new Database(path, { readonly: true })
    try {
      // f5 fires at no BOS position, but its top token is BOS's id: its recall and "below" differ without BOS.
      expect(db.prepare('SELECT id FROM feature_nobos ORDER BY id').pluck().all()).toEqual([0, 1, 3, 5])
      expect(db.prepare("SELECT value FROM meta WHERE key = 'bos_positions'").pluck().get()).toBe(String(N_SEQ))
    } finally {
      db.close()
    }
  })

  for (const mode of ['excluded', 'included'] as const) {
    it(`answers the list and every feature with BOS ${mode}, as the recount`, () => {
      const r = readerOf(path, corpus)
      const counted = mode === 'excluded' ? (t: number) => !isBos(corpus)(t) : () => true
      const list = r.list(undefined, mode)
      expect(list.bos).toBe(mode)
      for (let f = 0; f < D_SAE; f++) {
        const want = recount(corpus, dense, f, counted)
        expectSummary(list.features[f], want)
        const d = r.detail(f, 100, undefined, mode)
        expect(d.bos).toBe(mode)
        expectDetail(d, want, dense, corpus, f, mode === 'excluded')
        // The flags come from every firing in both modes: f1 stays BOS-only though it never fires without BOS.
        const all = recount(corpus, dense, f, () => true)
        expect(list.features[f].flags.includes('bos_only')).toBe(all.topTokenId === 0 && (all.precision ?? 0) >= 0.99)
        expect(list.features[f].flags.includes('dense')).toBe(all.density > 0.1)
        expect(d.stats.flags).toEqual(list.features[f].flags)
      }
      // The stored histogram's mode holds for other binnings too (from the full table).
      const h = r.histogram(0, 7, 'linear', mode)
      expect(h.counts.reduce((a, b) => a + b, 0)).toBe(recount(corpus, dense, 0, counted).count)
      r.close()
    })
  }

  it('a BOS-only feature without BOS has no firings, and its all-firings flags', () => {
    const r = readerOf(path, corpus)
    const d = r.detail(1, 100)
    expect(d.stats).toMatchObject({ count: 0, density: 0, topTokenId: null, flags: ['bos_only', 'constant', 'dense'] })
    expect(d.top).toEqual([])
    r.close()
  })

  it('a cache built before the split answers with BOS included and says it cannot separate them', () => {
    const old = join(dir, 'old.sqlite')
    copyFileSync(path, old)
    const db = new Database(old)
    db.exec("DROP TABLE feature_nobos; DELETE FROM meta WHERE key = 'bos_positions'")
    db.close()
    const r = readerOf(old, corpus)
    for (const mode of ['excluded', 'included'] as const) {
      const list = r.list(undefined, mode)
      expect(list.bos).toBe<FeatureBos>('not_separable')
      for (let f = 0; f < D_SAE; f++) {
        const want = recount(corpus, dense, f, () => true)
        expectSummary(list.features[f], want)
        const d = r.detail(f, 100, undefined, mode)
        expect(d.bos).toBe('not_separable')
        expectDetail(d, want, dense, corpus, f, false)
      }
    }
    r.close()
  })

  it('a damaged count of BOS positions is reported as a damaged cache', () => {
    const bad = join(dir, 'bad.sqlite')
    copyFileSync(path, bad)
    const db = new Database(bad)
    db.prepare("UPDATE meta SET value = '-3' WHERE key = 'bos_positions'").run()
    db.close()
    const r = readerOf(bad, corpus)
    expect(() => r.list()).toThrow(/damaged/)
    r.close()
  })

  it('a corpus without BOS has nothing to exclude', () => {
    const plain = makeCorpus(false)
    const acts = makeActs(plain)
    const p = join(dir, 'plain.sqlite')
    buildCache(p, plain, acts)
    const r = readerOf(p, plain)
    const list = r.list()
    expect(list.bos).toBe('no_bos')
    for (let f = 0; f < D_SAE; f++) {
      expectSummary(list.features[f], recount(plain, acts, f, () => true))
      expect(r.detail(f, 100).bos).toBe('no_bos')
    }
    const db = new Database(p, { readonly: true })
    expect(db.prepare('SELECT COUNT(*) FROM feature_nobos').pluck().get()).toBe(0)
    db.close()
    r.close()
  })
})
