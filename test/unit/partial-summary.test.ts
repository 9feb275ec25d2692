// PartialSummary on its own (partial.ts): the running numbers and the top k a build keeps per feature, and
// the incremental writes of its two scratch tables, against a recount from the firings themselves (every
// firing kept in a list, sorted by value then token). Values come from a handful of levels so that ties,
// at the bar of a full top k included, are common; small k so that heaps fill and turn over often.
import { describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { PartialSummary } from '../../main/cache/partial'
import { openCacheDb, readMeta, tableNames } from '../../main/cache/schema'
import { float32Of, uint32Of } from '../../main/cache/encode'
import { tempDir } from './helpers/cache'

const D_SAE = 40
const K = 6

interface Chunk {
  base: number
  rowPtr: Uint32Array
  ids: Uint32Array
  vals: Float32Array
}

/** xorshift32, so every run sees the same firings. */
function rng(seed: number): () => number {
  let s = seed
  return () => {
    s ^= s << 13
    s ^= s >>> 17
    s ^= s << 5
    return (s >>> 0) / 2 ** 32
  }
}

/** Chunks of `rows` tokens from `base`: each token fires a few features (ascending) at one of 8 levels. */
function chunk(r: () => number, base: number, rows: number): Chunk {
  const rowPtr = new Uint32Array(rows + 1)
  const ids: number[] = []
  const vals: number[] = []
  for (let t = 0; t < rows; t++) {
    // Feature 0 fires on most tokens (its top k turns over), the last ones rarely (never full).
    for (let f = 0; f < D_SAE; f++) {
      if (r() < 0.6 / (1 + f) ** 2) {
        ids.push(f)
        vals.push(Math.fround(0.25 * (1 + Math.floor(r() * 8))))
      }
    }
    rowPtr[t + 1] = ids.length
  }
  return { base, rowPtr, ids: Uint32Array.from(ids), vals: Float32Array.from(vals) }
}

interface Recount {
  count: number
  sum: number
  max: number
  top: [number, number][]
}

/** Every feature's numbers over the chunks, in the order given, from the firings listed one by one. */
function recount(chunks: Chunk[]): Recount[] {
  const firings = Array.from({ length: D_SAE }, () => [] as [number, number][])
  for (const c of chunks) {
    for (let r = 0; r + 1 < c.rowPtr.length; r++) {
      for (let j = c.rowPtr[r]; j < c.rowPtr[r + 1]; j++) firings[c.ids[j]].push([c.base + r, c.vals[j]])
    }
  }
  return firings.map((fs) => ({
    count: fs.length,
    sum: fs.reduce((s, [, v]) => s + v, 0),
    max: fs.reduce((m, [, v]) => Math.max(m, v), 0),
    top: [...fs].sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, K),
  }))
}

