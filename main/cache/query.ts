// Read side of the activation cache: state, and the per-feature answers the IPC handlers return. All
// of it reads precomputed rows or one feature's blob, so a query costs milliseconds.
import { existsSync, statSync } from 'node:fs'
import type {
  CacheState,
  ExecutionProviderName,
  FeatureBos,
  FeatureDetail,
  FeatureSummary,
  Histogram,
  IntervalBin,
  LogitEffect,
  PartialCoverage,
  TokenFeature,
} from '../../common/contract'
import { FtError } from '../../common/errors'
import { decodeFeatureActs, decodeIntervals, decodeQuantiles, float32Of, uint32Of, type FeatureActs } from './encode'
import { topLogitEffects, type LogitWeights } from './logits'
import { logitsPending } from './logit-step'
import { activationRow, type CorpusView } from '../bundle/corpus'
import { checkFeatureId } from '../bundle/feature-id'
import { tokenText } from '../../common/text'
import { ACTS_U16, BOS_POSITIONS_KEY, FINAL_TABLES, NOBOS_TABLE, PARTIAL_TABLES, foreignReason, hasFullTable, isCorruptionError, notAFileReason, keyMismatch, readMeta, sqliteReason, tableNames, type CacheKey } from './schema'
import type Database from 'better-sqlite3'
import { openSqlite } from '../native/sqlite'
import { pathText } from '../../common/text'
import { HISTOGRAM_BINS, INTERVAL_EXAMPLES, intervalRange, QUANTILE_EXAMPLES } from './stats'
import { histogram, histogramEdges } from '../trace/histogram'
import { decodeTokenEntries } from './token-index'
import { degenerateFlags, positionZeroToken } from './degenerate'
import { parseShard, shardChunks, shardText } from './build'
import { isBosPosition, type BosChoice } from './bos'

export interface CacheReaderInput {
  path: string
  key: CacheKey
  view: CorpusView
  logitWeights: LogitWeights | null
  /** The corpus's BOS token for the degenerate flags (positionZeroToken); found from the corpus when absent. */
  bosTokenId?: number | null
}

type Annotations = (id: number) => { label: string; notes: string }
const noAnnotations: Annotations = () => ({ label: '', notes: '' })

interface FeatureRow {
  id: number
  count: number
  max: number
  mean: number
  top_token_id: number | null
  precision: number | null
  recall: number | null
  f1: number | null
}

/** The binary columns of a feature row (schema.ts). */
interface StoredShapes {
  hist_lo: number | null
  hist_hi: number | null
  hist_counts: Buffer
  interval_counts: Buffer
  interval_examples: Buffer
  top_tokens: Buffer
  top_vals: Buffer
  /** Absent in caches built before them (schema.ts). */
  quantile_bounds?: Buffer | null
  quantile_counts?: Buffer | null
  quantile_examples?: Buffer | null
  below_tokens?: Buffer | null
  logit_top_ids: Buffer | null
  logit_top_vals: Buffer | null
  logit_bottom_ids: Buffer | null
  logit_bottom_vals: Buffer | null
}

/** How a finished cache answers a choice: which table's rows, and density's denominator. */
interface BosView {
  bos: FeatureBos
  /** Read feature_nobos rows (falling back to `feature` for features without BOS firings). */
  noBos: boolean
  /** Tokens density is over: the corpus, less its BOS positions when they are excluded. */
  tokens: number
}

type LogitShapes = Pick<StoredShapes, 'logit_top_ids' | 'logit_top_vals' | 'logit_bottom_ids' | 'logit_bottom_vals'>
/** A partial summary stores no logit effects: they come from the weights when the reader has them. */
const NO_LOGITS: LogitShapes = { logit_top_ids: null, logit_top_vals: null, logit_bottom_ids: null, logit_bottom_vals: null }

