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
  /** The non-BOS rows (feature_nobos, main/cache/bos.ts) of the features that fire on BOS. */
  noBosFeatures: number
  identicalNoBosRows: number
  tokens: number
  identicalTokenRows: number
  /** What a researcher would see differ, beyond the bounds; empty when the two agree. */
  problems: string[]
}

function hasTable(path: string, table: string): boolean {
  return rows(path, `SELECT name FROM sqlite_master WHERE type = 'table' AND name = '${table}'`).length > 0
}

/** Compares one per-feature table (`feature`, or `feature_nobos`) row by row; `problems` gets what differs. */
function compareFeatureTable(a: string, b: string, table: string, problems: string[]): { rows: number; identical: number } {
  for (const [path, name] of [[a, 'the fresh build'], [b, 'the shipped summary']]) {
    if (!hasTable(path, table)) problems.push(`${table}: missing in ${name}`)
  }
  if (problems.some((p) => p.startsWith(`${table}: missing`))) return { rows: 0, identical: 0 }
  const featureSql = `SELECT * FROM ${table} ORDER BY id`
  const [fa, fb] = [rows(a, featureSql), rows(b, featureSql)]
  let identical = 0
  const columns = 'id, count, max, mean, top_tokens, top_vals, hist_counts'
  const dbA = new Database(a, { readonly: true })
  const dbB = new Database(b, { readonly: true })
  // A feature without a non-BOS row has no BOS firing: its numbers are its `feature` row's. On another CPU a
  // firing at the edge of zero on BOS may come or go, giving it such a row in one file only.
  const one = (db: Database.Database, id: number) =>
    (db.prepare(`SELECT ${columns} FROM ${table} WHERE id = ?`).get(id) ?? db.prepare(`SELECT ${columns} FROM feature WHERE id = ?`).get(id)) as FeatureRow | undefined
  if (table === 'feature' && fa.length !== fb.length) problems.push(`${table} rows: ${fa.length} vs ${fb.length}`)
  try {
    const inA = new Map(fa.map((r) => [r[0], r]))
    const inB = new Map(fb.map((r) => [r[0], r]))
    const ids = [...new Set([...fa, ...fb].map((r) => r[0] as number))].sort((p, q) => p - q)
    for (const fid of ids) {
      const ra = inA.get(fid)
      const rb = inB.get(fid)
      if (ra && rb && key(ra) === key(rb)) {
        identical++
        continue
      }
      const x = one(dbA, fid)
      const y = one(dbB, fid)
      if (!x || !y) {
        problems.push(`${table}: feature ${fid} only in one file`)
        continue
      }
      const id = `${table} ${x.id}`
      const close = (p: number, q: number, scale: number) => Math.abs(p - q) <= 1e-4 * Math.max(scale, 1e-6)
      if (Math.abs(x.count - y.count) > Math.max(2, 0.001 * x.count)) problems.push(`${id}: count ${x.count} vs ${y.count}`)
      if (!close(x.max, y.max, x.max)) problems.push(`${id}: max ${x.max} vs ${y.max}`)
      if (!close(x.mean, y.mean, x.max)) problems.push(`${id}: mean ${x.mean} vs ${y.mean}`)
      const [va, vb] = [f32(x.top_vals), f32(y.top_vals)]
      if (va.length !== vb.length || va.some((v, j) => !close(v, vb[j], x.max))) problems.push(`${id}: top activations differ`)
      const [sa, sb] = [new Set(u32(x.top_tokens)), u32(y.top_tokens)]
      const shared = [...sb].filter((t) => sa.has(t)).length
      if (shared < 0.9 * sa.size) problems.push(`${id}: ${shared} of ${sa.size} top tokens shared`)
      const [ha, hb] = [u32(x.hist_counts), u32(y.hist_counts)]
      const l1 = ha.reduce((n, c, j) => n + Math.abs(c - (hb[j] ?? 0)), 0)
      if (ha.length !== hb.length || l1 > 0.01 * x.count + 2) problems.push(`${id}: histograms differ by ${l1} firings`)
    }
  } finally {
    dbA.close()
    dbB.close()
  }
  return { rows: fa.length, identical }
}

export function compareSummaries(a: string, b: string): SummaryComparison {
  const tokenSql = 'SELECT token_id, n_features, entries FROM token_index ORDER BY token_id'
  const [ta, tb] = [rows(a, tokenSql), rows(b, tokenSql)]
  const problems: string[] = []
  let identicalTokenRows = 0
  const feature = compareFeatureTable(a, b, 'feature', problems)
  const noBos = compareFeatureTable(a, b, 'feature_nobos', problems)
  if (ta.length !== tb.length) problems.push(`token rows: ${ta.length} vs ${tb.length}`)
  for (let i = 0; i < Math.min(ta.length, tb.length); i++) {
    if (key(ta[i]) === key(tb[i])) identicalTokenRows++
    else if (ta[i][0] !== tb[i][0] || Math.abs((ta[i][1] as number) - (tb[i][1] as number)) > Math.max(2, 0.01 * (ta[i][1] as number))) {
      problems.push(`token ${ta[i][0]}: ${ta[i][1]} features vs token ${tb[i][0]}: ${tb[i][1]}`)
    }
  }
  return {
    features: feature.rows,
    identicalFeatureRows: feature.identical,
    noBosFeatures: noBos.rows,
    identicalNoBosRows: noBos.identical,
    tokens: ta.length,
    identicalTokenRows,
    problems: problems.slice(0, 20),
  }
}
