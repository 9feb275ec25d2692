// The ONNX graphs against the PyTorch goldens of tools/golden.py (float64 torch, stored as float32).
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { loadBundle, type Bundle } from '../../main/bundle'
import type { HookName, SparseActs } from '../../main/compute/api'
import { InferenceSession, Tensor as OrtTensor } from 'onnxruntime-node'
import { buildForwardGraph } from '../../main/compute/graphs'
import { OrtEngine } from '../../main/compute/ort-engine'
import { readGolden, relErr, type Golden } from './helpers/golden'

const TOL = 1e-4

interface Case {
  name: string
  bundleDir: string
  goldenDir: string
  /** No allowance at all for activations near zero (the tiny bundle has none near the ReLU edge). */
  exactSae?: boolean
}

const CASES: Case[] = [
  { name: 'tiny', bundleDir: 'test/fixtures/tiny', goldenDir: 'test/fixtures/golden/tiny', exactSae: true },
  { name: 'demo', bundleDir: 'resources/demo', goldenDir: 'test/fixtures/golden/demo' },
  // Attention scores divided by 1 (use_attn_scale=False) and by sqrt(d_head)·(layer+1): bundle.json's attn_scales.
  { name: 'tiny-attn-unscaled', bundleDir: 'test/fixtures/tiny-attn-unscaled', goldenDir: 'test/fixtures/golden/tiny-attn-unscaled' },
  { name: 'tiny-attn-by-layer', bundleDir: 'test/fixtures/tiny-attn-by-layer', goldenDir: 'test/fixtures/golden/tiny-attn-by-layer' },
]
// Any other bundle with goldens from tools/golden.py (e.g. an exported gelu-1l): FT_GOLDEN_BUNDLE=dir FT_GOLDEN_DIR=dir
if (process.env.FT_GOLDEN_BUNDLE && process.env.FT_GOLDEN_DIR) {
  CASES.push({ name: process.env.FT_GOLDEN_BUNDLE, bundleDir: process.env.FT_GOLDEN_BUNDLE, goldenDir: process.env.FT_GOLDEN_DIR })
}

/** Rows of [seqLen, ...rest] at the golden's positions (goldens store a subset of positions for big bundles). */
function atPositions(data: Float32Array, dims: number[], positions: number[], posAxis: number): Float32Array {
  const before = dims.slice(0, posAxis).reduce((a, b) => a * b, 1)
  const after = dims.slice(posAxis + 1).reduce((a, b) => a * b, 1)
  const out = new Float32Array(before * positions.length * after)
  for (let i = 0; i < before; i++)
    positions.forEach((p, j) => out.set(data.subarray((i * dims[posAxis] + p) * after, (i * dims[posAxis] + p + 1) * after), (i * positions.length + j) * after))
  return out
}

/** The golden's non-zeros of one sequence as "pos/feature" → value. */
function goldenActs(g: Golden, key: string): Map<string, number> {
  const idx = g.i32(`${key}.seq_acts_idx`).data
  const val = g.f32(`${key}.seq_acts_val`).data
  const m = new Map<string, number>()
  for (let i = 0; i < val.length; i++) m.set(`${idx[2 * i]}/${idx[2 * i + 1]}`, val[i])
  return m
}

function csrActs(acts: SparseActs, firstToken: number, seqLen: number): Map<string, number> {
  const m = new Map<string, number>()
  for (let pos = 0; pos < seqLen; pos++) {
    const t = firstToken + pos
    for (let j = acts.rowPtr[t]; j < acts.rowPtr[t + 1]; j++) m.set(`${pos}/${acts.featureIds[j]}`, acts.values[j])
  }
  return m
}

/**
 * The same set of (pos, feature) non-zeros, with values within TOL of the largest activation. The one
 * allowance: an activation within TOL·scale of zero may be present on one side only, since a float32
 * pre-activation that close to 0 can land on the other side of ReLU than float64 (as a value it is within
 * the tolerance of 0 either way).
 */
