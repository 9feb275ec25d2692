// `feature-tracer cache merge`: the shards of a sharded build (build.ts, BuildInput.shard) each hold a slice
// of the scratch chunks; the merge copies them into one file and finishes it with the same finishBuild as a
// single build, so the result answers every query exactly as one build would. Every shard is checked
// first (ours, this bundle's key, one layout, every chunk present, overlaps byte-identical), and the summary
// is written beside OUT and renamed over it only when complete; the logit step (logit-step.ts) then runs on
// OUT, as in a build: killed there, OUT answers all the same, and `cache build` on it finishes the step.
import { randomBytes } from 'node:crypto'
import { existsSync, realpathSync, renameSync, rmSync, statSync } from 'node:fs'
import { resolve } from 'node:path'
import type Database from 'better-sqlite3'
import type { ExecutionProviderName } from '../../common/contract'
import { FtError } from '../../common/errors'
import { pathText } from '../../common/text'
import type { Bundle } from '../bundle'
import { chunkTokens, finishBuild, parseShard, shardChunks, shardText } from './build'
import { cacheKeyOf, logitWeightsOf } from './bundle-link'
import { computeLogitTable, type LogitTable } from './logit-table'
import { completeBuild } from './logit-step'
import { inspectCacheFile, keyMismatch, keyToMeta, openCacheDb, readMeta, writeMeta, type CacheKey, type Meta } from './schema'

export interface MergeInput {
  /** The merged cache: absent, empty, or a cache of ours (replaced); never another program's file. */
  out: string
  shards: string[]
  key: CacheKey
  /** Token ids [nSeq, seqLen], flattened (finalize reads the tokens). */
  corpus: Int32Array
  vocabSize: number
  /** Keep the full table of every firing (BuildInput.full). */
  full?: boolean
  logitTable?: () => Promise<LogitTable | null>
  /** Bounds finalize's memory (FinalizeInput); the result does not depend on it. */
  maxEntriesPerPass?: number
  /** One line per step, for a terminal. */
  onStep?: (text: string) => void
}

export interface MergeResult {
  nChunks: number
  /** Chunks found in more than one shard (each checked byte for byte). */
  duplicates: number
  /** The provider every shard ran on; null when they differ or do not say. */
  provider: ExecutionProviderName | null
  sizeBytes: number
}

interface ShardFile {
  path: string
  db: Database.Database
  meta: Meta
  /** Its chunk indices, ascending. */
  idx: number[]
}

const CHUNK_COLUMNS = ['n_tokens', 'nnz', 'row_ptr', 'feature_ids', 'vals'] as const
type ChunkRow = { idx: number } & Record<(typeof CHUNK_COLUMNS)[number], number | Buffer>

/** Merges the shards of a build of `bundle` into `out` (the CLI's `cache merge`). */
export async function mergeShardsOf(bundle: Bundle, out: string, shards: string[], opts: Pick<MergeInput, 'full' | 'onStep' | 'maxEntriesPerPass'> = {}): Promise<MergeResult> {
  return mergeShards({
    out,
    shards,
    key: cacheKeyOf(bundle),
    corpus: bundle.tokens.data,
    vocabSize: bundle.config.model.d_vocab,
    ...opts,
    // The same logit table as the build job's (job.ts).
    logitTable: async () => {
      const weights = logitWeightsOf(bundle)
      return weights ? computeLogitTable(weights) : null
    },
  })
}

