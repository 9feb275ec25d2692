// Read side of the activation cache: state, and the per-feature answers the IPC handlers return. All
// of it reads precomputed rows or one feature's blob, so a query costs milliseconds.
import { existsSync, statSync } from 'node:fs'
import type Database from 'better-sqlite3'
import type {
  CacheState,
  ExecutionProviderName,
  FeatureDetail,
  FeatureSummary,
  Histogram,
  IntervalBin,
  LogitEffect,
  TokenFeature,
} from '../ipc/contract'
import { FtError } from '../ipc/errors'
import { decodeFeatureActs, decodeIntervals, float32Of, uint32Of, type FeatureActs } from './encode'
import { extremes, LOGIT_K, logitEffects, type LogitWeights } from './logits'
import { activationRow, tokenText, type CorpusView } from './rows'
import { keyMismatch, openCacheDb, readMeta, type CacheKey } from './schema'
import { histogram, histogramEdges, INTERVAL_EXAMPLES, intervalRange } from './stats'
import { decodeTokenEntries } from './token-index'

export interface CacheReaderInput {
  path: string
  key: CacheKey
  view: CorpusView
  logitWeights: LogitWeights | null
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
  logit_top_ids: Buffer | null
  logit_top_vals: Buffer | null
  logit_bottom_ids: Buffer | null
  logit_bottom_vals: Buffer | null
}

export class CacheReader {
  private db: Database.Database | null = null
  private readonly logitMemo = new Map<number, { top: LogitEffect[]; bottom: LogitEffect[] }>()

  constructor(private readonly input: CacheReaderInput) {}

  get path(): string {
    return this.input.path
  }

  private connection(): Database.Database | null {
    if (this.db) return this.db
    if (!existsSync(this.input.path)) return null
    this.db = openCacheDb(this.input.path)
    return this.db
  }

  /** Drop the connection (before a rebuild replaces the content, or on close). */
  close(): void {
    this.db?.close()
    this.db = null
  }

  status(): Omit<CacheState, 'job'> {
    const { path, key } = this.input
    const totalTokens = key.nSeq * key.seqLen
    const base = { path, totalTokens, doneTokens: 0, sizeBytes: sizeOf(path) }
    const db = this.connection()
    if (!db) return { ...base, state: 'missing' }
    const meta = readMeta(db)
    if (Object.keys(meta).length === 0) return { ...base, state: 'missing' }
    const reason = keyMismatch(meta, key)
    if (reason) return { ...base, state: 'stale', reason }
    if (meta.built_at) return { ...base, state: 'ready', doneTokens: totalTokens, builtAt: meta.built_at }
    const done = db.prepare('SELECT COALESCE(SUM(n_tokens), 0) AS n FROM chunk').get() as { n: number }
    return { ...base, state: done.n > 0 ? 'partial' : 'missing', doneTokens: done.n }
  }

  /** The execution provider the finished cache was built on, if it is known. */
  builtWith(): ExecutionProviderName | null {
    const db = this.connection()
    const provider = db ? readMeta(db).provider : undefined
    return (provider as ExecutionProviderName | undefined) ?? null
  }

  private ready(): Database.Database {
    const s = this.status()
    if (s.state === 'stale') throw new FtError('cache_stale', `the activation cache ${s.path} is stale: ${s.reason}; rebuild it`)
    if (s.state !== 'ready') {
      const progress = s.state === 'partial' ? ` (${s.doneTokens} of ${s.totalTokens} tokens done)` : ''
      throw new FtError('cache_missing', `the activation cache ${s.path} is not built${progress}; build it first`)
    }
    return this.db as Database.Database
  }

  private checkId(id: number): void {
    if (id >= this.input.key.dSae) throw new FtError('not_found', `feature ${id} does not exist (the SAE has ${this.input.key.dSae} features, 0…${this.input.key.dSae - 1})`)
  }

  private summary(row: FeatureRow, annotate: Annotations): FeatureSummary {
    const display = this.input.view.display
    return {
      id: row.id,
      density: row.count / (this.input.key.nSeq * this.input.key.seqLen),
      count: row.count,
      max: row.max,
      mean: row.mean,
      topTokenId: row.top_token_id,
      topToken: row.top_token_id === null ? null : tokenText(display, row.top_token_id),
      precision: row.precision,
      recall: row.recall,
      f1: row.f1,
      ...annotate(row.id),
    }
  }