function expectSameActs(actual: Map<string, number>, expected: Map<string, number>, exact = false): void {
  if (exact) expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort())
  const scale = Math.max(...expected.values())
  const band = TOL * scale
  for (const [key, v] of expected) {
    if (!actual.has(key)) expect(v, `golden ${key} missing`).toBeLessThanOrEqual(band)
    else expect(Math.abs(actual.get(key)! - v) / scale, key).toBeLessThanOrEqual(TOL)
  }
  for (const [key, v] of actual) if (!expected.has(key)) expect(v, `extra ${key}`).toBeLessThanOrEqual(band)
  const onlyOneSide = [...expected.keys()].filter((k) => !actual.has(k)).length + [...actual.keys()].filter((k) => !expected.has(k)).length
  expect(onlyOneSide).toBeLessThanOrEqual(Math.ceil(expected.size / 10_000))
}

for (const c of CASES) {
  const present = existsSync(join(c.bundleDir, 'bundle.json')) && existsSync(join(c.goldenDir, 'golden.json'))
  describe.runIf(c.name.startsWith('tiny') || present)(`compute vs PyTorch goldens: ${c.name}`, () => {
    let bundle: Bundle
    let engine: OrtEngine
    let golden: Golden
    let tokens: Int32Array // the golden points' sequences, one row each
    let seqLen: number

    beforeAll(async () => {
      bundle = await loadBundle(c.bundleDir)
      engine = await OrtEngine.create(bundle, { providers: ['cpu'] })
      golden = readGolden(c.goldenDir)
      seqLen = bundle.tokens.seqLen
      tokens = new Int32Array(golden.points.length * seqLen)
      golden.points.forEach((p, i) => tokens.set(bundle.tokens.data.subarray(p.sample * seqLen, (p.sample + 1) * seqLen), i * seqLen))
    })
    afterAll(() => engine?.dispose())

    it('runs on CPU when told to', () => expect(engine.provider).toBe('cpu'))

    it('resid_pre, resid_mid, mlp hook_post, attention pattern and logits of every layer match', async () => {
      const L = bundle.config.model.n_layers
      const hooks: HookName[] = ['logits']
      for (let l = 0; l < L; l++) hooks.push(`blocks.${l}.hook_resid_pre`, `blocks.${l}.hook_resid_mid`, `blocks.${l}.mlp.hook_post`, `blocks.${l}.attn.hook_pattern`)
      const out = await engine.forward(tokens, golden.points.length, seqLen, hooks)
      golden.points.forEach((p, i) => {
        for (const hook of hooks) {
          const t = out[hook]
          const perSeq = t.data.length / golden.points.length
          const mine = t.data.subarray(i * perSeq, (i + 1) * perSeq)
          const isPattern = hook.endsWith('hook_pattern')
          // pattern is [heads, query, key] per sequence, the rest [pos, width]; goldens keep some positions only
          const rows = atPositions(mine, t.dims.slice(1), p.positions, isPattern ? 1 : 0)
          expect(relErr(rows, golden.f32(`${p.key}.${hook}`).data), `${p.key} ${hook}`).toBeLessThanOrEqual(TOL)
        }
      })
    })

    it('builds one session for concurrent requests that need the same new one, with the same values', async () => {
      const hooks: HookName[] = ['blocks.0.hook_resid_mid', 'blocks.0.mlp.hook_pre']
      const before = engine.sessionsBuilt
      const [a, b] = await Promise.all([engine.forward(tokens, golden.points.length, seqLen, hooks), engine.forward(tokens, golden.points.length, seqLen, [...hooks].reverse())])
      expect(engine.sessionsBuilt - before).toBe(1)
      for (const h of hooks) expect(b[h].data).toEqual(a[h].data)
      const layer = bundle.config.model.n_layers - 1
      const req = { layer, embed: new Float32Array(bundle.config.model.d_model).fill(0.5), keys: new Float32Array(0), keyPos: 0, unembed: new Float32Array(0) }
      await Promise.all([engine.vocabProducts(req), engine.vocabProducts(req)])
      expect(engine.sessionsBuilt - before).toBe(2)
    })

    it('attention pattern rows match row by row', async () => {
      const hook = `blocks.0.attn.hook_pattern` as const
      const t = (await engine.forward(tokens.subarray(0, seqLen), 1, seqLen, [hook]))[hook]
      const p = golden.points[0]
      const want = golden.f32(`${p.key}.${hook}`).data
      const mine = atPositions(t.data, t.dims.slice(1), p.positions, 1)
      for (let r = 0; r < want.length / seqLen; r++) {
        expect(relErr(mine.subarray(r * seqLen, (r + 1) * seqLen), want.subarray(r * seqLen, (r + 1) * seqLen)), `row ${r}`).toBeLessThanOrEqual(TOL)
      }
    })

    it('attn_out, mlp_out, resid_post and v are consistent with the goldens', async () => {
      const cfg = bundle.config.model
      const { n_heads: H, d_head: dh, d_model: d } = cfg
      const hooks: HookName[] = []
      for (let l = 0; l < cfg.n_layers; l++) hooks.push(`blocks.${l}.hook_attn_out`, `blocks.${l}.hook_mlp_out`, `blocks.${l}.hook_resid_post`, `blocks.${l}.attn.hook_v`)
      const p = golden.points[0]
      const out = await engine.forward(tokens.subarray(0, seqLen), 1, seqLen, hooks)
      const P = p.positions
      for (let l = 0; l < cfg.n_layers; l++) {
        const pre = golden.f32(`${p.key}.blocks.${l}.hook_resid_pre`).data
        const mid = golden.f32(`${p.key}.blocks.${l}.hook_resid_mid`).data
        const attnOut = atPositions(out[`blocks.${l}.hook_attn_out`].data, [seqLen, d], P, 0)
        expect(relErr(attnOut, mid.map((m, i) => m - pre[i])), `attn_out ${l}`).toBeLessThanOrEqual(TOL)
        if (l + 1 < cfg.n_layers) {
          const next = golden.f32(`${p.key}.blocks.${l + 1}.hook_resid_pre`).data
          expect(relErr(atPositions(out[`blocks.${l}.hook_resid_post`].data, [seqLen, d], P, 0), next), `resid_post ${l}`).toBeLessThanOrEqual(TOL)
          expect(relErr(atPositions(out[`blocks.${l}.hook_mlp_out`].data, [seqLen, d], P, 0), next.map((x, i) => x - mid[i])), `mlp_out ${l}`).toBeLessThanOrEqual(TOL)
        }
        // attn_out = Σ_h pattern_h · v_h · W_O[h] + b_O, with the golden pattern and our v
        const pattern = golden.f32(`${p.key}.blocks.${l}.attn.hook_pattern`).data // [H, |P|, seqLen]
        const v = out[`blocks.${l}.attn.hook_v`].data // [seqLen, H, dh]
        const W_O = bundle.model.get(`blocks.${l}.attn.W_O`)!.data
        const b_O = bundle.model.get(`blocks.${l}.attn.b_O`)!.data
        const recon = new Float64Array(P.length * d)
        P.forEach((_, qi) => {
          for (let h = 0; h < H; h++) {
            const z = new Float64Array(dh)
            for (let s = 0; s < seqLen; s++) {
              const a = pattern[(h * P.length + qi) * seqLen + s]
              for (let e = 0; e < dh; e++) z[e] += a * v[(s * H + h) * dh + e]
            }
            for (let e = 0; e < dh; e++) for (let j = 0; j < d; j++) recon[qi * d + j] += z[e] * W_O[(h * dh + e) * d + j]
          }
          for (let j = 0; j < d; j++) recon[qi * d + j] += b_O[j]
        })
        expect(relErr(recon, mid.map((m, i) => m - pre[i])), `v ${l}`).toBeLessThanOrEqual(TOL)
      }
    })

    it('a graph truncated at an early hook gives the same values', async () => {
      const hook = 'blocks.0.hook_resid_mid' as const
      const p = golden.points[0]
      const t = (await engine.forward(tokens.subarray(0, seqLen), 1, seqLen, [hook]))[hook]
      expect(relErr(atPositions(t.data, t.dims.slice(1), p.positions, 0), golden.f32(`${p.key}.${hook}`).data)).toBeLessThanOrEqual(TOL)
    })

    it('SAE activations in CSR are exactly the golden non-zeros', async () => {
      const acts = await engine.saeActs(tokens, golden.points.length, seqLen)
      expect(acts.nTokens).toBe(golden.points.length * seqLen)
      expect(acts.rowPtr[acts.nTokens]).toBe(acts.values.length)
      golden.points.forEach((p, i) => expectSameActs(csrActs(acts, i * seqLen, seqLen), goldenActs(golden, p.key), c.exactSae))
    })

    it('drops nothing when TopK starts too small, and blocks split anywhere', async () => {
      const small = await OrtEngine.create(bundle, { providers: ['cpu'], initialK: 1, maxBlockTokens: seqLen })
      try {
        const acts = await small.saeActs(tokens, golden.points.length, seqLen)
        expect(small.topK).toBeGreaterThan(1)
        golden.points.forEach((p, i) => expectSameActs(csrActs(acts, i * seqLen, seqLen), goldenActs(golden, p.key), c.exactSae))
      } finally {
        await small.dispose()
      }
    })

    it('refuses tokens outside the vocabulary or longer than n_ctx', async () => {
      const { d_vocab, n_ctx } = bundle.config.model
      await expect(engine.saeActs(Int32Array.of(0, d_vocab), 1, 2)).rejects.toThrow(/outside/)
      await expect(engine.forward(new Int32Array(n_ctx + 1), 1, n_ctx + 1, ['logits'])).rejects.toThrow(/n_ctx/)
      await expect(engine.forward(new Int32Array(3), 1, 2, ['logits'])).rejects.toThrow(/3 tokens/)
    })
  })
}