export async function mergeShards(input: MergeInput): Promise<MergeResult> {
  const { key } = input
  const out = resolve(input.out)
  if (input.shards.length === 0) throw new FtError('invalid_request', 'cache merge needs at least one shard file')
  const outFile = inspectCacheFile(out)
  if (outFile.kind === 'foreign' || outFile.kind === 'corrupt') {
    throw new FtError(
      outFile.kind === 'foreign' ? 'cache_foreign' : 'cache_corrupt',
      `${pathText(out)} is not a Feature Tracer cache: ${outFile.reason}. It was left as it is; choose another output file`,
    )
  }
  // SQLite would replay a WAL lying beside an absent file into the new one.
  if (outFile.kind === 'absent' && existsSync(`${out}-wal`)) {
    throw new FtError('invalid_request', `${pathText(`${out}-wal`)} is left from another database; move it away or choose another output file`)
  }
  if (input.shards.some((s) => samePath(s, out))) throw new FtError('invalid_request', `the output ${pathText(out)} is one of the shards; merge into a new file`)

  const shards: ShardFile[] = []
  let merged: Omit<MergeResult, 'sizeBytes'>
  try {
    for (const path of input.shards) shards.push(openShard(path, key))
    const { chunkSeqs, nChunks } = layoutOf(shards, key)
    input.onStep?.(`merge: ${shards.length} shard(s) of ${nChunks} chunks (${chunkSeqs} sequences each) checked`)
    checkCoverage(shards, nChunks)

    const tmp = `${out}.merge-${randomBytes(6).toString('hex')}`
    const db = openCacheDb(tmp)
    let renamed = false
    try {
      writeMeta(db, { ...keyToMeta(key), chunk_seqs: String(chunkSeqs), n_chunks: String(nChunks) })
      let t0 = performance.now()
      const duplicates = copyChunks(db, shards)
      input.onStep?.(`merge: chunks copied in ${seconds(t0)}${duplicates ? ` (${duplicates} found in two shards, identical)` : ''}`)
      const providers = new Set(shards.map((s) => s.meta.provider))
      const provider = providers.size === 1 ? ((shards[0].meta.provider as ExecutionProviderName | undefined) ?? null) : null
      t0 = performance.now()
      const logitStep = input.logitTable !== undefined
      finishBuild(
        db,
        { corpus: input.corpus, seqLen: key.seqLen, chunkSeqs, dSae: key.dSae, vocabSize: input.vocabSize, logitStep, maxEntriesPerPass: input.maxEntriesPerPass, full: input.full },
        provider,
      )
      // The whole summary goes to OUT in one file: the WAL (the finalize transaction) folded in first.
      db.pragma('wal_checkpoint(TRUNCATE)')
      input.onStep?.(`merge: finalized in ${seconds(t0)}${logitStep ? '; the summary answers, its logit effects come next' : ''}`)
      db.close()
      // A WAL left by the cache this replaces would be read as part of the new file.
      if (outFile.kind !== 'absent') for (const side of ['-wal', '-shm']) rmSync(`${out}${side}`, { force: true })
      renameSync(tmp, out)
      renamed = true
      merged = { nChunks, duplicates, provider }
    } finally {
      if (db.open) db.close()
      if (!renamed) for (const side of ['', '-wal', '-shm']) rmSync(`${tmp}${side}`, { force: true })
    }
  } finally {
    for (const s of shards) s.db.close()
  }
  const db = openCacheDb(out)
  try {
    const t0 = performance.now()
    await completeBuild(db, input.logitTable, () => input.onStep?.('merge: computing the logit effects…'))
    input.onStep?.(`merge: logit effects stored and the file compacted in ${seconds(t0)}`)
  } finally {
    db.close()
  }
  return { ...merged, sizeBytes: statSync(out).size }
}

function seconds(since: number): string {
  return `${((performance.now() - since) / 1000).toFixed(1)} s`
}

/** Do two paths name one file (through links too)? */
function samePath(a: string, b: string): boolean {
  const real = (p: string): string => {
    try {
      return realpathSync(p)
    } catch {
      return resolve(p)
    }
  }
  return real(a) === real(b)
}

function openShard(path: string, key: CacheKey): ShardFile {
  const name = pathText(path)
  const file = inspectCacheFile(path)
  if (file.kind === 'absent') throw new FtError('not_found', `the shard ${name} does not exist`)
  if (file.kind === 'foreign' || file.kind === 'corrupt') throw new FtError(file.kind === 'foreign' ? 'cache_foreign' : 'cache_corrupt', `the shard ${name} is not a Feature Tracer cache: ${file.reason}`)
  const db = openCacheDb(path, { readonly: true })
  try {
    const meta = readMeta(db)
    if (file.kind === 'empty' || Object.keys(meta).length === 0) throw new FtError('cache_missing', `the shard ${name} holds nothing yet; build it first`)
    const mismatch = keyMismatch(meta, key)
    if (mismatch) throw new FtError('cache_stale', `the shard ${name} was built for another bundle: ${mismatch}`)
    if (meta.built_at) throw new FtError('invalid_request', `${name} is a finished cache, not a shard (a finished cache keeps no chunks to merge)`)
    const idx = (db.prepare('SELECT idx FROM chunk ORDER BY idx').all() as { idx: number }[]).map((r) => r.idx)
    return { path, db, meta, idx }
  } catch (e) {
    db.close()
    throw e
  }
}