describe('PartialSummary', () => {
  it('keeps exact numbers and the k strongest firings, ties to the earlier token, in any chunk order', () => {
    const r = rng(99)
    const chunks = Array.from({ length: 12 }, (_, i) => chunk(r, i * 50, 50))
    // In order, then with later chunks first (a firing then ties a full top k's bar at an earlier token).
    for (const order of [chunks, [...chunks].reverse()]) {
      const p = new PartialSummary(D_SAE, K)
      for (const c of order) p.add(c.base, c.rowPtr, c.ids, c.vals)
      const want = recount(order)
      expect(want[0].count).toBeGreaterThan(10 * K)
      expect(want[D_SAE - 1].count).toBeLessThan(K)
      for (let f = 0; f < D_SAE; f++) {
        const got = p.feature(f)
        expect([got.count, got.sum, got.max]).toEqual([want[f].count, want[f].sum, want[f].max])
        expect(Array.from(got.topTokens, (t, i) => [t, got.topVals[i]])).toEqual(want[f].top)
      }
      expect(p.tokens).toBe(600)
    }
  })

  it('writes what changed since the last write; the tables then hold the recount of everything added', () => {
    const db = openCacheDb(join(tempDir(), 'cache.sqlite'))
    const r = rng(7)
    const p = new PartialSummary(D_SAE, K)
    db.transaction(() => p.write(db, true))()
    // Which top rows each write rewrites.
    db.exec('CREATE TEMP TABLE top_writes (id INTEGER); CREATE TEMP TRIGGER top_written AFTER INSERT ON main.partial_top BEGIN INSERT INTO top_writes VALUES (NEW.id); END')
    const added: Chunk[] = []
    let lastTopWrites: number[] = []
    for (let i = 0; i < 10; i++) {
      const c = chunk(r, i * 40, 40)
      p.add(c.base, c.rowPtr, c.ids, c.vals)
      added.push(c)
      // Written after chunks 0, 1, 4 and 9 only: the rows not rewritten must still be right.
      if (![0, 1, 4, 9].includes(i)) continue
      db.exec('DELETE FROM top_writes')
      db.transaction(() => p.write(db))()
      lastTopWrites = (db.prepare('SELECT id FROM top_writes ORDER BY id').all() as { id: number }[]).map((x) => x.id)
      const want = recount(added)
      const stats = db.prepare('SELECT id, count, max, sum FROM partial_feature ORDER BY id').all() as { id: number; count: number; max: number; sum: number }[]
      expect(stats).toEqual(want.flatMap((w, id) => (w.count ? [{ id, count: w.count, max: w.max, sum: w.sum }] : [])))
      const tops = db.prepare('SELECT id, top_tokens, top_vals FROM partial_top ORDER BY id').all() as { id: number; top_tokens: Buffer; top_vals: Buffer }[]
      expect(tops.map((t) => t.id)).toEqual(stats.map((s) => s.id))
      for (const t of tops) {
        const tokens = uint32Of(t.top_tokens)
        const vals = float32Of(t.top_vals)
        const sorted = Array.from(tokens, (tok, j): [number, number] => [tok, vals[j]]).sort((a, b) => b[1] - a[1] || a[0] - b[0])
        expect(sorted).toEqual(want[t.id].top)
      }
      expect(readMeta(db).partial_tokens).toBe(String((i + 1) * 40))
    }
    // Feature 0 fired in chunks 5-9 but its top k (the first tokens at the highest level) was full long
    // before: the last write left its top row alone, and rewrote only tops that changed.
    const fired = new Set(added.slice(5).flatMap((c) => Array.from(c.ids)))
    expect(fired.has(0)).toBe(true)
    expect(lastTopWrites).not.toContain(0)
    expect(lastTopWrites.length).toBeGreaterThan(0)
    expect(lastTopWrites.length).toBeLessThan(fired.size)
    expect(tableNames(db)).toEqual(expect.arrayContaining(['partial_feature', 'partial_top']))
    db.close()
  })

  it('write(all) recreates the tables, dropping a layout an older build left', () => {
    const db = openCacheDb(join(tempDir(), 'cache.sqlite'))
    db.exec('DROP TABLE partial_feature')
    db.exec('CREATE TABLE partial_feature (id INTEGER PRIMARY KEY, count INTEGER NOT NULL, max REAL NOT NULL, sum REAL NOT NULL, top_tokens BLOB NOT NULL, top_vals BLOB NOT NULL)')
    db.prepare("INSERT INTO partial_feature VALUES (39, 1, 1, 1, x'00000000', x'0000803f')").run()
    const c = chunk(rng(3), 0, 20)
    const p = new PartialSummary(D_SAE, K)
    p.add(c.base, c.rowPtr, c.ids, c.vals)
    db.transaction(() => p.write(db, true))()
    const want = recount([c])
    const rows = db.prepare('SELECT * FROM partial_feature ORDER BY id').all()
    expect(rows).toEqual(want.flatMap((w, id) => (w.count ? [{ id, count: w.count, max: w.max, sum: w.sum }] : [])))
    db.close()
  })
})