export class CacheReader {
  private db: Database.Database | null = null
  /** meta.built_at of the finished cache whose feature table was checked on this connection. */
  private verifiedBuiltAt: string | null = null
  private readonly logitMemo = new Map<number, { top: LogitEffect[]; bottom: LogitEffect[] }>()

  constructor(private readonly input: CacheReaderInput) {}

  get path(): string {
    return this.input.path
  }

  /**
   * A read-only connection: the reader never writes a byte (a foreign or damaged file at the cache path is
   * left exactly as it is; only a build, after checking ownership, writes).
   */
  private connection(): Database.Database | null {
    if (this.db) return this.db
    if (!existsSync(this.input.path)) return null
    const db = openSqlite(this.input.path, { readonly: true, fileMustExist: true })
    db.pragma('cache_size = -65536')
    this.db = db
    return db
  }

  /** Drop the connection (before a rebuild replaces the content, a file is moved aside, or on close). */
  close(): void {
    this.db?.close()
    this.db = null
    this.verifiedBuiltAt = null
  }

  /** Never throws: a file that cannot be read is the state 'corrupt', with the reason. */
  status(): Omit<CacheState, 'job'> {
    const { path, key } = this.input
    const totalTokens = key.nSeq * key.seqLen
    const base = { path, totalTokens, doneTokens: 0, sizeBytes: sizeOf(path) }
    const notAFile = notAFileReason(path)
    if (notAFile) return { ...base, state: 'foreign', reason: notAFile }
    try {
      const db = this.connection()
      if (!db) return { ...base, state: 'missing' }
      return { ...base, ...this.stateOf(db, totalTokens) }
    } catch (e) {
      this.close()
      return { ...base, state: 'corrupt', reason: sqliteReason(e) }
    }
  }

  private stateOf(db: Database.Database, totalTokens: number): Pick<CacheState, 'state' | 'reason' | 'doneTokens' | 'builtAt' | 'fullTable' | 'logitsPending'> {
    const tables = tableNames(db)
    const meta = readMeta(db)
    const foreign = foreignReason(tables, meta)
    if (foreign) return { state: 'foreign', doneTokens: 0, reason: `${foreign}; it is left as it is` }
    if (Object.keys(meta).length === 0) return { state: 'missing', doneTokens: 0 }
    const reason = keyMismatch(meta, this.input.key)
    if (reason) return { state: 'stale', doneTokens: 0, reason }
    if (meta.built_at) {
      const damage = this.verifiedBuiltAt === meta.built_at ? null : this.completenessProblem(db, tables)
      if (damage) return { state: 'corrupt', doneTokens: 0, reason: damage }
      this.verifiedBuiltAt = meta.built_at
      return { state: 'ready', doneTokens: totalTokens, builtAt: meta.built_at, fullTable: hasFullTable(meta), ...(logitsPending(meta) ? { logitsPending: true } : {}) }
    }
    const done = db.prepare('SELECT COALESCE(SUM(n_tokens), 0) AS n FROM chunk').get() as { n: number }
    const shard = meta.shard === undefined ? null : parseShard(meta.shard)
    if (shard) {
      const { lo, hi } = shardChunks(Number(meta.n_chunks), shard)
      const reason = `it is shard ${shardText(shard)} of a sharded build (chunks ${lo}–${hi - 1} of ${meta.n_chunks}); build every shard, then join them with feature-tracer cache merge OUT SHARD…`
      return { state: 'partial', doneTokens: done.n, reason }
    }
    return { state: done.n > 0 ? 'partial' : 'missing', doneTokens: done.n }
  }

  /** Why a cache that says it is finished cannot be, or null: every final table, one feature row per feature. */
  private completenessProblem(db: Database.Database, tables: string[]): string | null {
    const missing = FINAL_TABLES.filter((t) => !tables.includes(t))
    if (missing.length) return `it says it is complete but lacks the table ${missing.join(', ')}`
    const { dSae } = this.input.key
    const f = db.prepare('SELECT COUNT(*) AS n, MIN(id) AS lo, MAX(id) AS hi FROM feature').get() as { n: number; lo: number | null; hi: number | null }
    if (f.n !== dSae || (dSae > 0 && (f.lo !== 0 || f.hi !== dSae - 1))) return `it says it is complete but holds ${f.n} of the SAE's ${dSae} features`
    return null
  }

