// The SAE kinds of the bundle format (relu, jumprelu, topk; apply_b_dec_to_input): the schema's refusals,
// the engine's activations, a cache build and a trace on each kind, all against the PyTorch goldens of
// tools/golden.py on the tiny bundle's variants (tools/make_sae_variants.py).
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BundleError, loadBundle, parseBundleConfig, type Bundle } from '../../main/bundle'
import { OrtEngine } from '../../main/compute/ort-engine'
import { createWorkbench } from '../../main/app/workbench'
import { decodeFeatureActs } from '../../main/cache/encode'
import { inTopK, rivalsOf, tokenGate } from '../../main/trace/gate'
import { corpusScores, traceAt, type Trace } from '../../main/trace'
import { gateOf, topKRivals } from '../../main/trace/scope'
import { build, tempDir } from './helpers/cache'
import { readGolden, relErr, type Golden, type GoldenPoint } from './helpers/golden'

const TOL = 1e-4
const SLOW = 300_000
const KINDS = ['jumprelu', 'topk'] as const

interface PointJson extends GoldenPoint {
  batch_start: number
  fidelity_pearson: number
  fidelity_pearson_relu: number
  v_dot_resid_mid: number
}

const configOf = (dir: string): Record<string, unknown> => JSON.parse(readFileSync(join(dir, 'bundle.json'), 'utf-8'))

