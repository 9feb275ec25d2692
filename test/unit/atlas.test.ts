// The mechanism atlas (issue 15 §1): the clustering and cross-fidelity math on hand-made inputs with answers
// worked out by hand, the point picks, and the whole atlas on the tiny bundles (an MLP hook: LN2 frozen for
// u; attn.hook_z: LN1 frozen, the pattern held) against tools/golden_atlas.py (float64 torch, autograd,
// naive average linkage).
import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cutTree } from '../../common/atlas'
import { loadBundle, type Bundle } from '../../main/bundle'
import { OrtEngine } from '../../main/compute/ort-engine'
import { computeAtlas, type Atlas } from '../../main/trace/atlas'
import { averageLinkage, cosineMatrix, crossFidelity, leafOrder } from '../../main/trace/atlas-math'
import { atlasPoints } from '../../main/trace/atlas-points'
import { relErr } from './helpers/golden'

const TOL = 1e-4

describe('average linkage, the tree cut and the leaf order on a hand-made distance matrix', () => {
  // {0,1} close, {2,3} close, 4 nearest to {2,3}; the merges worked out by hand:
  // (0,1) at 0.1; (2,3) at 0.2; 4 with {2,3} at (0.5 + 0.3)/2 = 0.4; then the two groups at the mean of
  // the six cross distances (0.6 + 0.8 + 1.0 + 0.7 + 0.9 + 1.2)/6 = 13/15.
  const D = [
    [0, 0.1, 0.6, 0.8, 1.0],
    [0.1, 0, 0.7, 0.9, 1.2],
    [0.6, 0.7, 0, 0.2, 0.5],
    [0.8, 0.9, 0.2, 0, 0.3],
    [1.0, 1.2, 0.5, 0.3, 0],
  ]
  const linkage = averageLinkage(D)

  it('merges as UPGMA does', () => {
    expect(linkage.map(([a, b, , size]) => [a, b, size])).toEqual([
      [0, 1, 2],
      [2, 3, 2],
      [4, 6, 3],
      [5, 7, 5],
    ])
    linkage.map((r) => r[2]).forEach((h, k) => expect(h).toBeCloseTo([0.1, 0.2, 0.4, 13 / 15][k], 12))
  })

  it('cuts at a threshold into the maximal nodes below it', () => {
    expect(cutTree(5, linkage, 0.5)).toEqual([
      { node: 7, members: [2, 3, 4] },
      { node: 5, members: [0, 1] },
    ])
    expect(cutTree(5, linkage, 0.3).map((c) => c.members)).toEqual([[0, 1], [2, 3], [4]])
    expect(cutTree(5, linkage, 0.05).map((c) => c.members)).toEqual([[0], [1], [2], [3], [4]])
    expect(cutTree(5, linkage, 0.9)).toEqual([{ node: 8, members: [0, 1, 2, 3, 4] }])
  })

  it('orders the leaves as the tree draws them', () => {
    expect(leafOrder(5, linkage)).toEqual([0, 1, 4, 2, 3])
  })
})

describe('cosines and cross-fidelity on hand-made vectors', () => {
  it('cosines', () => {
    const c = cosineMatrix([Float32Array.of(1, 0), Float32Array.of(1, 1), Float32Array.of(0, 2)])
    expect(c[0][1]).toBeCloseTo(Math.SQRT1_2, 7)
    expect(c[0][2]).toBe(0)
    expect(c[1][2]).toBeCloseTo(Math.SQRT1_2, 7)
    expect(c[2][2]).toBe(1)
  })

  it('predicts pre_i + u_i·(R_j − R_i) and counts the points within 10 %', () => {
    // Point 0 predicts 2 + 1·(2 − 1) = 3 at point 1 (true 4: 25 % off); point 1 predicts 4 + (1 − 3) = 2 at point 0 (exact).
    const f = crossFidelity([Float32Array.of(1, 0), Float32Array.of(0, 1)], [Float32Array.of(1, 1), Float32Array.of(2, 3)], [2, 4])
    expect(f.predicted).toEqual([
      [2, 3],
      [2, 4],
    ])
    expect(f.relError[0][1]).toBeCloseTo(0.25, 12)
    expect(f.relError[1][0]).toBe(0)
    expect(f.share).toEqual([0.5, 1])
    expect(f.best).toBe(1)
  })
})

describe('the atlas’s points', () => {
  const row = (batch: number, pos: number) => ({ batch, pos }) as never
  it('takes the top N, then the quantile groups round-robin from the lowest up, skipping repeats', () => {
    const detail = {
      top: [row(0, 1), row(0, 2), row(1, 3)],
      quantiles: [{ examples: [row(5, 0), row(5, 1)] }, { examples: [row(0, 2), row(6, 0)] }, { examples: [row(7, 7)] }] as never,
      intervals: [],
    }
    expect(atlasPoints(detail, 2, 3)).toEqual([
      { sample: 0, pos: 1, source: 'top' },
      { sample: 0, pos: 2, source: 'top' },
      { sample: 5, pos: 0, source: 'quantile' },
      { sample: 7, pos: 7, source: 'quantile' },
      { sample: 5, pos: 1, source: 'quantile' },
    ])
  })

  it('samples the equal-width intervals instead when the cache has no quantile groups', () => {
    const detail = { top: [row(0, 1)], quantiles: [], intervals: [{ examples: [row(2, 2), row(3, 3)] }, { examples: [row(4, 4)] }] as never }
    expect(atlasPoints(detail, 5, 2)).toEqual([
      { sample: 0, pos: 1, source: 'top' },
      { sample: 2, pos: 2, source: 'quantile' },
      { sample: 4, pos: 4, source: 'quantile' },
    ])
  })
})

