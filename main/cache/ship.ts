// A summary to ship inside a bundle folder (SHIPPED_CACHE): a finished cache's summary tables in a compact
// SQLite file, Brotli-compressed (the demo's: 8,192 features, 1M tokens: 20.6 MB in 13.8 MB), so that whoever opens the
// bundle sees its features with no build. The app unpacks it once into its cache folder and reads it there
// read-only, until it has built a cache of its own.
import { existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { brotliCompressSync, brotliDecompressSync, constants } from 'node:zlib'
import type { MovedAside } from '../../common/contract'
import { FtError } from '../../common/errors'
import { pathText } from '../../common/text'
import { moveAside } from '../files/safe-io'
import { openSqlite } from '../native/sqlite'
import { logitsPending } from './logit-step'
import { inspectCacheFile, keyMismatch, readMeta, writeMeta, type CacheKey } from './schema'
import { decodeTokenEntries, keptFeatures, TokenIndexBuilder } from './token-index'

/** Larger pages pack the ~1.6 kB feature rows with less slack than SQLite's default 4 kB (15 % smaller). */
const SHIPPED_PAGE_SIZE = 16384

/**
 * Writes the summary of the finished cache at `from` (built for `key`) compressed to `to`, replacing only a
 * summary this function wrote. Returns the sizes: the SQLite file, and compressed.
 */
export function shipSummary(from: string, to: string, key: CacheKey): { bytes: number; compressedBytes: number } {
  const src = openSqlite(from, { readonly: true, fileMustExist: true })
  const tmp = `${to}.sqlite.partial`
  try {
    const meta = readMeta(src)
    if (!meta.built_at) throw new FtError('cache_missing', `the cache ${pathText(from)} is not finished; build it first`)
    // A shipped summary carries every feature's logit effects: whoever opens it holds no weights to compute them.
    if (logitsPending(meta)) throw new FtError('cache_missing', `the cache ${pathText(from)} has no logit effects yet (its build stopped before the logit step); build it again to finish it`)
    const mismatch = keyMismatch(meta, key)
    if (mismatch) throw new FtError('cache_stale', `the cache ${pathText(from)} was built for another bundle: ${mismatch}`)
    if (existsSync(to) && !isShippedSummary(to)) {
      throw new FtError('invalid_request', `${pathText(to)} exists and is not a summary this app shipped; move it away first`)
    }
    rmSync(tmp, { force: true })
    // VACUUM INTO writes a fresh copy (SQLite's own way to copy a live database).
    src.prepare('VACUUM INTO ?').run(tmp)
  } finally {
    src.close()
  }
  try {
    const db = openSqlite(tmp, { readonly: false, fileMustExist: true })
    try {
      db.transaction(() => {
        db.exec('DELETE FROM feature_acts; DELETE FROM chunk')
        capTokenIndex(db)
        writeMeta(db, { full_table: '0', shipped: '1' })
      })()
      db.pragma('journal_mode = DELETE')
      db.pragma(`page_size = ${SHIPPED_PAGE_SIZE}`)
      db.exec('VACUUM')
    } finally {
      db.close()
    }
    const raw = readFileSync(tmp)
    // Brotli at its best setting: 15 % smaller than gzip -9 on the demo's summary (13.8 against 16.2 MB),
    // minutes to write once, a fraction of a second to unpack; Node has it built in.
    const gz = brotliCompressSync(raw, {
      params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_LGWIN]: 24, [constants.BROTLI_PARAM_SIZE_HINT]: raw.length },
    })
    writeFileSync(`${to}.partial`, gz)
    renameSync(`${to}.partial`, to)
    return { bytes: raw.length, compressedBytes: gz.length }
  } finally {
    rmSync(tmp, { force: true })
  }
}

/** A cache finalized before the token index kept a bounded list per token gets the same lists (token-index.ts). */
function capTokenIndex(db: ReturnType<typeof openSqlite>): void {
  const rows = db.prepare('SELECT id, count FROM feature').raw().all() as [number, number][]
  const counts = new Float64Array(rows.reduce((n, [id]) => Math.max(n, id + 1), 0))
  for (const [id, n] of rows) counts[id] = n
  const update = db.prepare('UPDATE token_index SET entries = ? WHERE token_id = ?')
  for (const row of db.prepare('SELECT token_id, entries FROM token_index').all() as { token_id: number; entries: Buffer }[]) {
    const entries = decodeTokenEntries(row.entries)
    const kept = keptFeatures(entries, counts)
    if (kept.length === entries.length) continue
    const one = new TokenIndexBuilder(1)
    for (const e of kept) one.add(0, e.feature, e.count, e.max, e.sum)
    const [[, , blob]] = [...one.blobs(counts)]
    update.run(blob, row.token_id)
  }
}

/** Is the file at `path` a summary written by shipSummary (so it may be replaced)? */
function isShippedSummary(path: string): boolean {
  try {
    // better-sqlite3 opens a serialized database (a Buffer) in memory.
    const db = openSqlite(brotliDecompressSync(readFileSync(path)))
    try {
      return readMeta(db).shipped === '1'
    } finally {
      db.close()
    }
  } catch {
    return false
  }
}

/**
 * Unpacks the shipped summary `gz` to `to` (the app's cache folder) unless an unpacked copy at least as new
 * is there already. Whatever else stands at `to` and cannot be read as ours is moved aside, never replaced.
 * Returns the path to read, or null when the shipped file cannot be unpacked (the reason in `onProblem`).
 */
export function unpackShipped(gz: string, to: string, onProblem: (reason: string, movedAside?: MovedAside) => void): string | null {
  try {
    const file = inspectCacheFile(to)
    if (file.kind === 'ours' && statSync(to).mtimeMs >= statSync(gz).mtimeMs) return to
    if (file.kind === 'foreign' || file.kind === 'corrupt') {
      const movedAside = { from: to, to: moveAside(to, 'unreadable', ['-wal', '-shm', '-journal']), reason: file.reason }
      onProblem('A file stood where the shipped summary is unpacked and could not be read as one; it was moved aside.', movedAside)
    }
    const bytes = brotliDecompressSync(readFileSync(gz))
    writeFileSync(`${to}.partial`, bytes)
    renameSync(`${to}.partial`, to)
    return to
  } catch (e) {
    onProblem(`The summary shipped with the bundle (${pathText(gz)}) could not be unpacked (${(e as Error).message.slice(0, 200)}); build the cache to see the features.`)
    return null
  }
}
