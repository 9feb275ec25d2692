// Turns the committed chunks (token-major CSR, as the engine produced them) into the feature-major
// tables the queries read. It only reads the chunk table, so a finalize that is killed is simply run
// again: its writes are one transaction. The logit effects are not part of it: they come after, in a
// step of their own (logit-step.ts), as they depend only on the weights and cost more than the rest.
import type Database from 'better-sqlite3'
import { blobOf, decodeChunk, encodeIntervals, encodeQuantiles, encodeQuantised, encodeTokenDeltas, type ChunkBlobs } from './encode'
import { aggregateFeature, TokenPositions, TokenScratch, type FeatureAggregate } from './stats'
import { ACTS_U16, BOS_POSITIONS_KEY, FINAL_TABLES, NOBOS_TABLE, PARTIAL_TABLES, writeMeta } from './schema'
import { bosPositions, NoBosCorpus, withoutBos } from './bos'
import { TokenIndexBuilder } from './token-index'
import { LOGITS_PENDING } from './logit-step'

export interface FinalizeInput {
  corpus: Int32Array
  seqLen: number
  chunkSeqs: number
  dSae: number
  vocabSize: number
  /** A logit step follows (logit-step.ts): the summary is committed with its logit effects marked pending. */
  logitStep?: boolean
  /** Most firings transposed in memory at once (8 bytes each); larger corpora take several passes. */
  maxEntriesPerPass?: number
  /** Also store every firing (feature_acts); without it the cache is the summary alone (a fifth the size). */
  full?: boolean
}

interface ChunkRow extends ChunkBlobs {
  idx: number
  n_tokens: number
}

function forEachChunk(db: Database.Database, wideIds: boolean, fn: (row: ChunkRow, chunk: ReturnType<typeof decodeChunk>) => void): void {
  const rows = db
    .prepare('SELECT idx, n_tokens, row_ptr AS rowPtr, feature_ids AS featureIds, vals AS "values" FROM chunk ORDER BY idx')
    .iterate() as IterableIterator<ChunkRow>
  for (const row of rows) fn(row, decodeChunk(row, wideIds))
}

/** The columns `feature` and `feature_nobos` share, from one aggregate. */
function aggregateColumns(id: number, agg: FeatureAggregate) {
  const hist = agg.histogram
  const intervals = encodeIntervals(agg.intervals)
  const quantiles = encodeQuantiles(agg.quantiles)
  return {
    id,
    count: agg.count,
    max: agg.max,
    mean: agg.mean,
    topTokenId: agg.topTokenId,
    topTokenCount: agg.topTokenCount,
    precision: agg.precision,
    recall: agg.recall,
    f1: agg.f1,
    histLo: hist.edges[0] ?? null,
    histHi: hist.edges.at(-1) ?? null,
    histCounts: blobOf(Uint32Array.from(hist.counts)),
    intervalCounts: intervals.counts,
    intervalExamples: intervals.examples,
    topTokens: blobOf(agg.topTokens),
    topVals: blobOf(agg.topVals),
    quantileBounds: quantiles.bounds,
    quantileCounts: quantiles.counts,
    quantileExamples: quantiles.examples,
    belowTokens: blobOf(agg.below),
  }
}

const AGGREGATE_COLUMNS = `id, count, max, mean, top_token_id, top_token_count, precision, recall, f1,
  hist_lo, hist_hi, hist_counts, interval_counts, interval_examples, top_tokens, top_vals,
  quantile_bounds, quantile_counts, quantile_examples, below_tokens`
const AGGREGATE_VALUES = `@id, @count, @max, @mean, @topTokenId, @topTokenCount, @precision, @recall, @f1,
  @histLo, @histHi, @histCounts, @intervalCounts, @intervalExamples, @topTokens, @topVals,
  @quantileBounds, @quantileCounts, @quantileExamples, @belowTokens`