  /** The execution provider the finished cache was built on, if it is known. */
  builtWith(): ExecutionProviderName | null {
    try {
      const db = this.connection()
      const provider = db ? readMeta(db).provider : undefined
      return (provider as ExecutionProviderName | undefined) ?? null
    } catch {
      return null
    }
  }

  /** Runs a query; SQLite's word that the file is damaged becomes cache_corrupt, with what to do. */
  private guard<T>(query: () => T): T {
    try {
      return query()
    } catch (e) {
      // A RangeError is a stored blob that does not decode: damaged content, like SQLite's own codes.
      if (e instanceof FtError || !(isCorruptionError(e) || e instanceof RangeError)) throw e
      this.close()
      throw this.corrupt(sqliteReason(e))
    }
  }

  private corrupt(reason: string): FtError {
    return new FtError('cache_corrupt', `the activation cache ${pathText(this.input.path)} is damaged (${reason}); rebuild it (the damaged file is moved aside, not deleted)`)
  }

  private ready(): Database.Database {
    const s = this.status()
    if (s.state === 'corrupt') throw this.corrupt(s.reason ?? 'unreadable')
    if (s.state === 'foreign') {
      throw new FtError('cache_foreign', `${pathText(s.path)} is not a Feature Tracer cache (${s.reason}); choose another cache file`)
    }
    if (s.state === 'stale') throw new FtError('cache_stale', `the activation cache ${s.path} is stale: ${s.reason}; rebuild it`)
    if (s.state !== 'ready') {
      const progress = s.state === 'partial' ? ` (${s.doneTokens} of ${s.totalTokens} tokens done)` : ''
      throw new FtError('cache_missing', `the activation cache ${s.path} is not built${progress}; build it first`)
    }
    return this.db as Database.Database
  }

  private bosToken: number | null | undefined
  private bos(): number | null {
    if (this.bosToken === undefined) this.bosToken = this.input.bosTokenId !== undefined ? this.input.bosTokenId : positionZeroToken(this.input.view)
    return this.bosToken
  }

  private checkId(id: number): void {
    checkFeatureId(id, this.input.key.dSae)
  }

  /**
   * A feature's row as the browser shows it: `row`'s numbers, density over `tokens`; the degenerate flags
   * from `all`, the feature's row over every firing (a BOS-only feature stays flagged with BOS excluded).
   */
  private summary(row: FeatureRow, annotate: Annotations, all: FeatureRow = row, tokens = this.corpusTokens()): FeatureSummary {
    const display = this.input.view.display
    const allDensity = all.count / this.corpusTokens()
    return {
      id: row.id,
      density: tokens > 0 ? row.count / tokens : 0,
      count: row.count,
      max: row.max,
      mean: row.mean,
      topTokenId: row.top_token_id,
      topToken: row.top_token_id === null ? null : tokenText(display, row.top_token_id),
      precision: row.precision,
      recall: row.recall,
      f1: row.f1,
      flags: degenerateFlags({ count: all.count, density: allDensity, max: all.max, mean: all.mean, topTokenId: all.top_token_id, precision: all.precision }, this.bos()),
      ...annotate(row.id),
    }
  }

  private corpusTokens(): number {
    return this.input.key.nSeq * this.input.key.seqLen
  }

