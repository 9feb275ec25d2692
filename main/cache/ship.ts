// A summary to ship inside a bundle folder (SHIPPED_CACHE): a finished cache's summary tables, copied into
// a compact single file in rollback-journal mode, so that it opens read-only from a read-only folder (a WAL
// file would need its -shm beside it) and a newcomer sees the features with no build.
import { existsSync, renameSync, rmSync, statSync } from 'node:fs'
import { FtError } from '../../common/errors'
import { pathText } from '../../common/text'
import { openSqlite } from '../native/sqlite'
import { keyMismatch, readMeta, writeMeta, type CacheKey } from './schema'

/** Copies the finished cache at `from` (built for `key`) to `to` as a summary; returns its size in bytes. */
export function shipSummary(from: string, to: string, key: CacheKey): number {
  const src = openSqlite(from, { readonly: true, fileMustExist: true })
  try {
    const meta = readMeta(src)
    if (!meta.built_at) throw new FtError('cache_missing', `the cache ${pathText(from)} is not finished; build it first`)
    const mismatch = keyMismatch(meta, key)
    if (mismatch) throw new FtError('cache_stale', `the cache ${pathText(from)} was built for another bundle: ${mismatch}`)
    if (existsSync(to) && !isShippedSummary(to)) {
      throw new FtError('invalid_request', `${pathText(to)} exists and is not a summary this app shipped; move it away first`)
    }
    const tmp = `${to}.partial`
    rmSync(tmp, { force: true })
    // VACUUM INTO writes a fresh, defragmented copy (SQLite's own way to copy a live database).
    src.prepare('VACUUM INTO ?').run(tmp)
    const db = openSqlite(tmp, { readonly: false, fileMustExist: true })
    try {
      db.exec('DELETE FROM feature_acts; DELETE FROM chunk')
      writeMeta(db, { full_table: '0', shipped: '1' })
      db.exec('VACUUM')
      db.pragma('journal_mode = DELETE')
    } finally {
      db.close()
    }
    renameSync(tmp, to)
    return statSync(to).size
  } finally {
    src.close()
  }
}

/** Is the file at `path` a summary written by shipSummary (so it may be replaced)? */
function isShippedSummary(path: string): boolean {
  try {
    const db = openSqlite(path, { readonly: true, fileMustExist: true })
    try {
      return readMeta(db).shipped === '1'
    } finally {
      db.close()
    }
  } catch {
    return false
  }
}