export function finalize(db: Database.Database, input: FinalizeInput): void {
  const { corpus, seqLen, chunkSeqs, dSae, vocabSize } = input
  const wideIds = dSae > 0xffff
  const budget = input.maxEntriesPerPass ?? 16_000_000
  const occurrences = new Uint32Array(vocabSize)
  for (let i = 0; i < corpus.length; i++) occurrences[corpus[i]]++

  // Pass 0: firings per feature, to size the transposition buffers.
  const perFeature = new Float64Array(dSae)
  forEachChunk(db, wideIds, (_row, c) => {
    for (let i = 0; i < c.featureIds.length; i++) perFeature[c.featureIds[i]]++
  })

  const insFeature = db.prepare(
    `INSERT INTO feature (${AGGREGATE_COLUMNS}) VALUES (${AGGREGATE_VALUES})`,
  )
  const insNoBos = db.prepare(`INSERT INTO ${NOBOS_TABLE} (${AGGREGATE_COLUMNS}) VALUES (${AGGREGATE_VALUES})`)
  const insActs = db.prepare('INSERT INTO feature_acts (id, token_deltas, vals) VALUES (?, ?, ?)')
  const insToken = db.prepare('INSERT INTO token_index (token_id, n_features, entries) VALUES (?, ?, ?)')
  const scratch = new TokenScratch(vocabSize)
  const positions = new TokenPositions(corpus, vocabSize)
  const tokenIndex = new TokenIndexBuilder(vocabSize)
  const chunkTokens = chunkSeqs * seqLen
  // Features that fire on BOS get a second row without those firings (bos.ts), the BOS-excluded numbers.
  const bos = bosPositions(corpus, seqLen)
  const noBos = bos.bos === null ? null : new NoBosCorpus(corpus, seqLen, vocabSize, bos.bos)

  db.transaction(() => {
    for (const t of [...FINAL_TABLES, NOBOS_TABLE]) db.exec(`DELETE FROM ${t}`)
    let lo = 0
    while (lo < dSae) {
      // The feature range [lo, hi) whose firings fit the budget (always at least one feature).
      let hi = lo
      let entries = 0
      while (hi < dSae && (hi === lo || entries + perFeature[hi] <= budget)) entries += perFeature[hi++]
      const offsets = new Uint32Array(hi - lo + 1)
      for (let f = lo; f < hi; f++) offsets[f - lo + 1] = offsets[f - lo] + perFeature[f]
      const fill = offsets.slice(0, hi - lo)
      const tokens = new Uint32Array(entries)
      const values = new Float32Array(entries)
      // Chunks come in corpus order, so each feature's firings land sorted by token index.
      forEachChunk(db, wideIds, (row, c) => {
        const base = row.idx * chunkTokens
        for (let r = 0; r < row.n_tokens; r++) {
          for (let j = c.rowPtr[r]; j < c.rowPtr[r + 1]; j++) {
            const f = c.featureIds[j]
            if (f < lo || f >= hi) continue
            const at = fill[f - lo]++
            tokens[at] = base + r
            values[at] = c.values[j]
          }
        }
      })
      for (let f = lo; f < hi; f++) {
        const acts = {
          tokens: tokens.subarray(offsets[f - lo], offsets[f - lo + 1]),
          values: values.subarray(offsets[f - lo], offsets[f - lo + 1]),
        }
        const agg = aggregateFeature(acts, corpus, occurrences, scratch, positions)
        insFeature.run(aggregateColumns(f, agg))
        // A feature whose top token is BOS's id counts that token's occurrences (recall, "below") differently
        // without the BOS positions, even when it never fires at one (e.g. only on a mid-sequence <|endoftext|>).
        const rest = noBos && (withoutBos(acts, corpus, seqLen, bos.bos) ?? (agg.topTokenId === bos.bos ? acts : null))
        if (rest) insNoBos.run(aggregateColumns(f, aggregateFeature(rest, noBos.corpus, noBos.occurrences, noBos.scratch, noBos.positions)))
        if (input.full) insActs.run(f, encodeTokenDeltas(acts.tokens), encodeQuantised(acts.values, agg.max))
        const p = agg.perToken
        for (let k = 0; k < p.tokenIds.length; k++) tokenIndex.add(p.tokenIds[k], f, p.counts[k], p.maxs[k], p.sums[k])
      }
      lo = hi
    }
    for (const [token, n, entries] of tokenIndex.blobs(perFeature)) insToken.run(token, n, entries)
    db.exec('DELETE FROM chunk')
    // The build's partial summary goes with the chunks: from here on the feature table answers.
    for (const t of PARTIAL_TABLES) db.exec(`DROP TABLE IF EXISTS ${t}`)
    db.prepare("DELETE FROM meta WHERE key IN ('partial_tokens', 'logit_effects')").run()
    writeMeta(db, {
      built_at: new Date().toISOString(),
      full_table: input.full ? '1' : '0',
      ...(input.full ? { acts_values: ACTS_U16 } : {}),
      [BOS_POSITIONS_KEY]: String(bos.count),
      ...(input.logitStep ? { logit_effects: LOGITS_PENDING } : {}),
    })
  })()
}
