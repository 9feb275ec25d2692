// The build's last step: every feature's logit effects (logit-table.ts), written into the finished summary
// in a transaction of their own. They depend only on the weights, not on the corpus, and their product is
// the most expensive part of the end of a build (~810 GFLOP at gelu-1l's shape, over 10 s on a 2-core CPU),
// so finalize commits the summary without them, marked pending (meta.logit_effects), and the cache
// answers at once: a feature's effects come from the weights, per feature (query.ts), until they land.
// A build killed in between leaves a working cache; the next build of the same file runs only this step.
import type Database from 'better-sqlite3'
import { blobOf } from './encode'
import type { LogitTable } from './logit-table'
import { readMeta, type Meta } from './schema'

/** meta.logit_effects of a finished summary whose logit step has not run yet. */
export const LOGITS_PENDING = 'pending'

/** Is the finished summary still waiting for its stored logit effects? (No key: stored, or not computable.) */
export function logitsPending(meta: Meta): boolean {
  return meta.logit_effects === LOGITS_PENDING
}

/**
 * Stores every feature's effects (null: the hook has no linear path to the logits, and the columns stay
 * NULL) and clears the pending mark, in one transaction.
 */
export function storeLogits(db: Database.Database, t: LogitTable | null): void {
  const update = db.prepare('UPDATE feature SET logit_top_ids = ?, logit_top_vals = ?, logit_bottom_ids = ?, logit_bottom_vals = ? WHERE id = ?')
  db.transaction(() => {
    if (t) {
      const n = t.topIds.length / t.k
      const slice = <A extends Uint32Array | Float32Array>(a: A, f: number) => blobOf(a.subarray(f * t.k, (f + 1) * t.k))
      for (let f = 0; f < n; f++) update.run(slice(t.topIds, f), slice(t.topVals, f), slice(t.bottomIds, f), slice(t.bottomVals, f), f)
    }
    db.prepare("DELETE FROM meta WHERE key = 'logit_effects'").run()
  })()
}

/**
 * Runs the logit step if the finished summary waits for it (`compute` missing: stored as not computable),
 * then gives the scratch chunks' pages back (VACUUM; it also packs the rows the update grew), off the
 * critical path of the summary like the effects themselves. `onStart` is called before the effects are computed.
 */
export async function completeBuild(db: Database.Database, compute: (() => Promise<LogitTable | null>) | undefined, onStart?: () => void): Promise<void> {
  if (logitsPending(readMeta(db))) {
    onStart?.()
    storeLogits(db, compute ? await compute() : null)
  }
  // Outside any transaction, as SQLite wants.
  db.exec('VACUUM')
  db.pragma('wal_checkpoint(TRUNCATE)')
}
