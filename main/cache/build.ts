// The build job's core, independent of processes: run the engine over the corpus chunk by chunk, commit
// each chunk on its own, then finalize (the summary answers from here on), then the logit step
// (logit-step.ts). A build that finds chunks already committed (after a kill, a crash or a cancel)
// continues after them, cutting the corpus the same way, so the result is identical; one that finds the
// summary committed and its logit effects pending runs only the logit step.
// A shard build (`shard`) computes only its contiguous slice of the chunks and stops before finalize;
// merge.ts gathers the shards' chunks into one file and finishes it with the same finishBuild.
import type Database from 'better-sqlite3'
import type { ComputeEngine } from '../compute/api'
import type { CacheProgress, ExecutionProviderName } from '../../common/contract'
import { FtError } from '../../common/errors'
import { encodeChunk } from './encode'
import { finalize, type FinalizeInput } from './finalize'
import type { LogitTable } from './logit-table'
import { completeBuild, logitsPending } from './logit-step'
import { PARTIAL_EVERY_MS, PartialSummary, type StoredChunk } from './partial'
import { hasFullTable, keyMismatch, keyToMeta, readMeta, wipe, writeMeta, type CacheKey } from './schema'

/** Sequences per chunk when the caller does not say; about 8k tokens per engine call on the demo. */
export const DEFAULT_CHUNK_TOKENS = 8192

export interface BuildInput {
  db: Database.Database
  engine: ComputeEngine
  key: CacheKey
  /** Token ids [nSeq, seqLen], flattened. */
  corpus: Int32Array
  vocabSize: number
  /** Discard whatever the file holds first. */
  rebuild?: boolean
  /**
   * Keep every firing (the full table) besides the summary. A finished summary cache asked for the full
   * table is built again (its scratch chunks are gone).
   */
  full?: boolean
  /** Sequences per engine call; ignored when resuming (the stored layout wins). */
  chunkSeqs?: number
  jobId?: string
  onProgress?: (p: CacheProgress) => void
  /** Computes every feature's logit effects for the logit step, after finalize (the build job runs it with ONNX Runtime). */
  logitTable?: () => Promise<LogitTable | null>
  /** Bounds finalize's memory (see FinalizeInput); the result does not depend on it. */
  maxEntriesPerPass?: number
  /** Test hook: pause after each committed chunk, so a test can kill the build mid-way. */
  pauseMsPerChunk?: number
  /** Compute only shard k of n (shardChunks) and leave the chunks for `cache merge`; no finalize. */
  shard?: Shard
  /**
   * Milliseconds between writes of the partial summary the feature views read during the build
   * (partial.ts; default PARTIAL_EVERY_MS, 0: after every chunk); null: none (a shard never writes one).
   * The first chunk computed and the last are always written; a write that takes t ms waits 40·t before
   * the next, so the writes cost the build under 2.5 % of its time.
   */
  partialEveryMs?: number | null
  /** Filled with where the compute phase spent its time (the benchmark's A/B of the partial summary). */
  profile?: BuildProfile
}

/** Milliseconds the compute phase spent per step, summed over the chunks it computed. */
export interface BuildProfile {
  /** engine.saeActs: the model, the SAE and the sparse rows. */
  engineMs: number
  /** encodeChunk: the chunk's blobs. */
  encodeMs: number
  /** PartialSummary.add: the running per-feature numbers. */
  partialAddMs: number
  /** The chunk's transaction, partial writes included. */
  commitMs: number
  /** PartialSummary.write, inside the commits. */
  partialWriteMs: number
  partialWrites: number
}

/** A profile with nothing counted yet. */
export function emptyProfile(): BuildProfile {
  return { engineMs: 0, encodeMs: 0, partialAddMs: 0, commitMs: 0, partialWriteMs: 0, partialWrites: 0 }
}

/** Shard k (0-based) of n: the k-th of n contiguous slices of the build's chunks. */
export interface Shard {
  k: number
  n: number
}

/** meta.shard's form, and the CLI's: "k/n". */
export function shardText(s: Shard): string {
  return `${s.k}/${s.n}`
}

/** "k/n" with integers 0 ≤ k < n; null for anything else. */
export function parseShard(text: string): Shard | null {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim())
  if (!m) return null
  const k = Number(m[1])
  const n = Number(m[2])
  return Number.isSafeInteger(k) && Number.isSafeInteger(n) && n >= 1 && k < n ? { k, n } : null
}