  /**
   * What a finished cache's numbers count when `choice` is asked: caches built before the non-BOS rows
   * (no meta.bos_positions) can only include BOS.
   */
  private bosView(db: Database.Database, choice: BosChoice): BosView {
    const all = this.corpusTokens()
    const stored = readMeta(db)[BOS_POSITIONS_KEY]
    if (stored === undefined || !tableNames(db).includes(NOBOS_TABLE)) return { bos: 'not_separable', noBos: false, tokens: all }
    const n = Number(stored)
    if (!Number.isInteger(n) || n < 0 || n > this.input.key.nSeq) throw this.corrupt('the stored number of BOS positions does not fit the corpus')
    if (n === 0) return { bos: 'no_bos', noBos: false, tokens: all }
    return choice === 'included' ? { bos: 'included', noBos: false, tokens: all } : { bos: 'excluded', noBos: true, tokens: all - n }
  }

  /**
   * Reads a build's partial summary (partial.ts) in one snapshot, while the cache is not finished and
   * holds one; null otherwise (the caller then asks the finished cache, whose errors say what to do).
   */
  private partialRead<T>(read: (db: Database.Database, coverage: PartialCoverage) => T): T | null {
    const s = this.status()
    const db = this.db
    if (s.state !== 'partial' || !db) return null
    // One read transaction: the rows and the tokens they cover are from the same commit of the build.
    return db.transaction(() => {
      const tables = tableNames(db)
      if (!PARTIAL_TABLES.every((t) => tables.includes(t))) return null
      const meta = readMeta(db)
      const done = Number(meta.partial_tokens ?? 0)
      if (meta.built_at || meta.shard !== undefined || !(done > 0)) return null
      return read(db, { doneTokens: done, totalTokens: s.totalTokens })
    })()
  }

  /**
   * The browser's rows: the finished cache's, or (`partial` set) a running build's so far, which cannot
   * tell BOS firings apart.
   */
  list(annotate: Annotations = noAnnotations, choice: BosChoice = 'excluded'): { features: FeatureSummary[]; partial?: PartialCoverage; bos: FeatureBos } {
    return this.guard(
      () =>
        this.partialRead((db, partial) => ({ features: this.partialSummaries(db, partial, annotate), partial, bos: 'not_separable' as const })) ??
        this.summaries(annotate, choice),
    )
  }

  private partialSummaries(db: Database.Database, coverage: PartialCoverage, annotate: Annotations): FeatureSummary[] {
    const rows = db.prepare('SELECT id, count, max, sum FROM partial_feature ORDER BY id').all() as { id: number; count: number; max: number; sum: number }[]
    const out = Array.from({ length: this.input.key.dSae }, (_, id) => this.partialSummary({ id, count: 0, max: 0, sum: 0 }, coverage, annotate))
    for (const r of rows) {
      if (r.id < 0 || r.id >= out.length) throw this.corrupt('a partial summary row names a feature the SAE does not have')
      out[r.id] = this.partialSummary(r, coverage, annotate)
    }
    return out
  }

  private partialSummary(row: { id: number; count: number; max: number; sum: number }, coverage: PartialCoverage, annotate: Annotations): FeatureSummary {
    const density = row.count / coverage.doneTokens
    const mean = row.count > 0 ? row.sum / row.count : 0
    return {
      id: row.id,
      density,
      count: row.count,
      max: row.max,
      mean,
      topTokenId: null,
      topToken: null,
      precision: null,
      recall: null,
      f1: null,
      // Without a top token yet, only constant and dense can be told.
      flags: degenerateFlags({ count: row.count, density, max: row.max, mean, topTokenId: null, precision: null }, null),
      ...annotate(row.id),
    }
  }