describe('weights outside the model (onnx-builder.ts)', () => {
  it('keeps every weight out of the protobuf, and the GPU form (initializers in external data) computes the same', async () => {
    const bundle = await loadBundle('test/fixtures/tiny')
    const graph = buildForwardGraph(bundle, ['logits'])
    const asInputs = graph.encode('inputs')
    const asInitializers = graph.encode('initializers')
    const weightBytes = [...graph.weights.values()].reduce((n, t) => n + t.data.byteLength, 0)
    // A few KB of nodes whatever the model's size: no 2 GiB protobuf limit, no copy of the weights.
    expect(asInputs.model.byteLength).toBeLessThan(20_000)
    expect(asInitializers.model.byteLength).toBeLessThan(20_000)
    expect(weightBytes).toBeGreaterThan(100_000)
    expect(asInitializers.externalData.reduce((n, f) => n + f.data.byteLength, 0)).toBe(weightBytes)
    expect(asInputs.fed.sort()).toEqual([...graph.weights.keys()].sort())
    expect(asInitializers.fed).toEqual([]) // a tensor of 2 GiB or more would still be fed (ORT's in-memory limit)
    // Each file of external data is a view of the bundle's own array, not a copy.
    expect(asInitializers.externalData.every((f) => [...graph.weights.values()].some((t) => t.data.buffer === f.data.buffer))).toBe(true)

    const seqLen = bundle.tokens.seqLen
    const ids = new BigInt64Array(seqLen)
    bundle.tokens.data.subarray(0, seqLen).forEach((t, i) => (ids[i] = BigInt(t)))
    const tokens = new OrtTensor('int64', ids, [1, seqLen])
    const options = { executionProviders: ['cpu'], intraOpNumThreads: 1 }
    const fed = await InferenceSession.create(asInputs.model, options)
    const feeds: Record<string, OrtTensor> = { tokens }
    for (const [name, t] of graph.weights) feeds[name] = new OrtTensor('float32', t.data, t.dims)
    const a = (await fed.run(feeds)).logits.data as Float32Array
    const embedded = await InferenceSession.create(asInitializers.model, { ...options, externalData: asInitializers.externalData })
    const b = (await embedded.run({ tokens })).logits.data as Float32Array
    expect(relErr(b, a)).toBeLessThanOrEqual(1e-6)
    await fed.release()
    await embedded.release()
  })
})

describe('an engine disposed while a session is being built', () => {
  it('releases that session instead of leaking it, and the request fails', async () => {
    const bundle = await loadBundle('test/fixtures/tiny')
    const created = vi.spyOn(InferenceSession, 'create')
    // onnxruntime-node's typings declare a factory; at run time InferenceSession is the sessions' class.
    const released = vi.spyOn((InferenceSession as unknown as { prototype: InferenceSession }).prototype, 'release')
    const engine = await OrtEngine.create(bundle, { providers: ['cpu'] })
    try {
      const seqLen = bundle.tokens.seqLen
      // The SAE session is built on first use: dispose before that build ends.
      const acts = engine.saeActs(bundle.tokens.data.subarray(0, seqLen), 1, seqLen)
      await engine.dispose()
      await expect(acts).rejects.toThrow(/disposed/)
      // Every session made (the SAE's among them) is released.
      expect(created.mock.calls.length).toBeGreaterThan(0)
      expect(released).toHaveBeenCalledTimes(created.mock.calls.length)
    } finally {
      created.mockRestore()
      released.mockRestore()
    }
  })
})