/** The chunk indices [lo, hi) of shard k/n: floor(k·nChunks/n) up to floor((k+1)·nChunks/n). */
export function shardChunks(nChunks: number, s: Shard): { lo: number; hi: number } {
  return { lo: Math.floor((s.k * nChunks) / s.n), hi: Math.floor(((s.k + 1) * nChunks) / s.n) }
}

/** Tokens in chunk `idx` of a layout (the last chunk may hold fewer sequences). */
export function chunkTokens(idx: number, nSeq: number, seqLen: number, chunkSeqs: number): number {
  return Math.max(0, Math.min(nSeq, (idx + 1) * chunkSeqs) - idx * chunkSeqs) * seqLen
}

/** A partial write waits this many times its own duration before the next (a cost under 2.5 %). */
const PARTIAL_BUDGET = 40

export function defaultChunkSeqs(seqLen: number): number {
  return Math.max(1, Math.floor(DEFAULT_CHUNK_TOKENS / seqLen))
}

/**
 * Resolves when the cache is complete, or (a shard) when the shard's chunks are all committed;
 * cancelling means ending the process that runs it.
 */
export async function runBuild(input: BuildInput): Promise<void> {
  const { db, engine, key, corpus, shard } = input
  const { nSeq, seqLen, dSae } = key
  let meta = readMeta(db)
  const wantsMore = meta.built_at !== undefined && input.full === true && !hasFullTable(meta) && !shard
  if (input.rebuild || wantsMore || keyMismatch(meta, key) !== null) {
    wipe(db)
    meta = {}
  }
  if (meta.built_at && shard) {
    // Its chunks are gone: there is nothing a merge could take from it.
    throw new FtError('invalid_request', 'this cache file is a finished cache, not a shard; build the shard into a file of its own (--cache) or pass --rebuild')
  }
  if (meta.built_at) {
    // Killed after the summary committed: what is left is the logit step.
    if (logitsPending(meta)) await completeBuild(db, input.logitTable, () => input.onProgress?.(stepProgress(input.jobId, 'logits', key)))
    return
  }

  const chunkSeqs = Number(meta.chunk_seqs ?? 0) || input.chunkSeqs || defaultChunkSeqs(seqLen)
  const nChunks = Math.ceil(nSeq / chunkSeqs)
  const { lo, hi } = shard ? shardChunks(nChunks, shard) : { lo: 0, hi: nChunks }
  writeMeta(db, { ...keyToMeta(key), chunk_seqs: String(chunkSeqs), n_chunks: String(nChunks), ...(shard ? { shard: shardText(shard) } : {}) })
  // A whole build on a shard's file completes it: from here on it is no longer one shard of several.
  if (!shard) db.prepare("DELETE FROM meta WHERE key = 'shard'").run()

  const done = new Set((db.prepare('SELECT idx FROM chunk').all() as { idx: number }[]).map((r) => r.idx))
  // A shard's progress counts its own slice: its tokens are the total.
  let totalTokens = 0
  for (let idx = lo; idx < hi; idx++) totalTokens += chunkTokens(idx, nSeq, seqLen, chunkSeqs)
  // OR REPLACE: another process building the same file computes the same bytes for a chunk.
  const insert = db.prepare('INSERT OR REPLACE INTO chunk (idx, n_tokens, nnz, row_ptr, feature_ids, vals) VALUES (?, ?, ?, ?, ?, ?)')
  const partialEvery = shard ? null : input.partialEveryMs === undefined ? PARTIAL_EVERY_MS : input.partialEveryMs
  const partial = partialEvery === null ? null : resumePartial(db, dSae, chunkSeqs * seqLen)
  const profile = input.profile
  const commit = db.transaction((idx: number, n: number, nnz: number, blobs: ReturnType<typeof encodeChunk>, writePartial: boolean) => {
    insert.run(idx, n, nnz, blobs.rowPtr, blobs.featureIds, blobs.values)
    if (writePartial && partial) {
      const w0 = performance.now()
      partial.write(db)
      if (profile) {
        profile.partialWriteMs += performance.now() - w0
        profile.partialWrites++
      }
    }
  })
  // When the next partial write is due: at least partialEvery after the last one, and PARTIAL_BUDGET times
  // as long as that write took, so writing it costs the build under 1/PARTIAL_BUDGET of its time however
  // many features there are (0 writes after every chunk, for tests).
  let nextPartial = -Infinity
  const jobId = input.jobId ?? ''
  let doneTokens = 0
  for (const idx of done) if (idx >= lo && idx < hi) doneTokens += chunkTokens(idx, nSeq, seqLen, chunkSeqs)
  const started = performance.now()
  let computedTokens = 0
  const report = (phase: CacheProgress['phase']): void => {
    const secs = (performance.now() - started) / 1000
    const rate = secs > 0 ? computedTokens / secs : 0
    input.onProgress?.({
      jobId,
      phase,
      doneTokens,
      totalTokens,
      tokensPerSec: rate,
      etaSec: phase !== 'compute' ? null : rate > 0 ? (totalTokens - doneTokens) / rate : null,
    })
  }
  report('compute')

  for (let idx = lo; idx < hi; idx++) {
    if (done.has(idx)) continue
    const s0 = idx * chunkSeqs
    const s1 = Math.min(nSeq, s0 + chunkSeqs)
    const tokens = corpus.subarray(s0 * seqLen, s1 * seqLen)
    const e0 = performance.now()
    const acts = await engine.saeActs(tokens, s1 - s0, seqLen)
    const e1 = performance.now()
    if (acts.nTokens !== tokens.length || acts.rowPtr.length !== tokens.length + 1) {
      throw new Error(`engine returned ${acts.nTokens} token rows for a chunk of ${tokens.length} tokens`)
    }
    const nnz = acts.rowPtr[acts.nTokens]
    const blobs = encodeChunk(acts.rowPtr, acts.featureIds.subarray(0, nnz), acts.values.subarray(0, nnz), dSae > 0xffff)
    const e2 = performance.now()
    partial?.add(s0 * seqLen, acts.rowPtr, acts.featureIds, acts.values)
    const now = performance.now()
    const writePartial = partial !== null && (now >= nextPartial || idx === hi - 1)
    commit(idx, tokens.length, nnz, blobs, writePartial)
    if (profile) {
      profile.engineMs += e1 - e0
      profile.encodeMs += e2 - e1
      profile.partialAddMs += now - e2
      profile.commitMs += performance.now() - now
    }
    if (writePartial && partialEvery) nextPartial = now + Math.max(partialEvery, PARTIAL_BUDGET * (performance.now() - now))
    doneTokens += tokens.length
    computedTokens += tokens.length
    report('compute')
    if (input.pauseMsPerChunk) await new Promise((r) => setTimeout(r, input.pauseMsPerChunk))
  }
  if (shard) {
    // The merge writes the provider its shards agree on.
    writeMeta(db, { provider: engine.provider })
    db.pragma('wal_checkpoint(TRUNCATE)')
    return
  }
  report('finalize')
  const logitStep = input.logitTable !== undefined
  finishBuild(db, { corpus, seqLen, chunkSeqs, dSae, vocabSize: input.vocabSize, logitStep, maxEntriesPerPass: input.maxEntriesPerPass, full: input.full }, engine.provider)
  await completeBuild(db, input.logitTable, () => report('logits'))
}

