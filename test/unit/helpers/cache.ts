// Shared by the cache, session and CLI tests: temp workbenches on the tiny bundle, waiting for builds,
// and a full dump of what the cache answers (to compare two builds byte for byte).
import { randomUUID } from 'node:crypto'
import { existsSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import type { JobDone, JobProgress } from '../../../common/contract'
import { unwrap } from '../../../main/app/dispatch'
import { createWorkbench, type Workbench, type WorkbenchOptions } from '../../../main/app/workbench'

export const TINY = 'test/fixtures/tiny'

export function tempDir(prefix = 'ft-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix))
}

export function tinyWorkbench(dir: string, opts: Partial<WorkbenchOptions> = {}): Workbench {
  return createWorkbench({ bundleDir: TINY, cachePath: join(dir, 'cache.sqlite'), userDataDir: join(dir, 'user'), ...opts })
}

export type BuildDone = Extract<JobDone, { kind: 'cache.build' }>

/** Starts a build (a job with an id of ours) and resolves with its job.done event; `onProgress` may cancel it. */
export async function build(wb: Workbench, opts: { rebuild?: boolean; full?: boolean; onProgress?: (p: JobProgress, jobId: string) => void } = {}): Promise<BuildDone> {
  const jobId = randomUUID()
  const done = new Promise<BuildDone>((resolve) => {
    const off = wb.subscribe((event, payload) => {
      if (event === 'job.progress' && (payload as JobProgress).jobId === jobId) opts.onProgress?.(payload as JobProgress, jobId)
      if (event === 'job.done' && (payload as JobDone).jobId === jobId) {
        off()
        resolve(payload as BuildDone)
      }
    })
  })
  unwrap(await wb.invoke('cache.build', { jobId, rebuild: opts.rebuild ?? false, full: opts.full ?? false }))
  return done
}

/** Every answer the cache gives for the tiny bundle, as one JSON string. */
export async function dumpAnswers(wb: Workbench): Promise<string> {
  const info = unwrap(await wb.invoke('bundle.info', {}))
  const out: unknown[] = []
  // Other binnings need the full table; the summary has the stored one.
  const full = unwrap(await wb.invoke('cache.status', {})).fullTable === true
  for (const includeBos of [false, true]) {
    out.push(unwrap(await wb.invoke('features.list', { includeBos })))
    for (let id = 0; id < info.sae.d_sae; id++) {
      out.push(unwrap(await wb.invoke('feature.get', { id, includeBos })))
      out.push(unwrap(await wb.invoke('feature.histogram', full ? { id, bins: 17, scale: 'log', includeBos } : { id, includeBos })))
    }
  }
  for (let t = 0; t < info.model.d_vocab; t += 7) out.push(unwrap(await wb.invoke('features.byToken', { tokenId: t, limit: 10_000 })))
  return JSON.stringify(out)
}

/** The bytes of every finalized table, in key order. */
export function dumpTables(path: string): string {
  const db = new Database(path, { readonly: true })
  try {
    const parts: string[] = []
    for (const [table, order] of [
      ['feature', 'id'],
      ['feature_nobos', 'id'],
      ['feature_acts', 'id'],
      ['token_index', 'token_id'],
    ]) {
      for (const row of db.prepare(`SELECT * FROM ${table} ORDER BY ${order}`).raw().iterate() as IterableIterator<unknown[]>) {
        parts.push(row.map((v) => (Buffer.isBuffer(v) ? v.toString('hex') : JSON.stringify(v))).join(','))
      }
    }
    return parts.join('\n')
  } finally {
    db.close()
  }
}

/** Chunks committed so far (0 while the file or its table does not exist yet). */
export function committedChunks(path: string): number {
  if (!existsSync(path)) return 0
  try {
    const db = new Database(path, { readonly: true })
    try {
      return (db.prepare('SELECT COUNT(*) AS n FROM chunk').get() as { n: number }).n
    } finally {
      db.close()
    }
  } catch {
    return 0
  }
}
