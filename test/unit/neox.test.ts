// GPT-NeoX-style bundles (rotary positions, parallel attention and MLP; issue 12 §5): the schema's rules, and
// the engine's hooks and SAE activations against tools/golden_neox.py's float64 forward pass (ftlib/neox.py) on
// test/fixtures/tiny-neox (tools/make_neox_bundle.py). Their traces: trace-hooks.test.ts.
import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BundleError, loadBundle, parseBundleConfig, parseHookPoint, type Bundle } from '../../main/bundle'
import type { HookName } from '../../main/compute/api'
import { OrtEngine } from '../../main/compute/ort-engine'
import { readGolden, relErr, type Golden } from './helpers/golden'

const TOL = 1e-4
const DIR = 'test/fixtures/tiny-neox'
const base = JSON.parse(readFileSync(`${DIR}/bundle.json`, 'utf-8')) as { model: Record<string, unknown>; sae: Record<string, unknown> }

function refusal(over: { model?: Record<string, unknown>; sae?: Record<string, unknown> }): string {
  try {
    const json = { ...base, model: { ...base.model, ...over.model }, sae: { ...base.sae, ...over.sae } }
    for (const [k, v] of Object.entries(json.model)) if (v === undefined) delete json.model[k]
    parseBundleConfig(json)
  } catch (e) {
    expect(e).toBeInstanceOf(BundleError)
    return (e as Error).message
  }
  throw new Error('accepted')
}

describe('bundle.json: rotary positions and parallel blocks', () => {
  it('refuses rotary without rotary_dim or rotary_base, an odd rotary_dim or one above d_head, rotary fields on learned positions', () => {
    expect(refusal({ model: { rotary_dim: undefined } })).toMatch(/need model\.rotary_dim and model\.rotary_base/)
    expect(refusal({ model: { rotary_base: undefined } })).toMatch(/need model\.rotary_dim and model\.rotary_base/)
    expect(refusal({ model: { rotary_dim: 3 } })).toMatch(/rotary_dim = 3 must be even and at most d_head = 8/)
    expect(refusal({ model: { rotary_dim: 10 } })).toMatch(/rotary_dim = 10/)
    expect(refusal({ model: { positional_embedding_type: 'standard' } })).toMatch(/belong to rotary positional embeddings only/)
    expect(refusal({ model: { positional_embedding_type: 'alibi' } })).toMatch(/positional_embedding_type/)
  })

  it('has no resid_mid in a parallel model: an SAE there is refused', () => {
    const cfg = parseBundleConfig(base).model
    expect(() => parseHookPoint(cfg, 'blocks.1.hook_resid_mid')).toThrow(/does not exist in a model with parallel attention and MLP/)
    expect(parseHookPoint({ ...cfg, parallel_attn_mlp: false }, 'blocks.1.hook_resid_mid').width).toBe(32)
  })
})

describe('the engine on a GPT-NeoX-style bundle against golden_neox.py', () => {
  let bundle: Bundle
  let engine: OrtEngine
  let golden: Golden
  let samples: number[]
  let tokens: Int32Array
  let seqLen: number

  beforeAll(async () => {
    bundle = await loadBundle(DIR, { hashCacheDir: null })
    engine = await OrtEngine.create(bundle, { providers: ['cpu'], intraOpNumThreads: 2 })
    golden = readGolden('test/fixtures/golden/tiny-neox')
    samples = (JSON.parse(readFileSync('test/fixtures/golden/tiny-neox/golden.json', 'utf-8')) as { samples: number[] }).samples
    seqLen = bundle.tokens.seqLen
    tokens = new Int32Array(samples.length * seqLen)
    samples.forEach((s, i) => tokens.set(bundle.tokens.data.subarray(s * seqLen, (s + 1) * seqLen), i * seqLen))
  }, 60_000)
  afterAll(async () => engine?.dispose())

  it('loads without W_pos', () => {
    expect(bundle.model.has('pos_embed.W_pos')).toBe(false)
    expect(bundle.config.model).toMatchObject({ positional_embedding_type: 'rotary', rotary_dim: 4, parallel_attn_mlp: true })
  })

  it('computes every hook of every layer and the logits as the float64 forward pass', async () => {
    const hooks: HookName[] = ['logits']
    for (let l = 0; l < bundle.config.model.n_layers; l++) {
      for (const h of ['hook_resid_pre', 'attn.hook_v', 'attn.hook_pattern', 'attn.hook_z', 'hook_attn_out', 'mlp.hook_pre', 'mlp.hook_post', 'hook_mlp_out', 'hook_resid_post']) {
        hooks.push(`blocks.${l}.${h}` as HookName)
      }
    }
    const out = await engine.forward(tokens, samples.length, seqLen, hooks)
    for (const hook of hooks) expect(relErr(out[hook].data, golden.f32(hook).data), hook).toBeLessThanOrEqual(TOL)
  })

  it('refuses resid_mid, which a parallel block does not have', async () => {
    await expect(engine.forward(tokens.subarray(0, seqLen), 1, seqLen, ['blocks.0.hook_resid_mid'])).rejects.toThrow(/does not exist/)
  })

  it('gives the SAE activations of the golden, non-zero for non-zero', async () => {
    const acts = await engine.saeActs(tokens, samples.length, seqLen)
    const want = golden.f32('sae.acts').data
    const dSae = bundle.config.sae.d_sae
    const got = new Float32Array(want.length)
    for (let t = 0; t < acts.nTokens; t++) for (let j = acts.rowPtr[t]; j < acts.rowPtr[t + 1]; j++) got[t * dSae + acts.featureIds[j]] = acts.values[j]
    expect(want.some((x) => x > 0) && want.some((x) => x === 0)).toBe(true)
    expect(got.map((x) => (x > 0 ? 1 : 0))).toEqual(want.map((x) => (x > 0 ? 1 : 0)))
    expect(relErr(got, want)).toBeLessThanOrEqual(TOL)
  })
})