/** The chunk layout every shard shares (a resume keeps the first one, so shards must agree). */
function layoutOf(shards: ShardFile[], key: CacheKey): { chunkSeqs: number; nChunks: number } {
  const first = shards[0].meta
  for (const s of shards) {
    if (s.meta.chunk_seqs !== first.chunk_seqs || s.meta.n_chunks !== first.n_chunks) {
      throw new FtError(
        'invalid_request',
        `the shards were cut differently: ${pathText(shards[0].path)} has ${first.chunk_seqs} sequences per chunk (${first.n_chunks} chunks), ` +
          `${pathText(s.path)} ${s.meta.chunk_seqs} (${s.meta.n_chunks}); build every shard with the same FEATURE_TRACER_CHUNK_SEQS`,
      )
    }
  }
  const chunkSeqs = Number(first.chunk_seqs)
  const nChunks = Number(first.n_chunks)
  if (!Number.isInteger(chunkSeqs) || chunkSeqs < 1 || nChunks !== Math.ceil(key.nSeq / chunkSeqs)) {
    throw new FtError('cache_corrupt', `the shard ${pathText(shards[0].path)} records a chunk layout that does not fit the corpus`)
  }
  return { chunkSeqs, nChunks }
}

/** Throws, naming the missing chunk ranges and the shards that should hold them, unless every chunk is there. */
function checkCoverage(shards: ShardFile[], nChunks: number): void {
  const have = new Uint8Array(nChunks)
  for (const s of shards) {
    for (const i of s.idx) {
      if (i < 0 || i >= nChunks) throw new FtError('cache_corrupt', `the shard ${pathText(s.path)} holds chunk ${i}, outside the layout's ${nChunks} chunks`)
      have[i] = 1
    }
  }
  // Whose slice a missing chunk is in, when the shards agree on how many there are.
  const counts = new Set(shards.map((s) => (s.meta.shard ? parseShard(s.meta.shard)?.n : undefined)))
  const n = counts.size === 1 ? [...counts][0] : undefined
  const ownerOf = (i: number): string => {
    if (n === undefined) return ''
    for (let k = 0; k < n; k++) {
      const { lo, hi } = shardChunks(nChunks, { k, n })
      if (i >= lo && i < hi) return shardText({ k, n })
    }
    return ''
  }
  const ranges: string[] = []
  for (let i = 0; i < nChunks; ) {
    if (have[i]) {
      i++
      continue
    }
    const owner = ownerOf(i)
    let j = i + 1
    while (j < nChunks && !have[j] && ownerOf(j) === owner) j++
    ranges.push(`${j - i > 1 ? `${i}–${j - 1}` : i}${owner ? ` (shard ${owner})` : ''}`)
    i = j
  }
  if (ranges.length === 0) return
  const shown = ranges.length > 12 ? [...ranges.slice(0, 12), `… ${ranges.length - 12} more ranges`] : ranges
  throw new FtError(
    'cache_missing',
    `the shards lack chunks ${shown.join(', ')} of ${nChunks}: build the missing shards (feature-tracer cache build --shard k/N; a killed one resumes) and merge again`,
  )
}

/** Copies every shard's chunks into `db`; a chunk already copied must be byte-identical. Returns how many were. */
function copyChunks(db: Database.Database, shards: ShardFile[]): number {
  const insert = db.prepare('INSERT INTO chunk (idx, n_tokens, nnz, row_ptr, feature_ids, vals) VALUES (@idx, @n_tokens, @nnz, @row_ptr, @feature_ids, @vals)')
  const existing = db.prepare('SELECT idx, n_tokens, nnz, row_ptr, feature_ids, vals FROM chunk WHERE idx = ?')
  const seqLen = Number(shards[0].meta.seq_len)
  const nSeq = Number(shards[0].meta.n_seq)
  const chunkSeqs = Number(shards[0].meta.chunk_seqs)
  let duplicates = 0
  for (const s of shards) {
    const rows = s.db.prepare('SELECT idx, n_tokens, nnz, row_ptr, feature_ids, vals FROM chunk ORDER BY idx').iterate() as IterableIterator<ChunkRow>
    // A commit per chunk, as in a build, keeps the WAL small; a failed merge leaves only its temp file, removed.
    for (const row of rows) {
      if (row.n_tokens !== chunkTokens(row.idx, nSeq, seqLen, chunkSeqs)) {
        throw new FtError('cache_corrupt', `the shard ${pathText(s.path)} holds a chunk ${row.idx} of ${row.n_tokens} tokens, not the layout's ${chunkTokens(row.idx, nSeq, seqLen, chunkSeqs)}`)
      }
      const prior = existing.get(row.idx) as ChunkRow | undefined
      if (!prior) {
        insert.run(row)
        continue
      }
      duplicates++
      const same = CHUNK_COLUMNS.every((c) => {
        const a = prior[c]
        const b = row[c]
        return Buffer.isBuffer(a) && Buffer.isBuffer(b) ? a.equals(b) : a === b
      })
      if (!same) {
        throw new FtError(
          'invalid_request',
          `chunk ${row.idx} differs between two shards (the second: ${pathText(s.path)}); were they computed on different execution providers or versions? Rebuild one of them`,
        )
      }
    }
  }
  return duplicates
}
