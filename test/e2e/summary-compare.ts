// Compares two summary caches of one bundle (a fresh build and the summary a bundle ships). The same machine
// builds them byte for byte; another CPU may run ONNX Runtime's kernels in another order, so values may
// differ in their last bits and a firing at the edge of zero may come or go. What is checked then is what a
// researcher would notice: counts, maxima, means, the top activations and histograms, within small bounds.
import Database from 'better-sqlite3'

interface FeatureRow {
  id: number
  count: number
  max: number
  mean: number
  top_tokens: Buffer
  top_vals: Buffer
  hist_counts: Buffer
}

function f32(b: Buffer): Float32Array {
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength))
}

function u32(b: Buffer): Uint32Array {
  return new Uint32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength))
}

function rows(path: string, sql: string): unknown[][] {
  const db = new Database(path, { readonly: true })
  try {
    return db.prepare(sql).raw().all() as unknown[][]
  } finally {
    db.close()
  }
}

const key = (r: unknown[]) => r.map((v) => (Buffer.isBuffer(v) ? v.toString('hex') : JSON.stringify(v))).join(',')

export interface SummaryComparison {
  features: number
  identicalFeatureRows: number
  tokens: number
  identicalTokenRows: number
  /** What a researcher would see differ, beyond the bounds; empty when the two agree. */
  problems: string[]
}

export function compareSummaries(a: string, b: string): SummaryComparison {
  const featureSql = 'SELECT * FROM feature ORDER BY id'
  const tokenSql = 'SELECT token_id, n_features, entries FROM token_index ORDER BY token_id'
  const [fa, fb] = [rows(a, featureSql), rows(b, featureSql)]
  const [ta, tb] = [rows(a, tokenSql), rows(b, tokenSql)]
  const problems: string[] = []
  let identicalFeatureRows = 0
  let identicalTokenRows = 0
  if (fa.length !== fb.length) problems.push(`feature rows: ${fa.length} vs ${fb.length}`)
  const dbA = new Database(a, { readonly: true })
  const dbB = new Database(b, { readonly: true })
  const one = (db: Database.Database, id: number) =>
    db.prepare('SELECT id, count, max, mean, top_tokens, top_vals, hist_counts FROM feature WHERE id = ?').get(id) as FeatureRow
  try {
    for (let i = 0; i < Math.min(fa.length, fb.length); i++) {
      if (key(fa[i]) === key(fb[i])) {
        identicalFeatureRows++
        continue
      }
      const x = one(dbA, fa[i][0] as number)
      const y = one(dbB, fa[i][0] as number)
      const id = x.id
      const close = (p: number, q: number, scale: number) => Math.abs(p - q) <= 1e-4 * Math.max(scale, 1e-6)
      if (Math.abs(x.count - y.count) > Math.max(2, 0.001 * x.count)) problems.push(`feature ${id}: count ${x.count} vs ${y.count}`)
      if (!close(x.max, y.max, x.max)) problems.push(`feature ${id}: max ${x.max} vs ${y.max}`)
      if (!close(x.mean, y.mean, x.max)) problems.push(`feature ${id}: mean ${x.mean} vs ${y.mean}`)
      const [va, vb] = [f32(x.top_vals), f32(y.top_vals)]
      if (va.length !== vb.length || va.some((v, j) => !close(v, vb[j], x.max))) problems.push(`feature ${id}: top activations differ`)
      const [sa, sb] = [new Set(u32(x.top_tokens)), u32(y.top_tokens)]
      const shared = [...sb].filter((t) => sa.has(t)).length
      if (shared < 0.9 * sa.size) problems.push(`feature ${id}: ${shared} of ${sa.size} top tokens shared`)
      const [ha, hb] = [u32(x.hist_counts), u32(y.hist_counts)]
      const l1 = ha.reduce((n, c, j) => n + Math.abs(c - (hb[j] ?? 0)), 0)
      if (ha.length !== hb.length || l1 > 0.01 * x.count + 2) problems.push(`feature ${id}: histograms differ by ${l1} firings`)
    }
  } finally {
    dbA.close()
    dbB.close()
  }
  if (ta.length !== tb.length) problems.push(`token rows: ${ta.length} vs ${tb.length}`)
  for (let i = 0; i < Math.min(ta.length, tb.length); i++) {
    if (key(ta[i]) === key(tb[i])) identicalTokenRows++
    else if (ta[i][0] !== tb[i][0] || Math.abs((ta[i][1] as number) - (tb[i][1] as number)) > Math.max(2, 0.01 * (ta[i][1] as number))) {
      problems.push(`token ${ta[i][0]}: ${ta[i][1]} features vs token ${tb[i][0]}: ${tb[i][1]}`)
    }
  }
  return { features: fa.length, identicalFeatureRows, tokens: ta.length, identicalTokenRows, problems: problems.slice(0, 20) }
}
