// The activation cache's SQLite layout and its key. One file per bundle; it can always be rebuilt from
// the bundle, so it holds nothing a researcher typed (labels and notes live in main/session).
import { statSync } from 'node:fs'
import type Database from 'better-sqlite3'
import { openSqlite } from '../native/sqlite'

/** Bump when the layout or the meaning of a stored number changes; older caches are then stale. */
export const SCHEMA_VERSION = 1

const DDL = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- Scratch: the engine's CSR output per chunk of sequences, committed one chunk per transaction so a
-- killed build resumes from the last whole chunk. Emptied when the build is finalized.
CREATE TABLE IF NOT EXISTS chunk (
  idx INTEGER PRIMARY KEY, n_tokens INTEGER NOT NULL, nnz INTEGER NOT NULL,
  row_ptr BLOB NOT NULL, feature_ids BLOB NOT NULL, vals BLOB NOT NULL);
-- Per-feature aggregates over the whole corpus (written once, by finalize).
CREATE TABLE IF NOT EXISTS feature (
  id INTEGER PRIMARY KEY, count INTEGER NOT NULL, max REAL NOT NULL, mean REAL NOT NULL,
  top_token_id INTEGER, top_token_count INTEGER NOT NULL, precision REAL, recall REAL, f1 REAL,
  -- Histogram: HISTOGRAM_BINS linear bins over [hist_lo, hist_hi] (edges rebuilt by stats.histogramEdges).
  hist_lo REAL, hist_hi REAL, hist_counts BLOB NOT NULL,
  -- sae_vis intervals over (0, max]: firings per bin, and the examples (encode.ts).
  interval_counts BLOB NOT NULL, interval_examples BLOB NOT NULL,
  -- The TOP_K strongest firings: global token indices (u32) and activations (f32), strongest first.
  top_tokens BLOB NOT NULL, top_vals BLOB NOT NULL,
  -- sae_vis's quantile groups (stats.quantileGroups): lo and hi per group (f32 pairs), firings per group
  -- (u32), and the examples (token u32, value f32; min(QUANTILE_EXAMPLES, count) per group). Then the
  -- top token's occurrences where the feature does not fire (u32 token indices). NULL in older caches.
  quantile_bounds BLOB, quantile_counts BLOB, quantile_examples BLOB, below_tokens BLOB,
  -- Logit effects W_dec[f]·W_out·W_U: the LOGIT_K largest and smallest, token ids (u32) and values (f32);
  -- NULL when the hook has no linear path to the logits.
  logit_top_ids BLOB, logit_top_vals BLOB, logit_bottom_ids BLOB, logit_bottom_vals BLOB);
-- The same aggregates over each feature's non-BOS firings (bos.ts: a firing at position 0 of a sequence
-- whose first token is the corpus's BOS token), for the features that fire on BOS at least once or whose
-- top token is BOS's id (its occurrences differ without BOS); the others' numbers are those of \`feature\`. BOS positions are not corpus occurrences here (recall, below
-- examples), and density's denominator is the corpus less meta.bos_positions. No logit columns (they do
-- not depend on firings). Absent (no meta.bos_positions) in caches built before it: BOS is then included.
CREATE TABLE IF NOT EXISTS feature_nobos (
  id INTEGER PRIMARY KEY, count INTEGER NOT NULL, max REAL NOT NULL, mean REAL NOT NULL,
  top_token_id INTEGER, top_token_count INTEGER NOT NULL, precision REAL, recall REAL, f1 REAL,
  hist_lo REAL, hist_hi REAL, hist_counts BLOB NOT NULL, interval_counts BLOB NOT NULL, interval_examples BLOB NOT NULL,
  top_tokens BLOB NOT NULL, top_vals BLOB NOT NULL,
  quantile_bounds BLOB, quantile_counts BLOB, quantile_examples BLOB, below_tokens BLOB);
-- Every non-zero activation of a feature: varint token-index gaps and its values (16-bit fractions of
-- feature.max when meta.acts_values is 'u16-of-max', else fp32; encode.ts). Only in a
-- cache built with the full table (meta.full_table '1', or no such key: caches from before it existed);
-- a summary cache leaves it empty, and everything the feature views show comes from the rows above.
CREATE TABLE IF NOT EXISTS feature_acts (id INTEGER PRIMARY KEY, token_deltas BLOB NOT NULL, vals BLOB NOT NULL);
-- For "which features fire on token X": per token id, its features' firing count, max and sum (token-index.ts).
CREATE TABLE IF NOT EXISTS token_index (token_id INTEGER PRIMARY KEY, n_features INTEGER NOT NULL, entries BLOB NOT NULL);
`

/**
 * Scratch during a build (partial.ts), over the first meta.partial_tokens tokens committed: per feature that
 * fired so far its firings, max and sum, and apart (rewritten only when they change) its strongest firings
 * (u32 token indices, f32 values, in no order); what the feature views show until finalize, which drops them.
 */