interface GoldenAtlas {
  feature: number
  resid: string
  points: { sample: number; pos: number; activation: number; pre_activation: number; u: number[]; v: number[]; attribution: Record<string, number> }[]
  cosine_u: number[][]
  cosine_v: number[][]
  linkage: [number, number, number, number][]
  cross_predicted: number[][]
  cross_rel_error: number[][]
  explained_share: number[]
  root_W_E_u: number[]
}

// tiny-neox: rotary positions and parallel blocks (an MLP feature's R is resid_pre 1; no positional term).
for (const name of ['tiny', 'tiny-hook-z', 'tiny-neox']) {
  describe(`the atlas of the tiny bundle ${name} against the PyTorch golden`, () => {
    let bundle: Bundle
    let engine: OrtEngine
    let atlas: Atlas
    const golden = JSON.parse(readFileSync(`test/fixtures/golden/atlas-${name}/golden.json`, 'utf-8')) as GoldenAtlas

    beforeAll(async () => {
      bundle = await loadBundle(`test/fixtures/${name}`, { hashCacheDir: null })
      engine = await OrtEngine.create(bundle, { providers: ['cpu'], intraOpNumThreads: 2 })
      // Two sequences per run, so the batched forward pass is cut into sequences more than once.
      atlas = await computeAtlas(bundle, engine, golden.feature, golden.points.map((p) => ({ sample: p.sample, pos: p.pos, source: 'top' })), { batchTokens: 64 })
    }, 120_000)
    afterAll(async () => engine?.dispose())

    it('linearizes at every point as autograd: v, u, the pre-activation', () => {
      expect(atlas.json.resid).toBe(golden.resid)
      golden.points.forEach((p, i) => {
        expect(relErr(atlas.u[i], p.u), `u ${i}`).toBeLessThan(TOL)
        expect(relErr(atlas.v[i], p.v), `v ${i}`).toBeLessThan(TOL)
        expect(Math.abs(atlas.json.points[i].preActivation - p.pre_activation) / Math.max(1, Math.abs(p.pre_activation))).toBeLessThan(TOL)
        expect(Math.abs(atlas.json.points[i].activation - p.activation) / Math.max(1, p.activation)).toBeLessThan(TOL)
      })
    })

    it('cosines in both conventions, the average-linkage tree and the cross-fidelity', () => {
      expect(relErr(atlas.json.cosineU.flat(), golden.cosine_u.flat())).toBeLessThan(TOL)
      expect(relErr(atlas.json.cosineV.flat(), golden.cosine_v.flat())).toBeLessThan(TOL)
      expect(atlas.json.linkage.map(([a, b, , s]) => [a, b, s])).toEqual(golden.linkage.map(([a, b, , s]) => [a, b, s]))
      expect(relErr(atlas.json.linkage.map((r) => r[2]), golden.linkage.map((r) => r[2]))).toBeLessThan(TOL)
      expect(relErr(atlas.json.crossPredicted.flat(), golden.cross_predicted.flat())).toBeLessThan(TOL)
      golden.cross_rel_error.forEach((r, i) => expect(relErr(atlas.json.crossFidelity[i], r), `row ${i}`).toBeLessThan(TOL))
      expect(atlas.json.explainedShare).toEqual(golden.explained_share)
      expect(atlas.json.bestShare).toBe(Math.max(...golden.explained_share))
    })

    it('every node: its members, the direct attribution averaged over them, W_E·mean(u) at the root', () => {
      const n = golden.points.length
      expect(atlas.json.nodes).toHaveLength(2 * n - 1)
      golden.points.forEach((p, i) => {
        const leaf = atlas.json.nodes[i]
        expect(leaf.members).toEqual([i])
        const got = Object.fromEntries(leaf.attribution.map((a) => [a.component, a.mean]))
        expect(Object.keys(got).sort()).toEqual(Object.keys(p.attribution).sort())
        const keys = Object.keys(p.attribution)
        expect(relErr(keys.map((k) => got[k]), keys.map((k) => p.attribution[k]))).toBeLessThan(TOL)
      })
      const root = atlas.json.nodes[2 * n - 2]
      expect(root.members).toEqual([...Array(n).keys()])
      const mean = (k: string) => golden.points.reduce((a, p) => a + p.attribution[k], 0) / n
      for (const a of root.attribution) expect(Math.abs(a.mean - mean(a.component)) / Math.max(1, Math.abs(mean(a.component)))).toBeLessThan(TOL)
      const scale = Math.max(...golden.root_W_E_u.map(Math.abs))
      for (const t of [...root.tokens.top, ...root.tokens.bottom]) expect(Math.abs(t.score - golden.root_W_E_u[t.tokenId]) / scale).toBeLessThan(TOL)
      expect(root.tokens.top[0].tokenId).toBe(golden.root_W_E_u.indexOf(Math.max(...golden.root_W_E_u)))
    })
  })
}
