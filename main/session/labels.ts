// Labels and notes a researcher writes, per bundle, in the user-data folder. Deliberately not in the
// activation cache: a cache can be deleted and rebuilt at any time, user work must never go with it.
// A labels file that cannot be opened is moved aside (with its -wal/-shm) and named, never replaced.
import { existsSync, mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import type Database from 'better-sqlite3'
import { openSqlite } from '../native/sqlite'
import { moveAside } from '../files/safe-io'
import { pathText } from '../../common/text'
import type { MovedAside } from './file'

export interface Annotation {
  label: string
  notes: string
}

const DDL = `CREATE TABLE IF NOT EXISTS annotation (
  bundle_hash TEXT NOT NULL, feature INTEGER NOT NULL,
  label TEXT NOT NULL DEFAULT '', notes TEXT NOT NULL DEFAULT '', updated_at TEXT NOT NULL,
  PRIMARY KEY (bundle_hash, feature)) WITHOUT ROWID`

/** Rows per transaction of an import; between batches other requests are answered. */
const IMPORT_BATCH = 2000

function open(path: string): Database.Database {
  const db = openSqlite(path)
  try {
    db.pragma('journal_mode = WAL')
    // FULL: a label the researcher just typed survives a power cut.
    db.pragma('synchronous = FULL')
    const check = db.pragma('quick_check', { simple: true })
    if (check !== 'ok') throw new Error(`integrity check: ${String(check).slice(0, 200)}`)
    db.exec(DDL)
    // A file of ours has exactly this table's columns; another app's SQLite file is not ours to write.
    const cols = (db.prepare('PRAGMA table_info(annotation)').all() as { name: string }[]).map((c) => c.name).join(',')
    if (cols !== 'bundle_hash,feature,label,notes,updated_at') throw new Error('its annotation table is not Feature Tracer\'s')
    return db
  } catch (e) {
    db.close()
    throw e
  }
}

export class LabelStore {
  private readonly db: Database.Database
  /** Set when the file at `path` could not be opened and was moved aside at start. */
  readonly movedAside: MovedAside | null = null

  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true })
    let db: Database.Database
    try {
      db = open(path)
    } catch (e) {
      if (!existsSync(path)) throw e
      const reason = `${pathText(path)} could not be opened (${(e as Error).message.slice(0, 200)})`
      const to = moveAside(path, 'unreadable', ['-wal', '-shm'])
      this.movedAside = { from: path, to, reason }
      db = open(path)
    }
    this.db = db
  }

  all(bundleHash: string): Map<number, Annotation> {
    const rows = this.db
      .prepare('SELECT feature, label, notes FROM annotation WHERE bundle_hash = ?')
      .all(bundleHash) as { feature: number; label: string; notes: string }[]
    return new Map(rows.map((r) => [r.feature, { label: r.label, notes: r.notes }]))
  }

  get(bundleHash: string, feature: number): Annotation {
    const row = this.db
      .prepare('SELECT label, notes FROM annotation WHERE bundle_hash = ? AND feature = ?')
      .get(bundleHash, feature) as Annotation | undefined
    return row ?? { label: '', notes: '' }
  }

  private upsert(bundleHash: string, feature: number, column: 'label' | 'notes', value: string): void {
    this.db
      .prepare(
        `INSERT INTO annotation (bundle_hash, feature, ${column}, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (bundle_hash, feature) DO UPDATE SET ${column} = excluded.${column}, updated_at = excluded.updated_at`,
      )
      .run(bundleHash, feature, value, new Date().toISOString())
  }

  setLabel(bundleHash: string, feature: number, label: string): void {
    this.upsert(bundleHash, feature, 'label', label)
  }

  setNotes(bundleHash: string, feature: number, notes: string): void {
    this.upsert(bundleHash, feature, 'notes', notes)
  }

  /**
   * Copies labels/notes from a session file into the store where the store has none, so restoring an
   * old session never overwrites newer work. Ids outside [0, dSae) are skipped. Runs in batches of one
   * transaction each, yielding between them, so a large import never holds up other requests.
   * Returns how many fields were copied and how many entries were skipped.
   */
  async importMissing(bundleHash: string, entries: Record<string, Annotation>, dSae: number): Promise<{ copied: number; skipped: number }> {
    const todo: Array<[number, Annotation]> = []
    let skipped = 0
    for (const [key, a] of Object.entries(entries)) {
      const feature = Number(key)
      if (!Number.isInteger(feature) || feature < 0 || feature >= dSae) skipped++
      else if (a.label || a.notes) todo.push([feature, a])
    }
    const get = this.db.prepare('SELECT label, notes FROM annotation WHERE bundle_hash = ? AND feature = ?')
    const put = this.db.prepare(
      `INSERT INTO annotation (bundle_hash, feature, label, notes, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (bundle_hash, feature) DO UPDATE SET label = excluded.label, notes = excluded.notes, updated_at = excluded.updated_at`,
    )
    const now = new Date().toISOString()
    // Each batch reads what the store has inside its own transaction, so a label typed between two
    // batches is seen and kept, and the count is exact.
    const batch = this.db.transaction((rows: Array<[number, Annotation]>) => {
      let n = 0
      for (const [feature, a] of rows) {
        const cur = (get.get(bundleHash, feature) as Annotation | undefined) ?? { label: '', notes: '' }
        const label = cur.label || a.label
        const notes = cur.notes || a.notes
        const changed = Number(label !== cur.label) + Number(notes !== cur.notes)
        if (changed) put.run(bundleHash, feature, label, notes, now)
        n += changed
      }
      return n
    })
    let copied = 0
    for (let i = 0; i < todo.length; i += IMPORT_BATCH) {
      if (i > 0) await new Promise((r) => setImmediate(r))
      copied += batch(todo.slice(i, i + IMPORT_BATCH))
    }
    return { copied, skipped }
  }

  close(): void {
    this.db.close()
  }
}