/** The progress of a step after the compute phase, whose tokens are all done. */
function stepProgress(jobId: string | undefined, phase: CacheProgress['phase'], key: CacheKey): CacheProgress {
  const total = key.nSeq * key.seqLen
  return { jobId: jobId ?? '', phase, doneTokens: total, totalTokens: total, tokensPerSec: 0, etaSec: null }
}

/**
 * The running partial summary of a build that starts or resumes: the committed chunks added again (one
 * pass; a table written before a kill may lag behind them), and written at once when there were any.
 */
function resumePartial(db: Database.Database, dSae: number, chunkTokens: number): PartialSummary {
  const partial = new PartialSummary(dSae)
  const rows = db.prepare('SELECT idx, row_ptr AS rowPtr, feature_ids AS featureIds, vals AS "values" FROM chunk ORDER BY idx').iterate()
  partial.addStored(rows as Iterable<StoredChunk>, chunkTokens, dSae > 0xffff)
  db.transaction(() => partial.write(db, true))()
  return partial
}

/**
 * The summary of every build, a single one or a merge of shards: finalize the committed chunks, record the
 * provider (null: unknown) and drop the shard mark. The cache answers from here on; completeBuild
 * (logit-step.ts) then stores the logit effects and gives the scratch chunks' pages back.
 */
export function finishBuild(db: Database.Database, input: FinalizeInput, provider: ExecutionProviderName | null): void {
  finalize(db, input)
  db.prepare("DELETE FROM meta WHERE key IN ('shard', 'provider')").run()
  if (provider) writeMeta(db, { provider })
}