export const PARTIAL_DDL = `
CREATE TABLE IF NOT EXISTS partial_feature (id INTEGER PRIMARY KEY, count INTEGER NOT NULL, max REAL NOT NULL, sum REAL NOT NULL);
CREATE TABLE IF NOT EXISTS partial_top (id INTEGER PRIMARY KEY, top_tokens BLOB NOT NULL, top_vals BLOB NOT NULL);
`

/** The tables finalize writes (everything a query reads); a finished cache has all of them. */
export const FINAL_TABLES = ['feature', 'feature_acts', 'token_index'] as const

/** Finalize's non-BOS aggregates: written with FINAL_TABLES, absent from caches built before it (bos.ts). */
export const NOBOS_TABLE = 'feature_nobos'

/** meta key: how many corpus positions are BOS positions (bos.ts); absent when the cache has no NOBOS_TABLE. */
export const BOS_POSITIONS_KEY = 'bos_positions'

/** A build's partial summary (partial.ts); finalize drops them. */
export const PARTIAL_TABLES = ['partial_feature', 'partial_top'] as const

/** meta.acts_values of a full table whose values are 16-bit fractions of the feature's max (encode.ts). */
export const ACTS_U16 = 'u16-of-max'

/** Does a finished cache hold the full table (feature_acts), or only the summary? */
export function hasFullTable(meta: Meta): boolean {
  return meta.full_table !== '0'
}

/** What a cache was built from; any difference makes it stale. */
export interface CacheKey {
  schemaVersion: number
  modelSha256: string
  saeSha256: string
  tokensSha256: string
  nSeq: number
  seqLen: number
  dSae: number
}

/** How the build is cut into chunks; part of the key of a partial build (a resume must cut the same way). */
export interface BuildLayout {
  chunkSeqs: number
  nChunks: number
}

export type Meta = Record<string, string>

/** meta.format of every cache this app writes; a build wipes no file without it (or the older key set). */
export const CACHE_FORMAT = 'feature-tracer-activation-cache'

/** Columns added to `feature` after its first layout: a file made before them gets them (NULL) on open. */
const ADDED_FEATURE_COLUMNS = ['quantile_bounds', 'quantile_counts', 'quantile_examples', 'below_tokens']

function addMissingColumns(db: Database.Database): void {
  const have = new Set((db.prepare('PRAGMA table_info(feature)').all() as { name: string }[]).map((c) => c.name))
  for (const c of ADDED_FEATURE_COLUMNS) if (!have.has(c)) db.exec(`ALTER TABLE feature ADD COLUMN ${c} BLOB`)
}

/** Opens (creating if needed) a cache for a build; callers check ownership first (inspectCacheFile). */
export function openCacheDb(path: string, opts: { readonly?: boolean } = {}): Database.Database {
  const db = openSqlite(path, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false })
  if (!opts.readonly) {
    db.pragma('journal_mode = WAL')
    // NORMAL in WAL mode still never corrupts the file; a power cut can lose the last chunk, which the
    // resume then recomputes.
    db.pragma('synchronous = NORMAL')
    db.exec(DDL)
    db.exec(PARTIAL_DDL)
    addMissingColumns(db)
  }
  db.pragma('cache_size = -65536')
  return db
}

export function readMeta(db: Database.Database): Meta {
  const hasMeta = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").get()
  if (!hasMeta) return {}
  const rows = db.prepare('SELECT key, value FROM meta').all() as { key: string; value: string }[]
  return Object.fromEntries(rows.map((r) => [r.key, r.value]))
}

export function writeMeta(db: Database.Database, entries: Meta): void {
  const put = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value')
  for (const [k, v] of Object.entries(entries)) put.run(k, v)
}

export function keyToMeta(key: CacheKey): Meta {
  return {
    format: CACHE_FORMAT,
    schema_version: String(key.schemaVersion),
    model_sha256: key.modelSha256,
    sae_sha256: key.saeSha256,
    tokens_sha256: key.tokensSha256,
    n_seq: String(key.nSeq),
    seq_len: String(key.seqLen),
    d_sae: String(key.dSae),
  }
}

/** Why a stored cache does not fit `key`, in words; null when it fits (or the cache is empty). */
export function keyMismatch(meta: Meta, key: CacheKey): string | null {
  if (Object.keys(meta).length === 0) return null
  const want = keyToMeta(key)
  const names: Record<string, string> = {
    schema_version: 'cache schema version',
    model_sha256: 'model.safetensors sha256',
    sae_sha256: 'sae.safetensors sha256',
    tokens_sha256: 'tokens.safetensors sha256',
    n_seq: 'corpus n_seq',
    seq_len: 'corpus seq_len',
    d_sae: 'SAE d_sae',
  }
  for (const [k, v] of Object.entries(want)) {
    // Caches written before meta.format existed are ours all the same (isOurMeta).
    if (k === 'format') continue
    if (meta[k] !== v) return `${names[k]} differs (cache: ${meta[k] ?? 'none'}, bundle: ${v})`
  }
  return null
}

