// Labels and notes a researcher writes, per bundle, in the user-data folder. Deliberately not in the
// activation cache: a cache can be deleted and rebuilt at any time, user work must never go with it.
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'

export interface Annotation {
  label: string
  notes: string
}

export class LabelStore {
  private readonly db: Database.Database

  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true })
    this.db = new Database(path)
    this.db.pragma('journal_mode = WAL')
    // FULL: a label the researcher just typed survives a power cut.
    this.db.pragma('synchronous = FULL')
    this.db.exec(`CREATE TABLE IF NOT EXISTS annotation (
      bundle_hash TEXT NOT NULL, feature INTEGER NOT NULL,
      label TEXT NOT NULL DEFAULT '', notes TEXT NOT NULL DEFAULT '', updated_at TEXT NOT NULL,
      PRIMARY KEY (bundle_hash, feature)) WITHOUT ROWID`)
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
   * old session never overwrites newer work. Returns how many fields were copied.
   */
  importMissing(bundleHash: string, entries: Record<string, Annotation>): number {
    let copied = 0
    this.db.transaction(() => {
      for (const [key, a] of Object.entries(entries)) {
        const feature = Number(key)
        if (!Number.isInteger(feature) || feature < 0) continue
        const have = this.get(bundleHash, feature)
        if (!have.label && a.label) {
          this.setLabel(bundleHash, feature, a.label)
          copied++
        }
        if (!have.notes && a.notes) {
          this.setNotes(bundleHash, feature, a.notes)
          copied++
        }
      }
    })()
    return copied
  }

  close(): void {
    this.db.close()
  }
}