describe('bundle.json: SAE kinds', () => {
  const base = configOf('test/fixtures/tiny')
  const withSae = (sae: Record<string, unknown>) => ({ ...base, sae: { ...(base.sae as object), ...sae } })
  const refusal = (sae: Record<string, unknown>): string => {
    try {
      parseBundleConfig(withSae(sae))
    } catch (e) {
      expect(e).toBeInstanceOf(BundleError)
      return (e as Error).message
    }
    throw new Error('accepted')
  }

  it('refuses a TopK SAE without k or with k > d_sae, an unknown kind, a non-boolean apply_b_dec_to_input', () => {
    expect(refusal({ kind: 'topk' })).toMatch(/sae\.k/)
    expect(refusal({ kind: 'topk', k: 0 })).toMatch(/sae\.k/)
    expect(refusal({ kind: 'topk', k: 65 })).toMatch(/k = 65 .*d_sae = 64/)
    expect(refusal({ kind: 'gated' })).toMatch(/sae\.kind/)
    expect(refusal({ apply_b_dec_to_input: 'no' })).toMatch(/sae\.apply_b_dec_to_input/)
    expect(parseBundleConfig(withSae({ kind: 'topk', k: 64 })).sae).toMatchObject({ kind: 'topk', k: 64 })
  })

  it('reads old bundles as before: the same parsed config, so the same bundle hash', async () => {
    expect(parseBundleConfig(base).sae).toEqual(base.sae)
    const tiny = await loadBundle('test/fixtures/tiny', { weights: 'check', hashCacheDir: null })
    // Recorded before the SAE kinds existed: caches, labels and sessions keyed by it stay valid.
    expect(tiny.hashes.bundle).toBe('9b04dca7a27f23f3c6632d42f57a1233fcd3a87fb789d15e1cdf51dccb939e29')
    const demo = await loadBundle('resources/demo', { weights: 'check', hashCacheDir: null })
    expect(demo.hashes.bundle).toBe('7c76697a101d57b816d6ad6090e984a31af28c5d7565847653aa5e2a46a9a08c')
  })

  it('refuses a JumpReLU bundle whose sae.safetensors lacks the threshold', async () => {
    const dir = tempDir()
    try {
      cpSync('test/fixtures/tiny', dir, { recursive: true })
      const cfg = configOf(dir) as { sae: Record<string, unknown>; provenance: unknown }
      cfg.sae.kind = 'jumprelu'
      cfg.provenance = { files: {} }
      writeFileSync(join(dir, 'bundle.json'), JSON.stringify(cfg))
      await expect(loadBundle(dir, { hashCacheDir: null })).rejects.toThrow(/sae\.safetensors: the SAE lacks tensor threshold \(expected shape \[64\]\)/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('the TopK gate (pure)', () => {
  it('ranks equal values lower feature id first', () => {
    const pre = [1, 3, 3, 2, 3]
    expect([0, 1, 2, 3, 4].filter((f) => inTopK(pre, f, 2))).toEqual([1, 2])
    expect([0, 1, 2, 3, 4].filter((f) => inTopK(pre, f, 3))).toEqual([1, 2, 4])
  })

  it("compares a predicted pre-activation with the k-th largest of the other features'", () => {
    // One token, k = 2, top-3 pre-activations: features 4 (5.0), 7 (3.0), 1 (2.0).
    const top = { values: Float32Array.of(5, 3, 2), indices: Int32Array.of(4, 7, 1), width: 3 }
    const sae = { gate: { kind: 'topk' as const, k: 2 } } as Parameters<typeof tokenGate>[0]
    const selected = tokenGate(sae, 7, rivalsOf(top, 7, 2)) // 7 is selected; its rival is feature 1 (2.0)
    expect(selected.actual(0, 3)).toBe(3)
    expect(selected.predicted(0, 2.5)).toBe(2.5)
    expect(selected.predicted(0, 2)).toBe(0) // a tie with feature 1 goes to the lower id
    const outside = tokenGate(sae, 0, rivalsOf(top, 0, 2)) // 0 is not selected; its rival is 7 (3.0)
    expect(outside.actual(0, 2.9)).toBe(0)
    expect(outside.predicted(0, 3)).toBe(3) // a tie with feature 7 goes to 0
    expect(outside.predicted(0, 2.9)).toBe(0)
  })
})

for (const kind of KINDS) {
  const bundleDir = `test/fixtures/tiny-${kind}`
  describe(`a ${kind} SAE against the PyTorch golden`, () => {
    let bundle: Bundle
    let engine: OrtEngine
    let golden: Golden
    const points = (): PointJson[] => golden.points as unknown as PointJson[]
    const traces = new Map<string, Trace>()

    beforeAll(async () => {
      bundle = await loadBundle(bundleDir, { hashCacheDir: null })
      engine = await OrtEngine.create(bundle, { providers: ['cpu'], intraOpNumThreads: 2, initialK: 2 })
      golden = readGolden(`test/fixtures/golden/tiny-${kind}`)
      for (const p of points()) traces.set(p.key, await traceAt(bundle, engine, { feature: p.feature, sample: p.sample, pos: p.pos }))
    }, 120_000)
    afterAll(async () => engine?.dispose())

    it('has points where the feature fires and one where its gate is shut though its pre-activation is positive', () => {
      expect(points().some((p) => p.activation > 0)).toBe(true)
      expect(points().some((p) => p.activation === 0 && p.pre_activation > 0)).toBe(true)
    })

    it("computes every token's activations exactly as the golden (engine.saeActs)", async () => {
      const { seqLen, data } = bundle.tokens
      for (const p of points()) {
        const acts = await engine.saeActs(data.subarray(p.sample * seqLen, (p.sample + 1) * seqLen), 1, seqLen)
        const got = new Map<string, number>()
        for (let t = 0; t < acts.nTokens; t++) for (let j = acts.rowPtr[t]; j < acts.rowPtr[t + 1]; j++) got.set(`${t}/${acts.featureIds[j]}`, acts.values[j])
        const idx = golden.i32(`${p.key}.seq_acts_idx`).data
        const val = golden.f32(`${p.key}.seq_acts_val`).data
        const want = new Map<string, number>()
        for (let i = 0; i < val.length; i++) want.set(`${idx[2 * i]}/${idx[2 * i + 1]}`, val[i])
        expect([...got.keys()].sort()).toEqual([...want.keys()].sort())
        for (const [k, v] of want) expect(Math.abs(got.get(k)! - v), k).toBeLessThan(TOL * Math.max(1, v))
        if (kind === 'topk') for (let t = 0; t < acts.nTokens; t++) expect(acts.rowPtr[t + 1] - acts.rowPtr[t]).toBeLessThanOrEqual(5)
      }
    })

    if (kind === 'topk') {
      it('a TopK SAE starts at k + 1 kept values, so a block is never run twice', async () => {
        const fresh = await OrtEngine.create(bundle, { providers: ['cpu'], intraOpNumThreads: 2 })
        try {
          const sae = bundle.config.sae
          if (sae.kind !== 'topk') throw new Error('the tiny-topk bundle has a TopK SAE')
          const k = sae.k
          expect(fresh.topK).toBe(k + 1)
          const { seqLen, data, nSeq } = bundle.tokens
          const acts = await fresh.saeActs(data.subarray(0, nSeq * seqLen), nSeq, seqLen)
          expect(fresh.topK).toBe(k + 1)
          // Some token fires k features: k kept values alone would have made its block run again.
          let most = 0
          for (let t = 0; t < acts.nTokens; t++) most = Math.max(most, acts.rowPtr[t + 1] - acts.rowPtr[t])
          expect(most).toBe(k)
        } finally {
          await fresh.dispose()
        }
      })
    }

    it("traces each point: v and u (autograd of the pre-activation), the gated activation, the scope's activations", () => {
      for (const p of points()) {
        const t = traces.get(p.key)!
        expect(relErr(t.v.vector, golden.f32(`${p.key}.v`).data), `${p.key} v`).toBeLessThan(TOL)
        expect(relErr(t.u.vector, golden.f32(`${p.key}.u`).data), `${p.key} u`).toBeLessThan(TOL)
        expect(Math.abs(t.preActivation - p.pre_activation)).toBeLessThan(TOL * Math.max(1, Math.abs(p.pre_activation)))
        expect(Math.abs(t.activation - p.activation)).toBeLessThan(TOL * Math.max(1, p.activation))
        expect(relErr(t.scopePreActivations, golden.f32(`${p.key}.pre_batch`).data), `${p.key} pre_batch`).toBeLessThan(TOL)
        expect(relErr(t.scopeActivations, golden.f32(`${p.key}.acts_batch`).data), `${p.key} acts_batch`).toBeLessThan(TOL)
        // The scope's activation at the point is the point's own.
        const at = (p.sample - p.batch_start) * bundle.tokens.seqLen + p.pos
        expect(Math.abs(t.scopeActivations[at] - t.activation)).toBeLessThan(TOL * Math.max(1, t.activation))
        expect(t.v.fidelity.pearson).toBeCloseTo(p.fidelity_pearson, 4)
        expect(t.v.fidelity.pearsonRelu).toBeCloseTo(p.fidelity_pearson_relu, 4)
      }
    })

    it('gates the predicted pre-activations as the golden does (the fidelity prediction of v)', async () => {
      const { seqLen, nSeq, data } = bundle.tokens
      for (const p of points()) {
        const t = traces.get(p.key)!
        const req = { key: `batch:0:${nSeq}`, tokens: data.subarray(0, nSeq * seqLen), nSeq, seqLen }
        const gate = gateOf(bundle, p.feature, await topKRivals(bundle, engine, req, p.feature))
        const predicted = t.v.fidelity.predicted
        const want = golden.f32(`${p.key}.predicted_acts_v`).data
        expect(predicted.length).toBe(want.length)
        const got = Float32Array.from(predicted, (x, i) => gate.predicted(i, x))
        expect(relErr(got, want), p.key).toBeLessThan(TOL)
      }
    })

    it('scores the whole corpus with the gated fidelity (tiny: the corpus is the golden batch)', async () => {
      for (const p of points().slice(0, 2).concat(points().slice(-1))) {
        const r = await corpusScores(bundle, engine, { feature: p.feature, sample: p.sample, pos: p.pos }, { convention: 'v', chunkSeqs: 5 })
        expect(relErr(r.preActivations, golden.f32(`${p.key}.pre_batch`).data)).toBeLessThan(TOL)
        expect(r.fidelity.pearsonRelu).toBeCloseTo(p.fidelity_pearson_relu, 4)
      }
    })

    it('builds an activation cache that holds exactly the golden activations', async () => {
      const dir = tempDir()
      const wb = createWorkbench({ bundleDir, cachePath: join(dir, 'cache.sqlite'), userDataDir: join(dir, 'user'), build: { chunkSeqs: 5 } })
      try {
        const done = await build(wb, { full: true })
        expect(done.outcome, JSON.stringify(done)).toBe('done')
        const db = new Database(join(dir, 'cache.sqlite'), { readonly: true })
        const nTokens = bundle.tokens.nSeq * bundle.tokens.seqLen
        for (const p of points()) {
          // The full table keeps values as 16-bit fractions of the feature's exact max (encode.ts).
          const row = db.prepare('SELECT a.token_deltas, a.vals, f.max FROM feature_acts a JOIN feature f USING (id) WHERE id = ?').get(p.feature) as { token_deltas: Buffer; vals: Buffer; max: number }
          const acts = decodeFeatureActs(row.token_deltas, row.vals, row.max)
          const col = new Float32Array(nTokens)
          acts.tokens.forEach((t, i) => (col[t] = acts.values[i]))
          const want = golden.f32(`${p.key}.acts_batch`).data
          expect(want.length).toBe(nTokens)
          for (let t = 0; t < nTokens; t++) expect(col[t] > 0, `${p.key} token ${t}`).toBe(want[t] > 0)
          expect(relErr(col, want)).toBeLessThan(TOL)
        }
        db.close()
      } finally {
        await wb.close()
        rmSync(dir, { recursive: true, force: true })
      }
    }, SLOW)
  })
}