  private partialDetail(db: Database.Database, coverage: PartialCoverage, id: number, topK: number, annotate: Annotations): FeatureDetail {
    const row = db.prepare('SELECT id, count, max, sum FROM partial_feature WHERE id = ?').get(id) as { id: number; count: number; max: number; sum: number } | undefined
    const stored = db.prepare('SELECT top_tokens, top_vals FROM partial_top WHERE id = ?').get(id) as { top_tokens: Buffer; top_vals: Buffer } | undefined
    const view = this.input.view
    const tokens = stored ? uint32Of(stored.top_tokens) : new Uint32Array(0)
    const vals = stored ? float32Of(stored.top_vals) : new Float32Array(0)
    if (tokens.length !== vals.length || tokens.some((t) => t >= view.corpus.length)) throw this.corrupt('a stored corpus position lies outside the corpus')
    // Stored in no order (the build writes its heap as it is): strongest first, ties to the earlier token.
    const order = Array.from(tokens.keys()).sort((a, b) => vals[b] - vals[a] || tokens[a] - tokens[b])
    const topTokens = order.map((i) => tokens[i])
    const topVals = order.map((i) => vals[i])
    const top = []
    for (let i = 0; i < Math.min(topK, topTokens.length); i++) top.push(activationRow(view, topTokens[i], topVals[i]))
    return {
      stats: this.partialSummary(row ?? { id, count: 0, max: 0, sum: 0 }, coverage, annotate),
      histogram: { scale: 'linear', edges: [], counts: [] },
      top,
      intervals: [],
      quantiles: [],
      below: [],
      logits: this.logits(id, NO_LOGITS),
      partial: coverage,
      bos: 'not_separable',
    }
  }

  summaries(annotate: Annotations = noAnnotations, choice: BosChoice = 'excluded'): { features: FeatureSummary[]; bos: FeatureBos } {
    return this.guard(() => {
      const db = this.ready()
      const columns = 'id, count, max, mean, top_token_id, precision, recall, f1'
      const rows = db.prepare(`SELECT ${columns} FROM feature ORDER BY id`).all() as FeatureRow[]
      const view = this.bosView(db, choice)
      const noBos = view.noBos ? (db.prepare(`SELECT ${columns} FROM ${NOBOS_TABLE}`).all() as FeatureRow[]) : []
      const vocab = this.input.view.display.length
      if ([...rows, ...noBos].some((r) => r.top_token_id !== null && (r.top_token_id < 0 || r.top_token_id >= vocab))) throw this.corrupt('a top token id lies outside the vocabulary')
      const shown = new Map(noBos.map((r) => [r.id, r]))
      return { features: rows.map((r) => this.summary(shown.get(r.id) ?? r, annotate, r, view.tokens)), bos: view.bos }
    })
  }

  detail(id: number, topK: number, annotate: Annotations = noAnnotations, choice: BosChoice = 'excluded'): FeatureDetail {
    this.checkId(id)
    return this.guard(() => this.partialRead((db, coverage) => this.partialDetail(db, coverage, id, topK, annotate)) ?? this.detailOf(id, topK, annotate, choice))
  }

