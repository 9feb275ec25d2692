// Traces at every hook point (issue 12 §3, §4): SAEs on hook_resid_pre/mid/post, hook_mlp_out, attn.hook_z
// and hook_attn_out of the tiny 2-layer model (tools/make_hook_variants.py), and on mlp.hook_post and
// hook_resid_post of a GPT-NeoX-style one (rotary, parallel blocks; tools/make_neox_bundle.py, issue 12 §5,
// with its exact QK table at the point's positions), against the PyTorch goldens of
// tools/golden_hooks.py (autograd in float64): v and u at the hook's residual point, the pre-activation and
// activation, the n-layer decomposition term by term (every attention layer per head × source, each MLP)
// and its sum check, the batch's scores and true activations, the fidelity and the logit effect.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadBundle, type Bundle } from '../../main/bundle'
import { OrtEngine } from '../../main/compute/ort-engine'
import { traceAt, tracePlan, type Decomposition, type Trace } from '../../main/trace'
import { readGolden, relErr, type Golden, type GoldenPoint } from './helpers/golden'

const TOL = 1e-4

interface AttnJson {
  layer: number
  heads: number[][]
  heads_ov: number[][]
  b_O: number
}

interface DecompositionJson {
  embed: number | null
  pos: number | null
  attn: AttnJson[]
  mlp_out: number[]
  total: number
  sum_of_terms: number
}

interface QkJson {
  layer: number
  head: number
  source_pos: number
  pairs: { key_pos: number; key_token: number; score: number }[]
}

interface PointJson extends GoldenPoint {
  /** tools/golden_hooks.py --qk: the circuit layer's QK table (golden array `<key>.qk`) and pairs. */
  qk?: QkJson
  v_dot_resid: number
  u_dot_resid: number
  /** null where Pearson r is undefined (a constant series). */
  fidelity_pearson: number | null
  fidelity_pearson_relu: number | null
  decomposition_v: DecompositionJson
  decomposition_u: DecompositionJson
}

interface Variant {
  name: string
  resid: string
  attnLayers: number[]
  mlpLayers: number[]
  frozenLn: 'ln1' | 'ln2' | null
  /** Default: test/fixtures/tiny-hook-NAME and its golden. */
  bundleDir?: string
  goldenDir?: string
}

const NEOX = (name: string) => ({ bundleDir: `test/fixtures/tiny-${name}`, goldenDir: `test/fixtures/golden/trace-tiny-${name}` })
const VARIANTS: Variant[] = [
  { name: 'resid-pre', resid: 'blocks.1.hook_resid_pre', attnLayers: [0], mlpLayers: [0], frozenLn: null },
  { name: 'resid-mid0', resid: 'blocks.0.hook_resid_mid', attnLayers: [0], mlpLayers: [], frozenLn: null },
  { name: 'resid-post', resid: 'blocks.1.hook_resid_post', attnLayers: [0, 1], mlpLayers: [0, 1], frozenLn: null },
  { name: 'mlp-out', resid: 'blocks.1.hook_resid_mid', attnLayers: [0, 1], mlpLayers: [0], frozenLn: 'ln2' },
  { name: 'z', resid: 'blocks.1.hook_resid_pre', attnLayers: [1], mlpLayers: [], frozenLn: 'ln1' },
  { name: 'attn-out', resid: 'blocks.1.hook_resid_pre', attnLayers: [1], mlpLayers: [], frozenLn: 'ln1' },
  // Parallel blocks: layer 1's MLP reads resid_pre 1, so only layer 0 comes before it.
  { name: 'neox', resid: 'blocks.1.hook_resid_pre', attnLayers: [0], mlpLayers: [0], frozenLn: 'ln2', ...NEOX('neox') },
  { name: 'neox-resid-post', resid: 'blocks.1.hook_resid_post', attnLayers: [0, 1], mlpLayers: [0, 1], frozenLn: null, ...NEOX('neox-resid-post') },
]

/** Every term in one array (layer by layer, heads × sources, with and without the pattern), so one scale judges them all. */
function terms(d: Decomposition | DecompositionJson): number[] {
  const out = [d.embed ?? 0, d.pos ?? 0]
  for (const a of d.attn) out.push(a.b_O, ...a.heads.flat(), ...('headsOv' in a ? a.headsOv : a.heads_ov).flat())
  return [...out, ...('mlpOut' in d ? d.mlpOut : d.mlp_out)]
}

