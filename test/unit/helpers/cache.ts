// Shared by the cache, session and CLI tests: temp workbenches on the tiny bundle, waiting for builds,
// and a full dump of what the cache answers (to compare two builds byte for byte).
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import type { Events } from '../../../common/contract'
import { unwrap } from '../../../main/app/dispatch'
import { createWorkbench, type Workbench, type WorkbenchOptions } from '../../../main/app/workbench'

export const TINY = 'test/fixtures/tiny'

export function tempDir(prefix = 'ft-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix))
}

export function tinyWorkbench(dir: string, opts: Partial<WorkbenchOptions> = {}): Workbench {
  return createWorkbench({ bundleDir: TINY, cachePath: join(dir, 'cache.sqlite'), userDataDir: join(dir, 'user'), ...opts })
}

/** Starts a build and resolves with its cache.done event; `onProgress` may cancel it. */
export async function build(
  wb: Workbench,
  opts: { rebuild?: boolean; onProgress?: (p: Events['cache.progress'], jobId: string) => void } = {},
): Promise<Events['cache.done']> {
  let jobId = ''
  const done = new Promise<Events['cache.done']>((resolve) => {
    const off = wb.subscribe((event, payload) => {
      if (event === 'cache.progress') opts.onProgress?.(payload as Events['cache.progress'], jobId)
      if (event === 'cache.done') {
        off()
        resolve(payload as Events['cache.done'])
      }
    })
  })
  jobId = unwrap(await wb.invoke('cache.build', { rebuild: opts.rebuild ?? false })).jobId
  return done
}

/** Every answer the cache gives for the tiny bundle, as one JSON string. */
export async function dumpAnswers(wb: Workbench): Promise<string> {
  const info = unwrap(await wb.invoke('bundle.info', {}))
  const out: unknown[] = [unwrap(await wb.invoke('features.list', {}))]
  for (let id = 0; id < info.sae.d_sae; id++) {
    out.push(unwrap(await wb.invoke('feature.get', { id })))
    out.push(unwrap(await wb.invoke('feature.histogram', { id, bins: 17, scale: 'log' })))
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