/**
 * Drops and recreates every table (a rebuild, or a stale cache whose layout may be another version's);
 * the file and its connections stay valid.
 */
export function wipe(db: Database.Database): void {
  db.transaction(() => {
    for (const t of ['meta', ...FINAL_TABLES, NOBOS_TABLE, 'chunk', ...PARTIAL_TABLES]) db.exec(`DROP TABLE IF EXISTS ${t}`)
    db.exec(DDL)
    db.exec(PARTIAL_DDL)
  })()
}

/** Meta of a cache this app wrote: with its format tag, or (older builds) the full key set. */
export function isOurMeta(meta: Meta): boolean {
  if (meta.format !== undefined) return meta.format === CACHE_FORMAT
  return ['schema_version', 'model_sha256', 'sae_sha256', 'tokens_sha256', 'd_sae'].every((k) => typeof meta[k] === 'string')
}

export type CacheFileKind =
  | { kind: 'absent' }
  | { kind: 'empty' } // an SQLite file (or a zero-byte one) with no tables: nothing to lose
  | { kind: 'ours' }
  | { kind: 'foreign'; reason: string } // a readable SQLite file of someone else's: never touched
  | { kind: 'corrupt'; reason: string } // cannot be read as SQLite at all

/** Every table a file of ours holds (the partial summary's only during a build, or in files from before it). */
const CORE_TABLES = ['meta', 'chunk', ...FINAL_TABLES]
const OUR_TABLES = new Set<string>([...CORE_TABLES, NOBOS_TABLE, ...PARTIAL_TABLES])

/**
 * Why a readable SQLite file with these tables and meta is not this app's cache, or null when it is: ours
 * has our meta, or (a build killed between creating its tables and writing its meta) exactly our tables
 * and an empty meta. A file with only some of our table names and no meta is someone else's.
 */
export function foreignReason(tables: readonly string[], meta: Meta): string | null {
  const onlyOurs = tables.every((t) => OUR_TABLES.has(t))
  if (onlyOurs && Object.keys(meta).length > 0 && isOurMeta(meta)) return null
  if (onlyOurs && Object.keys(meta).length === 0 && CORE_TABLES.every((t) => tables.includes(t))) return null
  const shown = tables.slice(0, 5).map((t) => t.slice(0, 40)).join(', ')
  return `it is an SQLite database of another program (tables: ${shown}${tables.length > 5 ? ', …' : ''})`
}

export function tableNames(db: Database.Database): string[] {
  return (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name)
}

/** Why what is at `path` cannot be a cache file at all (a folder, a FIFO, a link to one), or null. */
export function notAFileReason(path: string): string | null {
  let st
  try {
    st = statSync(path)
  } catch {
    return null
  }
  return st.isFile() ? null : `it is ${st.isDirectory() ? 'a folder' : 'not a regular file'}, not a cache file`
}

/** What is at a cache path, read without writing a byte (a read-only connection, closed again). */
export function inspectCacheFile(path: string): CacheFileKind {
  const notAFile = notAFileReason(path)
  if (notAFile) return { kind: 'foreign', reason: notAFile }
  let db: Database.Database
  try {
    db = openSqlite(path, { readonly: true, fileMustExist: true })
  } catch (e) {
    const code = (e as { code?: string }).code
    if (code === 'SQLITE_CANTOPEN') return { kind: 'absent' }
    return { kind: 'corrupt', reason: sqliteReason(e) }
  }
  try {
    const tables = tableNames(db)
    if (tables.length === 0) return { kind: 'empty' }
    const reason = foreignReason(tables, readMeta(db))
    return reason ? { kind: 'foreign', reason } : { kind: 'ours' }
  } catch (e) {
    return { kind: 'corrupt', reason: sqliteReason(e) }
  } finally {
    db.close()
  }
}

/** SQLite's reason for a failure, in words that never quote the file. */
export function sqliteReason(e: unknown): string {
  const code = (e as { code?: string }).code ?? ''
  if (code === 'SQLITE_NOTADB') return 'it is not an SQLite database (truncated, overwritten, or another kind of file)'
  if (code.startsWith('SQLITE_CORRUPT')) return 'the SQLite file is damaged'
  if (code.startsWith('SQLITE_IOERR')) return 'it could not be read (I/O error)'
  if (code === 'SQLITE_CANTOPEN') return 'it cannot be opened'
  if (code.startsWith('SQLITE_')) return `SQLite reports ${code}`
  return e instanceof Error ? e.message.slice(0, 200) : String(e).slice(0, 200)
}

/** True for errors that mean the file's content cannot be trusted (rather than a bug of ours). */
export function isCorruptionError(e: unknown): boolean {
  const code = (e as { code?: string }).code ?? ''
  return code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT') || code.startsWith('SQLITE_IOERR') || code === 'SQLITE_CANTOPEN' || code === 'SQLITE_ERROR'
}