  summaries(annotate: Annotations = noAnnotations): FeatureSummary[] {
    const rows = this.ready()
      .prepare('SELECT id, count, max, mean, top_token_id, precision, recall, f1 FROM feature ORDER BY id')
      .all() as FeatureRow[]
    return rows.map((r) => this.summary(r, annotate))
  }

  detail(id: number, topK: number, annotate: Annotations = noAnnotations): FeatureDetail {
    this.checkId(id)
    const row = this.ready().prepare('SELECT * FROM feature WHERE id = ?').get(id) as (FeatureRow & StoredShapes) | undefined
    if (!row) throw new FtError('not_found', `feature ${id} is not in the cache`)
    const view = this.input.view
    const topTokens = uint32Of(row.top_tokens)
    const topVals = float32Of(row.top_vals)
    const top = []
    for (let i = 0; i < Math.min(topK, topTokens.length); i++) top.push(activationRow(view, topTokens[i], topVals[i]))
    const intervals: IntervalBin[] = decodeIntervals(row.interval_counts, row.interval_examples, INTERVAL_EXAMPLES).map((b, bin) => ({
      ...intervalRange(row.max, bin),
      count: b.count,
      examples: b.examples.map(([t, v]) => activationRow(view, t, v)),
    }))
    const counts = Array.from(uint32Of(row.hist_counts))
    const histogram: Histogram = {
      scale: 'linear',
      edges: row.hist_lo === null || row.hist_hi === null ? [] : histogramEdges(row.hist_lo, row.hist_hi, counts.length, 'linear'),
      counts,
    }
    return { stats: this.summary(row, annotate), histogram, top, intervals, logits: this.logits(id, row) }
  }

  /** All of a feature's firings, decoded from its blob. */
  acts(id: number): FeatureActs {
    this.checkId(id)
    const row = this.ready().prepare('SELECT token_deltas, vals FROM feature_acts WHERE id = ?').get(id) as
      | { token_deltas: Buffer; vals: Buffer }
      | undefined
    if (!row) throw new FtError('not_found', `feature ${id} is not in the cache`)
    return decodeFeatureActs(row.token_deltas, row.vals)
  }

  histogram(id: number, bins: number, scale: 'linear' | 'log'): Histogram {
    return histogram(this.acts(id).values, bins, scale)
  }

  /** Stored effects when the build computed them; else computed here (and remembered) from the weights. */
  private logits(id: number, row: StoredShapes): { top: LogitEffect[]; bottom: LogitEffect[] } {
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
      const effects = logitEffects(w, id)
      const pick = (i: number): LogitEffect => effect(i, effects[i])
      memo = { top: extremes(effects, LOGIT_K, true).map(pick), bottom: extremes(effects, LOGIT_K, false).map(pick) }
      if (this.logitMemo.size > 1000) this.logitMemo.clear()
      this.logitMemo.set(id, memo)
    }
    return memo
  }

  /** Features that fire on any of `tokenIds`, most firings first. */
  byToken(tokenIds: number[], occurrences: number, limit: number, annotate: Annotations = noAnnotations): TokenFeature[] {
    const stmt = this.ready().prepare('SELECT entries FROM token_index WHERE token_id = ?')
    const merged = new Map<number, { count: number; max: number; sum: number }>()
    for (const t of new Set(tokenIds)) {
      const row = stmt.get(t) as { entries: Buffer } | undefined
      if (!row) continue
      for (const e of decodeTokenEntries(row.entries)) {
        const m = merged.get(e.feature)
        if (m) {
          m.count += e.count
          m.sum += e.sum
          m.max = Math.max(m.max, e.max)
        } else merged.set(e.feature, { count: e.count, max: e.max, sum: e.sum })
      }
    }
    return [...merged]
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
  }
}

function sizeOf(path: string): number {
  let size = 0
  for (const p of [path, `${path}-wal`]) if (existsSync(p)) size += statSync(p).size
  return size
}