for (const variant of VARIANTS) {
  const bundleDir = variant.bundleDir ?? `test/fixtures/tiny-hook-${variant.name}`
  const goldenDir = variant.goldenDir ?? `test/fixtures/golden/tiny-hook-${variant.name}`
  describe(`a trace of an SAE on ${variant.resid.replace(/hook_.*/, '')}… (${bundleDir}) against the PyTorch golden`, () => {
    let bundle: Bundle
    let engine: OrtEngine
    let golden: Golden
    const traces = new Map<string, Trace>()
    const points = (): PointJson[] => golden.points as unknown as PointJson[]
    const f32 = (name: string): Float32Array => golden.f32(name).data

    beforeAll(async () => {
      bundle = await loadBundle(bundleDir, { hashCacheDir: null })
      engine = await OrtEngine.create(bundle, { providers: ['cpu'], intraOpNumThreads: 2 })
      golden = readGolden(goldenDir)
      for (const p of points()) traces.set(p.key, await traceAt(bundle, engine, { feature: p.feature, sample: p.sample, pos: p.pos }))
    }, 120_000)
    afterAll(async () => engine?.dispose())

    it('linearizes at the hook’s residual point: v, u, the pre-activation and the gated activation as autograd', () => {
      const plan = tracePlan(bundle)
      expect(plan.resid).toBe(variant.resid)
      expect(plan.attnLayers).toEqual(variant.attnLayers)
      expect(plan.mlpLayers).toEqual(variant.mlpLayers)
      expect(points().some((p) => p.activation > 0) && points().some((p) => p.activation === 0)).toBe(true)
      for (const p of points()) {
        const t = traces.get(p.key)!
        expect(t.resid).toBe(variant.resid)
        expect(t.frozenLn?.name ?? null).toBe(variant.frozenLn)
        expect(relErr(t.v.vector, f32(`${p.key}.v`)), `${p.key} v`).toBeLessThan(TOL)
        expect(relErr(t.u.vector, f32(`${p.key}.u`)), `${p.key} u`).toBeLessThan(TOL)
        const scale = Math.max(1, Math.abs(p.pre_activation))
        expect(Math.abs(t.preActivation - p.pre_activation) / scale, `${p.key} pre`).toBeLessThan(TOL)
        expect(Math.abs(t.activation - p.activation) / scale, `${p.key} act`).toBeLessThan(TOL)
        expect(Math.abs(t.u.dotResidMid - p.u_dot_resid) / Math.max(1, Math.abs(p.u_dot_resid))).toBeLessThan(TOL)
        if (!variant.frozenLn) {
          // A residual SAE's pre-activation is linear in R: the linear prediction is exact, u = v = W_enc[:,f].
          expect(t.u.vector).toEqual(t.v.vector)
          expect(Math.abs(t.v.dotResidMid - p.v_dot_resid) / Math.max(1, Math.abs(p.v_dot_resid))).toBeLessThan(TOL)
        }
      }
    })

    it('decomposes vec·R (or the attention hook’s value) term by term, every layer per head × source, and the terms add up', () => {
      for (const p of points()) {
        const t = traces.get(p.key)!
        for (const [conv, ref] of [['v', p.decomposition_v], ['u', p.decomposition_u]] as const) {
          const dec = t[conv].decomposition
          expect(dec.attn.map((a) => a.layer)).toEqual(ref.attn.map((a) => a.layer))
          expect(dec.mlpOut.length).toBe(ref.mlp_out.length)
          expect(dec.embed === null).toBe(ref.embed === null)
          expect(dec.pos === null).toBe(ref.pos === null) // rotary models: no positional term
          const scale = Math.max(...terms(ref).map(Math.abs))
          expect(relErr(terms(dec), terms(ref)), `${p.key} ${conv} terms`).toBeLessThan(TOL)
          expect(Math.abs(dec.total - ref.total) / scale, `${p.key} ${conv} total`).toBeLessThan(TOL)
          expect(Math.abs(dec.sumOfTerms - ref.sum_of_terms) / scale).toBeLessThan(TOL)
          expect(Math.abs(dec.residual) / scale, `${p.key} ${conv} residual`).toBeLessThan(1e-5)
        }
        // The golden's own sum check (float64): its terms add up to its total.
        const ref = p.decomposition_u
        expect(Math.abs(ref.total - ref.sum_of_terms)).toBeLessThan(1e-9 * Math.max(1, ...terms(ref).map(Math.abs)))
        if (variant.name === 'z' || variant.name === 'attn-out') {
          // The hook's value along W_enc[:,f], plus its bias, is the pre-activation.
          const e = Array.from({ length: bundle.config.sae.d_in }, (_, i) => bundle.sae.W_enc.data[i * bundle.config.sae.d_sae + p.feature])
          const bias = bundle.sae.b_enc.data[p.feature] - e.reduce((a, x, i) => a + x * bundle.sae.b_dec.data[i], 0)
          expect(Math.abs(t.v.decomposition.total + bias - p.pre_activation) / Math.max(1, Math.abs(p.pre_activation))).toBeLessThan(TOL)
        }
      }
    })

    it('scores the batch along v and u at R, with the true (gated) activations, fidelity and the logit effect', () => {
      for (const p of points()) {
        const t = traces.get(p.key)!
        expect(relErr(t.v.activationScores, f32(`${p.key}.scores_v`)), `${p.key} scores_v`).toBeLessThan(TOL)
        expect(relErr(t.u.activationScores, f32(`${p.key}.scores_u`)), `${p.key} scores_u`).toBeLessThan(TOL)
        expect(relErr(t.scopePreActivations, f32(`${p.key}.pre_batch`)), `${p.key} pre_batch`).toBeLessThan(TOL)
        expect(relErr(t.scopeActivations, f32(`${p.key}.acts_batch`)), `${p.key} acts_batch`).toBeLessThan(TOL)
        const sameR = (got: number, want: number | null, what: string): void => {
          if (want === null) expect(got, what).toBeNaN()
          else expect(Math.abs(got - want), what).toBeLessThan(TOL)
        }
        sameR(t.v.fidelity.pearson, p.fidelity_pearson, `${p.key} r`)
        sameR(t.v.fidelity.pearsonRelu, p.fidelity_pearson_relu, `${p.key} gated r`)
        if (!variant.frozenLn) expect(t.v.fidelity.pearson).toBeGreaterThan(1 - 1e-6)
        expect(relErr(t.v.tokenScores.scores, f32(`${p.key}.W_E_v`))).toBeLessThan(TOL)
        if (!variant.frozenLn) {
          // u is v (PyTorch's u equals its v here): u's tables are v's, each computed once (PointRows, uIsV).
          expect(relErr(t.u.tokenScores.scores, f32(`${p.key}.W_E_v`))).toBeLessThan(TOL)
          for (const table of ['ovTokens', 'lnOv', 'qkSeed'] as const) expect(t.u.headTables[table].scores).toEqual(t.v.headTables[table].scores)
        }
        expect(t.logitEffect).not.toBeNull()
        expect(relErr(t.logitEffect!.scores, f32(`${p.key}.logit_effect`)), `${p.key} logit effect`).toBeLessThan(TOL)
      }
    })

    it('computes the SAE’s activations at the hook on the engine as PyTorch (the SAE graph reads the hook, hook_z concatenated)', async () => {
      const { nSeq, seqLen, data } = bundle.tokens
      const acts = await engine.saeActs(data, nSeq, seqLen)
      for (const p of points()) {
        const dense = new Float32Array(nSeq * seqLen)
        for (let i = 0; i < acts.nTokens; i++) {
          for (let j = acts.rowPtr[i]; j < acts.rowPtr[i + 1]; j++) if (acts.featureIds[j] === p.feature) dense[i] = acts.values[j]
        }
        expect(relErr(dense, f32(`${p.key}.acts_batch`)), `${p.key} saeActs`).toBeLessThan(TOL)
      }
    })

    it('builds the circuit tables at the last attention layer before R (the SAE’s own for an attention hook), for the trace’s head', () => {
      for (const t of traces.values()) {
        expect(t.circuitLayer).toBe(variant.attnLayers[variant.attnLayers.length - 1])
        // Every head's terms at that layer (the head picker's list); the vocabulary tables of `head` only.
        expect(t.v.decomposition.attn.find((a) => a.layer === t.circuitLayer)!.heads.length).toBe(bundle.config.model.n_heads)
        expect([t.v.headTables.head, t.u.headTables.head, t.qk.head]).toEqual([t.head, t.head, t.head])
      }
    })

    // The goldens with --qk (tools/golden_hooks.py): the rotary bundles, whose QK scores depend on both positions.
    if (variant.name.startsWith('neox')) it('gives the exact QK table and pairs at the point’s query and source positions (rotary)', async () => {
      for (const p of points()) {
        const qk = p.qk!
        const t = await traceAt(bundle, engine, { feature: p.feature, sample: p.sample, pos: p.pos }, { sourcePos: qk.source_pos, head: qk.head })
        expect(t.circuitLayer).toBe(qk.layer)
        expect(t.qk.head).toBe(qk.head)
        expect(relErr(t.qk.scores, f32(`${p.key}.qk`)), `${p.key} qk h${qk.head} src ${qk.source_pos}`).toBeLessThan(TOL)
        expect(t.qkPairs.map((x) => x.keyPos)).toEqual(qk.pairs.map((x) => x.key_pos))
        expect(relErr(t.qkPairs.map((x) => x.score), qk.pairs.map((x) => x.score)), `${p.key} pairs`).toBeLessThan(TOL)
      }
    })
  })
}