  private detailOf(id: number, topK: number, annotate: Annotations, choice: BosChoice): FeatureDetail {
    const db = this.ready()
    const all = db.prepare('SELECT * FROM feature WHERE id = ?').get(id) as (FeatureRow & StoredShapes) | undefined
    if (!all) throw new FtError('not_found', `feature ${id} is not in the cache`)
    const bosView = this.bosView(db, choice)
    // A feature without BOS firings has no row of its own there: its numbers are the same.
    const noBos = bosView.noBos ? (db.prepare(`SELECT * FROM ${NOBOS_TABLE} WHERE id = ?`).get(id) as (FeatureRow & Omit<StoredShapes, keyof LogitShapes>) | undefined) : undefined
    const row = noBos ?? all
    const view = this.input.view
    const topTokens = uint32Of(row.top_tokens)
    const topVals = float32Of(row.top_vals)
    // Rows name corpus places; one outside the corpus means the stored blobs are not this bundle's.
    if (topTokens.some((t) => t >= view.corpus.length)) throw this.corrupt('a stored corpus position lies outside the corpus')
    const top = []
    for (let i = 0; i < Math.min(topK, topTokens.length); i++) top.push(activationRow(view, topTokens[i], topVals[i]))
    const decoded = decodeIntervals(row.interval_counts, row.interval_examples, INTERVAL_EXAMPLES)
    if (decoded.some((b) => b.examples.some(([t]) => t >= view.corpus.length))) throw this.corrupt('a stored corpus position lies outside the corpus')
    const intervals: IntervalBin[] = decoded.map((b, bin) => ({
      ...intervalRange(row.max, bin),
      count: b.count,
      examples: b.examples.map(([t, v]) => activationRow(view, t, v)),
    }))
    const quantiles: IntervalBin[] =
      row.quantile_bounds && row.quantile_counts && row.quantile_examples
        ? decodeQuantiles(row.quantile_bounds, row.quantile_counts, row.quantile_examples, QUANTILE_EXAMPLES).map((g) => ({
            lo: g.lo,
            hi: g.hi,
            count: g.count,
            examples: g.examples.map(([t, v]) => activationRow(view, t, v)),
          }))
        : []
    const belowTokens = row.below_tokens ? uint32Of(row.below_tokens) : new Uint32Array(0)
    if (quantiles.some((g) => g.examples.some((e) => e.batch * view.seqLen + e.pos >= view.corpus.length)) || belowTokens.some((t) => t >= view.corpus.length)) {
      throw this.corrupt('a stored corpus position lies outside the corpus')
    }
    const below = Array.from(belowTokens, (t) => activationRow(view, t, 0))
    const counts = Array.from(uint32Of(row.hist_counts))
    const histogram: Histogram = {
      scale: 'linear',
      edges: row.hist_lo === null || row.hist_hi === null ? [] : histogramEdges(row.hist_lo, row.hist_hi, counts.length, 'linear'),
      counts,
    }
    if (row.top_token_id !== null && (row.top_token_id < 0 || row.top_token_id >= view.display.length)) throw this.corrupt('a top token id lies outside the vocabulary')
    return { stats: this.summary(row, annotate, all, bosView.tokens), histogram, top, intervals, quantiles, below, logits: this.logits(id, all), bos: bosView.bos }
  }

  /** All of a feature's firings, decoded from its blob; only a cache built with the full table has them. */
  acts(id: number, what = 'this'): FeatureActs {
    this.checkId(id)
    return this.guard(() => {
      const db = this.ready()
      if (!hasFullTable(readMeta(db))) {
        throw new FtError(
          'cache_missing',
          `${what} needs every activation of the feature, and the cache ${pathText(this.input.path)} holds the summary only; build the full table (Cache tab: "Keep every activation", or feature-tracer cache build --full)`,
        )
      }
      const row = db.prepare('SELECT a.token_deltas, a.vals, f.max FROM feature_acts a JOIN feature f ON f.id = a.id WHERE a.id = ?').get(id) as
        | { token_deltas: Buffer; vals: Buffer; max: number }
        | undefined
      if (!row) throw new FtError('not_found', `feature ${id} is not in the cache`)
      const quantised = readMeta(db).acts_values === ACTS_U16
      return decodeFeatureActs(row.token_deltas, row.vals, quantised ? row.max : undefined)
    })
  }

  /**
   * The stored histogram when it is the one asked for (the summary has it); any other from the full table,
   * without the BOS firings unless they are asked for (as the stored one).
   */
  histogram(id: number, bins: number, scale: 'linear' | 'log', choice: BosChoice = 'excluded'): Histogram {
    if (scale === 'linear' && bins === HISTOGRAM_BINS) return this.detail(id, 0, noAnnotations, choice).histogram
    const acts = this.acts(id, `a ${scale} histogram of ${bins} bins`)
    const db = this.ready()
    if (!this.bosView(db, choice).noBos) return histogram(acts.values, bins, scale)
    // The BOS positions as finalize told them (bos.ts), from the corpus rather than the bundle's config.
    const { corpus, seqLen } = this.input.view
    const bos = positionZeroToken(this.input.view)
    return histogram(acts.values.filter((_, i) => !isBosPosition(acts.tokens[i], corpus, seqLen, bos)), bins, scale)
  }

