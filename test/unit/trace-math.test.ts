// The trace's pure functions against the PyTorch goldens of tools/golden.py: linearization (v, u, the
// true activation) from the golden's own resid_mid, the single-pair QK and the QK grid from the weights.
import { existsSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { loadBundle } from '../../main/bundle'
import { cosine, erf, linearizeFeature, modelWeights, pearson, PointRows, qkGrid, qkPair, saeView, topIndices } from '../../main/trace'
import { readGolden, relErr } from './helpers/golden'

const TOL = 1e-4

interface GoldenPointJson {
  key: string
  feature: number
  sample: number
  pos: number
  positions: number[]
  activation: number
  pre_activation: number
  v_dot_resid_mid: number
  u_dot_resid_mid: number
  qk_grid: { head: number; tokens: number[]; relative_positions: number[]; scores: (number | null)[][] }
  qk_pairs: { head: number; query_token: number; query_pos: number; key_token: number; key_pos: number; score: number }[]
}

const CASES = [
  { name: 'tiny', bundleDir: 'test/fixtures/tiny', goldenDir: 'test/fixtures/golden/tiny' },
  { name: 'demo', bundleDir: 'resources/demo', goldenDir: 'test/fixtures/golden/demo' },
]

for (const c of CASES) {
  const present = existsSync(`${c.bundleDir}/bundle.json`) && existsSync(`${c.goldenDir}/golden.json`)
  describe.runIf(present)(`trace math on ${c.name}`, () => {
    it('linearizes every golden point: v and u as autograd, the activation, v·x0 ≈ 0', async () => {
      const bundle = await loadBundle(c.bundleDir)
      const g = readGolden(c.goldenDir)
      const model = modelWeights(bundle)
      const sae = saeView(bundle)
      const d = bundle.config.model.d_model
      for (const p of g.points as unknown as GoldenPointJson[]) {
        const mids = g.f32(`${p.key}.blocks.${g.layer}.hook_resid_mid`)
        const i = p.positions.indexOf(p.pos)
        const x0 = mids.data.subarray(i * d, (i + 1) * d)
        const lin = linearizeFeature(model, sae, g.layer, bundle.hookPoint.hook, p.feature, x0)
        const v = g.f32(`${p.key}.v`).data
        const u = g.f32(`${p.key}.u`).data
        expect(relErr(lin.v, v), `${p.key} v`).toBeLessThan(TOL)
        expect(relErr(lin.u, u), `${p.key} u`).toBeLessThan(TOL)
        const scale = Math.max(1, Math.abs(p.pre_activation))
        expect(Math.abs(lin.preActivation - p.pre_activation) / scale, `${p.key} pre`).toBeLessThan(TOL)
        expect(Math.abs(lin.activation - p.activation) / scale, `${p.key} act`).toBeLessThan(TOL)
        // v·x0 vanishes at the point (LayerNorm's scale invariance); u·x0 does not and matches autograd.
        const xScale = Math.sqrt(x0.reduce((a, b) => a + b * b, 0))
        const vNorm = Math.sqrt(lin.v.reduce((a, b) => a + b * b, 0))
        expect(Math.abs(lin.vDotResid - p.v_dot_resid_mid) / (xScale * vNorm)).toBeLessThan(TOL)
        expect(Math.abs(lin.uDotResid - p.u_dot_resid_mid) / Math.abs(p.u_dot_resid_mid)).toBeLessThan(TOL)
        expect(Math.abs(lin.v.reduce((a, b) => a + b, 0)) / (vNorm * Math.sqrt(d))).toBeLessThan(1e-5)
        expect(cosine(lin.v, v)).toBeGreaterThan(1 - 1e-6)
      }
    })

    it('scores single token pairs and the QK grid with LN1, W_pos and biases', async () => {
      const bundle = await loadBundle(c.bundleDir)
      const g = readGolden(c.goldenDir)
      const model = modelWeights(bundle)
      for (const p of g.points as unknown as GoldenPointJson[]) {
        const ref = p.qk_grid
        const grid = qkGrid(model, g.layer, ref.head, p.qk_pairs[0].query_token, p.pos, ref.tokens)
        expect(grid.relativePositions).toEqual(ref.relative_positions)
        const flat = (s: (number | null)[][]): number[] => s.flat().map((x) => x ?? 0)
        expect(grid.scores.map((r) => r.map((x) => x === null))).toEqual(ref.scores.map((r) => r.map((x) => x === null)))
        expect(relErr(flat(grid.scores), flat(ref.scores)), `${p.key} grid`).toBeLessThan(TOL)
        const pairs = p.qk_pairs.map((q) => qkPair(model, g.layer, q.head, q.query_token, q.query_pos, q.key_token, q.key_pos))
        expect(relErr(pairs, p.qk_pairs.map((q) => q.score)), `${p.key} pairs`).toBeLessThan(TOL)
      }
    })
  })
}

describe('trace math helpers', () => {
  it('erf matches reference values to 1e-12', () => {
    const ref: [number, number][] = [
      [0, 0],
      [0.1, 0.1124629160182849],
      [0.5, 0.5204998778130465],
      [1, 0.8427007929497149],
      [2, 0.9953222650189527],
      [2.5, 0.9995930479825550],
      [3, 0.9999779095030014],
      [-1.5, -0.9661051464753108],
      [5, 0.9999999999984626],
    ]
    for (const [x, y] of ref) expect(Math.abs(erf(x) - y)).toBeLessThan(1e-12)
  })

  it('topIndices keeps the k largest (or smallest) in order, first index on ties', () => {
    const xs = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5]
    expect(topIndices(xs, 4)).toEqual([5, 7, 4, 8])
    expect(topIndices(xs, 3, false)).toEqual([1, 3, 6])
    expect(topIndices([1, 2], 5)).toEqual([1, 0])
  })

  it('topIndices agrees with a full sort (ties: lower index first; NaN skipped) on random series with ties', () => {
    let seed = 7
    const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
    for (let trial = 0; trial < 50; trial++) {
      const n = 1 + Math.floor(rand() * 300)
      // Few distinct values, so ties are common; some NaN and ±Infinity.
      const xs = Float32Array.from({ length: n }, () => {
        const r = rand()
        return r < 0.05 ? NaN : r < 0.08 ? Infinity : r < 0.11 ? -Infinity : Math.floor(rand() * 20) - 10
      })
      for (const k of [1, 5, 20, n + 3]) {
        for (const largest of [true, false]) {
          const sign = largest ? 1 : -1
          const want = Array.from(xs.keys())
            .filter((i) => !Number.isNaN(xs[i]))
            .sort((a, b) => sign * xs[b] - sign * xs[a] || (sign * xs[b] === sign * xs[a] ? a - b : 0))
            .slice(0, k)
          expect(topIndices(xs, k, largest)).toEqual(want)
        }
      }
    }
  })

  it.each([false, true])('PointRows gives every vector of the vocabulary products its own row, where stack puts it (u is v: %s)', (uIsV) => {
    const d = 2
    const rows = new PointRows(uIsV)
    const convention = () => ({ vector: new Float32Array(d), head: { ov: new Float32Array(d), ovBias: 0, qkSeed: new Float32Array(d) } })
    // Where u is v, the caller passes v's vectors for both: u's tables are read from v's rows.
    const v = convention()
    const vectors = { v, u: uIsV ? v : convention() }
    const qkKey = { key: new Float32Array(d), bias: 0 }
    // Mark each vector with a distinct value, then check it lands on the row its name says.
    let mark = 1
    const marks = new Map<Float32Array, number>()
    const tag = (x: Float32Array): void => {
      if (marks.has(x)) return
      x.fill(mark)
      marks.set(x, mark++)
    }
    for (const c of ['v', 'u'] as const) [vectors[c].vector, vectors[c].head.ov, vectors[c].head.qkSeed].forEach(tag)
    tag(qkKey.key)
    const { embed, keys } = rows.stack(d, vectors, qkKey)
    // The chosen head's rows only: each convention has 3 embed rows (its vector, OV, the seed's QK) and 1 key
    // row (LN+OV) of its own, u none where it is v; the head's QK key is one more key row.
    expect(rows.embedRows).toBe((uIsV ? 1 : 2) * 3)
    expect(rows.keyRows).toBe((uIsV ? 1 : 2) + 1)
    expect(embed.length).toBe(rows.embedRows * d)
    expect(keys.length).toBe(rows.keyRows * d)
    const at = (m: Float32Array, i: number): number => {
      expect(i).toBeGreaterThanOrEqual(0)
      expect(m[i * d]).toBe(m[i * d + d - 1])
      return m[i * d]
    }
    const embedSeen = new Set<number>()
    const keysSeen = new Set<number>()
    for (const c of ['v', 'u'] as const) {
      const h = vectors[c].head
      expect(at(embed, rows.tokenScores(c))).toBe(marks.get(vectors[c].vector))
      expect(at(embed, rows.ovTokens(c))).toBe(marks.get(h.ov))
      expect(at(embed, rows.qkSeed(c))).toBe(marks.get(h.qkSeed))
      expect(at(keys, rows.lnOv(c))).toBe(marks.get(h.ov))
      embedSeen.add(rows.tokenScores(c)).add(rows.ovTokens(c)).add(rows.qkSeed(c))
      keysSeen.add(rows.lnOv(c))
    }
    expect(at(keys, rows.qk())).toBe(marks.get(qkKey.key))
    keysSeen.add(rows.qk())
    expect(embedSeen.size).toBe(rows.embedRows)
    expect(keysSeen.size).toBe(rows.keyRows)
  })

  it('pearson is 1 for a line and -1 for its mirror', () => {
    expect(pearson([1, 2, 3, 4], [2, 4, 6, 8])).toBeCloseTo(1, 12)
    expect(pearson([1, 2, 3, 4], [8, 6, 4, 2])).toBeCloseTo(-1, 12)
  })
})
