// The summary cache (the default build) against the full one on the tiny bundle, and a summary shipped in
// a bundle folder: read-only, used until the app's own cache is built, ignored when it is another bundle's.
import { cpSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { brotliCompressSync, brotliDecompressSync } from 'node:zlib'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { unwrap } from '../../main/app/dispatch'
import type { Workbench } from '../../main/app/workbench'
import { loadBundle } from '../../main/bundle'
import { cacheKeyOf, SHIPPED_CACHE } from '../../main/cache/bundle-link'
import { shipSummary } from '../../main/cache/ship'
import { build, tempDir, tinyWorkbench, TINY } from './helpers/cache'

const SLOW = 300_000

/** Everything the feature views read, BOS excluded and included, as one JSON string (the histogram: the stored 40 linear bins). */
async function viewAnswers(wb: Workbench): Promise<string> {
  const info = unwrap(await wb.invoke('bundle.info', {}))
  const out: unknown[] = []
  for (const includeBos of [false, true]) {
    const list = unwrap(await wb.invoke('features.list', { includeBos }))
    expect(list.bos).toBe(includeBos ? 'included' : 'excluded')
    out.push(list)
    for (let id = 0; id < info.sae.d_sae; id++) {
      out.push(unwrap(await wb.invoke('feature.get', { id, includeBos })))
      out.push(unwrap(await wb.invoke('feature.histogram', { id, includeBos })))
    }
  }
  for (let t = 0; t < info.model.d_vocab; t += 5) out.push(unwrap(await wb.invoke('features.byToken', { tokenId: t, limit: 10_000 })))
  return JSON.stringify(out)
}

function rows(path: string, sql: string): unknown[] {
  const db = new Database(path, { readonly: true })
  try {
    return db.prepare(sql).all()
  } finally {
    db.close()
  }
}

describe('summary and full caches', () => {
  let fullDir: string
  let sumDir: string
  let full: Workbench
  let summary: Workbench

  beforeAll(async () => {
    fullDir = tempDir()
    sumDir = tempDir()
    full = tinyWorkbench(fullDir, { build: { chunkSeqs: 4 } })
    summary = tinyWorkbench(sumDir, { build: { chunkSeqs: 4 } })
    expect((await build(full, { full: true })).outcome).toBe('done')
    expect((await build(summary)).outcome).toBe('done')
  }, SLOW)
  afterAll(async () => {
    await full?.close()
    await summary?.close()
  })

  it('answers every feature view exactly as the full cache does, in a fraction of the bytes', async () => {
    const s = unwrap(await summary.invoke('cache.status', {}))
    const f = unwrap(await full.invoke('cache.status', {}))
    expect([s.state, s.fullTable, f.state, f.fullTable]).toEqual(['ready', false, 'ready', true])
    expect(await viewAnswers(summary)).toBe(await viewAnswers(full))
    expect(rows(join(sumDir, 'cache.sqlite'), 'SELECT COUNT(*) AS n FROM feature_acts')).toEqual([{ n: 0 }])
    expect((rows(join(fullDir, 'cache.sqlite'), 'SELECT COUNT(*) AS n FROM feature_acts')[0] as { n: number }).n).toBeGreaterThan(0)
    expect(s.sizeBytes).toBeLessThan(f.sizeBytes)
  }, SLOW)

  it('says what a histogram with other bins needs, and a full build on the summary gives it', async () => {
    const refused = await summary.invoke('feature.histogram', { id: 3, bins: 17, scale: 'log' })
    expect(refused.ok ? null : refused.error).toEqual({ code: 'cache_missing', message: expect.stringMatching(/summary only.*--full/) })
    const wanted = unwrap(await full.invoke('feature.histogram', { id: 3, bins: 17, scale: 'log' }))
    // The finished summary has no scratch chunks left: asked for the full table, the build starts over.
    const progress: number[] = []
    expect((await build(summary, { full: true, onProgress: (p) => progress.push(p.doneTokens) })).outcome).toBe('done')
    expect(progress[0]).toBe(0)
    expect(unwrap(await summary.invoke('cache.status', {})).fullTable).toBe(true)
    expect(unwrap(await summary.invoke('feature.histogram', { id: 3, bins: 17, scale: 'log' }))).toEqual(wanted)
  }, SLOW)
})

describe('a summary shipped in the bundle folder', () => {
  let source: Workbench
  let sourceDir: string
  let bundleDir: string
  let shippedAnswers: string
  let hash: string

  beforeAll(async () => {
    sourceDir = tempDir()
    source = tinyWorkbench(sourceDir, { build: { chunkSeqs: 4 } })
    expect((await build(source, { full: true })).outcome).toBe('done')
    shippedAnswers = await viewAnswers(source)
    bundleDir = join(tempDir(), 'bundle')
    cpSync(TINY, bundleDir, { recursive: true })
    const bundle = await loadBundle(bundleDir)
    hash = bundle.hashes.bundle
    shipSummary(join(sourceDir, 'cache.sqlite'), join(bundleDir, SHIPPED_CACHE), cacheKeyOf(bundle))
  }, SLOW)
  afterAll(async () => source?.close())

  it('is a compact summary, compressed, in rollback-journal mode', () => {
    const gz = join(bundleDir, SHIPPED_CACHE)
    const unpacked = join(tempDir(), 'unpacked.sqlite')
    writeFileSync(unpacked, brotliDecompressSync(readFileSync(gz)))
    const db = new Database(unpacked, { readonly: true })
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('delete')
      expect(db.pragma('page_size', { simple: true })).toBe(16384)
      expect(db.prepare('SELECT COUNT(*) FROM feature_acts').pluck().get()).toBe(0)
      expect(db.prepare('SELECT COUNT(*) FROM chunk').pluck().get()).toBe(0)
      expect(db.prepare("SELECT value FROM meta WHERE key = 'full_table'").pluck().get()).toBe('0')
      // The non-BOS rows travel with it, as the source cache has them.
      expect(db.prepare("SELECT value FROM meta WHERE key = 'bos_positions'").pluck().get()).toBe('24')
      expect(db.prepare('SELECT COUNT(*) FROM feature_nobos').pluck().get()).toBe(rows(join(sourceDir, 'cache.sqlite'), 'SELECT COUNT(*) AS n FROM feature_nobos').map((r) => (r as { n: number }).n)[0])
      expect(db.prepare('SELECT COUNT(*) FROM feature_nobos').pluck().get()).toBeGreaterThan(0)
    } finally {
      db.close()
    }
    expect(statSync(gz).size).toBeLessThan(Math.min(statSync(unpacked).size, statSync(join(sourceDir, 'cache.sqlite')).size))
  })

  it('shows the features with no build, and the built cache takes over once it is ready', async () => {
    const dir = tempDir()
    const before = readdirSync(bundleDir).sort()
    const wb = tinyWorkbench(dir, { bundleDir, build: { chunkSeqs: 4 } })
    try {
      const s = unwrap(await wb.invoke('cache.status', {}))
      const unpacked = join(dir, `${hash}.shipped.sqlite`)
      expect(s.state).toBe('missing')
      expect(s.shipped).toEqual({ path: unpacked, builtAt: expect.any(String), fullTable: false, sizeBytes: statSync(unpacked).size })
      expect(await viewAnswers(wb)).toBe(shippedAnswers)
      // Other binnings need the full table, which the app builds in its own cache file.
      const refused = await wb.invoke('feature.histogram', { id: 2, bins: 9, scale: 'log' })
      expect(refused.ok ? null : refused.error.code).toBe('cache_missing')
      expect((await build(wb, { full: true })).outcome).toBe('done')
      const built = unwrap(await wb.invoke('cache.status', {}))
      expect([built.state, built.fullTable, built.shipped]).toEqual(['ready', true, undefined])
      expect(built.path).toBe(join(dir, 'cache.sqlite'))
      expect(await viewAnswers(wb)).toBe(shippedAnswers)
      expect(unwrap(await wb.invoke('feature.histogram', { id: 2, bins: 9, scale: 'log' })).counts.length).toBe(9)
    } finally {
      await wb.close()
    }
    expect(readdirSync(bundleDir).sort()).toEqual(before) // nothing written beside the bundle
  }, SLOW)

  it('moves aside what it cannot read where it unpacks, and names it', async () => {
    const dir = tempDir()
    const unpacked = join(dir, `${hash}.shipped.sqlite`)
    writeFileSync(unpacked, 'not a database, and not ours to replace')
    const wb = tinyWorkbench(dir, { bundleDir })
    try {
      expect(unwrap(await wb.invoke('cache.status', {})).shipped?.path).toBe(unpacked)
      const [notice] = unwrap(await wb.invoke('workbench.notices', {})).notices
      expect(notice.movedAside?.from).toBe(unpacked)
      expect(readFileSync(notice.movedAside!.to, 'utf8')).toBe('not a database, and not ours to replace')
      expect(await viewAnswers(wb)).toBe(shippedAnswers)
    } finally {
      await wb.close()
    }
  }, SLOW)

  it("is ignored when it is another bundle's, and never replaces a file it did not write", async () => {
    const other = join(tempDir(), 'bundle')
    cpSync(TINY, other, { recursive: true })
    const stale = join(tempDir(), 'stale.sqlite')
    cpSync(join(sourceDir, 'cache.sqlite'), stale)
    const db = new Database(stale)
    db.prepare("UPDATE meta SET value = ? WHERE key = 'tokens_sha256'").run('0'.repeat(64))
    db.close()
    // Shipped for a corpus with other tokens: shipSummary itself refuses it …
    const bundle = await loadBundle(other)
    expect(() => shipSummary(stale, join(other, SHIPPED_CACHE), cacheKeyOf(bundle))).toThrow(/another bundle: tokens\.safetensors sha256 differs/)
    // … and one that arrives anyway is not read.
    writeFileSync(join(other, SHIPPED_CACHE), brotliCompressSync(readFileSync(stale)))
    const wb = tinyWorkbench(tempDir(), { bundleDir: other })
    try {
      const s = unwrap(await wb.invoke('cache.status', {}))
      expect([s.state, s.shipped]).toEqual(['missing', undefined])
      const r = await wb.invoke('features.list', {})
      expect(r.ok ? null : r.error.code).toBe('cache_missing')
    } finally {
      await wb.close()
    }
    const notOurs = join(tempDir(), SHIPPED_CACHE)
    writeFileSync(notOurs, 'my notes')
    expect(() => shipSummary(join(sourceDir, 'cache.sqlite'), notOurs, cacheKeyOf(bundle))).toThrow(/not a summary this app shipped; move it away/)
    expect(readFileSync(notOurs, 'utf8')).toBe('my notes')
  }, SLOW)
})