  /** Stored effects when the build computed them; else computed here (and remembered) from the weights. */
  private logits(id: number, row: LogitShapes): { top: LogitEffect[]; bottom: LogitEffect[] } {
    const display = this.input.view.display
    const effect = (tokenId: number, value: number): LogitEffect => ({ tokenId, token: tokenText(display, tokenId), effect: value })
    if (row.logit_top_ids && row.logit_top_vals && row.logit_bottom_ids && row.logit_bottom_vals) {
      const pairs = (ids: Buffer, vals: Buffer) => {
        const v = float32Of(vals)
        return Array.from(uint32Of(ids), (t, i) => effect(t, v[i]))
      }
      return { top: pairs(row.logit_top_ids, row.logit_top_vals), bottom: pairs(row.logit_bottom_ids, row.logit_bottom_vals) }
    }
    const w = this.input.logitWeights
    if (!w) return { top: [], bottom: [] }
    let memo = this.logitMemo.get(id)
    if (!memo) {
      memo = topLogitEffects(w, id, display)
      if (this.logitMemo.size > 1000) this.logitMemo.clear()
      this.logitMemo.set(id, memo)
    }
    return memo
  }

  /**
   * Do the answers lack logit effects that are still to be stored: a running build's partial summary, or a
   * finished one whose logit step has not run (logit-step.ts)? A reader without the weights (main's) then
   * has them computed where the weights are. Never throws.
   */
  logitsPending(): boolean {
    try {
      const db = this.connection()
      if (!db) return false
      const meta = readMeta(db)
      return meta.built_at ? logitsPending(meta) : meta.partial_tokens !== undefined
    } catch {
      return false
    }
  }

  /** Features that fire on any of `tokenIds`, most firings first: the first `limit`, and how many there are. */
  byToken(tokenIds: number[], occurrences: number, limit: number, annotate: Annotations = noAnnotations): { features: TokenFeature[]; total: number } {
    return this.guard(() => this.byTokenOf(tokenIds, occurrences, limit, annotate))
  }

  private byTokenOf(tokenIds: number[], occurrences: number, limit: number, annotate: Annotations): { features: TokenFeature[]; total: number } {
    const stmt = this.ready().prepare('SELECT n_features, entries FROM token_index WHERE token_id = ?')
    const merged = new Map<number, { count: number; max: number; sum: number }>()
    // Each token stores its most frequent and most specific features (token-index.ts) and how many fire.
    let most = 0
    for (const t of new Set(tokenIds)) {
      const row = stmt.get(t) as { n_features: number; entries: Buffer } | undefined
      if (!row) continue
      most = Math.max(most, row.n_features)
      for (const e of decodeTokenEntries(row.entries)) {
        const m = merged.get(e.feature)
        if (m) {
          m.count += e.count
          m.sum += e.sum
          m.max = Math.max(m.max, e.max)
        } else merged.set(e.feature, { count: e.count, max: e.max, sum: e.sum })
      }
    }
    const features = [...merged]
      .sort((a, b) => b[1].count - a[1].count || b[1].max - a[1].max || a[0] - b[0])
      .slice(0, limit)
      .map(([id, m]) => ({
        id,
        count: m.count,
        fraction: occurrences > 0 ? m.count / occurrences : 0,
        max: m.max,
        mean: m.sum / m.count,
        label: annotate(id).label,
      }))
    // One token: exactly how many fire on it. Several: at least the most of any one of them.
    return { features, total: Math.max(merged.size, most) }
  }
}

function sizeOf(path: string): number {
  let size = 0
  for (const p of [path, `${path}-wal`]) if (existsSync(p)) size += statSync(p).size
  return size
}
