// traceAt end to end (engine + pure functions) against the PyTorch goldens of tools/golden.py: every
// quantity of a trace, for both conventions (v: full gradient, u: LN2 scale frozen).
import { existsSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadBundle, type Bundle } from '../../main/bundle'
import { OrtEngine } from '../../main/compute/ort-engine'
import { bundleViews, comparePoints, compareTraces, prefetchScope, promptTokens, promptView, traceAt, TraceInputError, tracePoint, traceScope, traceToJson, type Decomposition, type Trace, type TraceEngine, type VocabScores } from '../../main/trace'
import { readGolden, relErr, type Golden, type GoldenPoint } from './helpers/golden'

const TOL = 1e-4

interface DecompositionJson {
  embed: number
  pos: number
  b_O: number
  earlier_attn_out: number[]
  earlier_mlp_out: number[]
  heads: number[][]
  heads_ov: number[][]
  total: number
  sum_of_terms: number
}

interface PointJson extends GoldenPoint {
  batch_start: number
  batch_size: number
  circuit_source_pos: number
  circuit_heads: number[]
  best_head: number
  fidelity_pearson: number
  fidelity_pearson_relu: number
  W_E_v_top: [number, number][]
  W_E_v_bottom: [number, number][]
  decomposition_v: DecompositionJson
  decomposition_u: DecompositionJson
}

/**
 * Every term of a decomposition in one array, so one scale (its largest term) judges them all. These goldens
 * (an SAE on mlp.hook_post) hold each earlier layer's attention as one attn_out term: the trace's per-head
 * terms of those layers, with their b_O, add up to it.
 */
function terms(d: Decomposition | DecompositionJson): number[] {
  if ('attn' in d) {
    const last = d.attn[d.attn.length - 1]
    const earlier = d.attn.slice(0, -1).map((a) => a.heads.flat().reduce((x, y) => x + y, a.b_O))
    return [d.embed ?? NaN, d.pos ?? NaN, last.b_O, ...earlier, ...d.mlpOut, ...last.heads.flat(), ...last.headsOv.flat()]
  }
  return [d.embed, d.pos, d.b_O, ...d.earlier_attn_out, ...d.earlier_mlp_out, ...d.heads.flat(), ...d.heads_ov.flat()]
}
const lastHeads = (d: Decomposition): number[] => d.attn[d.attn.length - 1].heads.flat()

const CASES = [
  { name: 'tiny', bundleDir: 'test/fixtures/tiny', goldenDir: 'test/fixtures/golden/tiny' },
  { name: 'demo', bundleDir: 'resources/demo', goldenDir: 'test/fixtures/golden/demo' },
  // Attention scores divided by 1 (use_attn_scale=False) and by sqrt(d_head)·(layer+1): bundle.json's attn_scales.
  { name: 'tiny-attn-unscaled', bundleDir: 'test/fixtures/tiny-attn-unscaled', goldenDir: 'test/fixtures/golden/tiny-attn-unscaled' },
  { name: 'tiny-attn-by-layer', bundleDir: 'test/fixtures/tiny-attn-by-layer', goldenDir: 'test/fixtures/golden/tiny-attn-by-layer' },
]

for (const c of CASES) {
  const present = existsSync(`${c.bundleDir}/bundle.json`) && existsSync(`${c.goldenDir}/golden.json`)
  describe.runIf(present)(`traceAt on ${c.name}`, () => {
    let bundle: Bundle
    let engine: OrtEngine
    let golden: Golden
    const traces = new Map<string, Trace>()

    beforeAll(async () => {
      bundle = await loadBundle(c.bundleDir)
      engine = await OrtEngine.create(bundle, { providers: ['cpu'], intraOpNumThreads: 2 })
      golden = readGolden(c.goldenDir)
      for (const p of golden.points as unknown as PointJson[]) traces.set(p.key, await traceAt(bundle, engine, { feature: p.feature, sample: p.sample, pos: p.pos }))
    }, 120_000)
    afterAll(async () => engine?.dispose())

    const points = (): PointJson[] => golden.points as unknown as PointJson[]
    const f32 = (name: string): Float32Array => golden.f32(name).data

    it('gives v, u, the activation and the point as the golden', () => {
      for (const p of points()) {
        const t = traces.get(p.key)!
        expect(t.tokenId).toBe(p.token)
        expect(relErr(t.v.vector, f32(`${p.key}.v`)), `${p.key} v`).toBeLessThan(TOL)
        expect(relErr(t.u.vector, f32(`${p.key}.u`)), `${p.key} u`).toBeLessThan(TOL)
        expect(Math.abs(t.activation - p.activation) / Math.max(1, p.activation)).toBeLessThan(TOL)
        expect(Math.abs(t.preActivation - p.pre_activation) / Math.max(1, Math.abs(p.pre_activation))).toBeLessThan(TOL)
      }
    })

    it('scores every token of the 128-sequence batch along v and u, with the true activations', () => {
      for (const p of points()) {
        const t = traces.get(p.key)!
        expect(t.scope).toEqual({ kind: 'batch', start: p.batch_start, count: p.batch_size, seqLen: bundle.tokens.seqLen })
        expect(relErr(t.v.activationScores, f32(`${p.key}.scores_v`)), `${p.key} scores_v`).toBeLessThan(TOL)
        expect(relErr(t.u.activationScores, f32(`${p.key}.scores_u`)), `${p.key} scores_u`).toBeLessThan(TOL)
        expect(relErr(t.scopePreActivations, f32(`${p.key}.pre_batch`)), `${p.key} pre_batch`).toBeLessThan(TOL)
        expect(relErr(t.scopeActivations, f32(`${p.key}.acts_batch`)), `${p.key} acts_batch`).toBeLessThan(TOL)
        // The rows follow the seed's table: highest score first, label batch/pos, context with |token|.
        const top = t.v.topRows[0]
        const scores = t.v.activationScores
        expect(top.score).toBe(Math.max(...scores))
        expect(top.label).toBe(`${top.batch}/${top.pos}`)
        expect(top.context).toContain(`|${top.str_tokens}|`)
        expect(top.token_id).toBe(bundle.tokens.data[top.batch * bundle.tokens.seqLen + top.pos])
      }
    })

    it('measures fidelity of the linear prediction with the golden Pearson r', () => {
      for (const p of points()) {
        const f = traces.get(p.key)!.v.fidelity
        expect(Math.abs(f.pearson - p.fidelity_pearson), `${p.key} r`).toBeLessThan(TOL)
        expect(Math.abs(f.pearsonRelu - p.fidelity_pearson_relu), `${p.key} r relu`).toBeLessThan(TOL)
        const worst = f.disagreements[0]
        expect(Math.abs(worst.error)).toBeCloseTo(Math.max(...f.disagreements.map((r) => Math.abs(r.error))), 6)
      }
    })

    it('lists the largest disagreements among the tokens where the feature fires, as PyTorch\'s arrays give them', () => {
      for (const p of points() as (PointJson & { v_dot_resid_mid: number })[]) {
        const rows = traces.get(p.key)!.v.fidelity.firingDisagreements
        const [scores, pre, acts] = [f32(`${p.key}.scores_v`), f32(`${p.key}.pre_batch`), f32(`${p.key}.acts_batch`)]
        const seqLen = bundle.tokens.seqLen
        // pre(x0) + v·(x − x0) − pre(x) at every firing token of the golden batch, |error| descending.
        const want = Array.from(pre.keys())
          .filter((i) => acts[i] > 0)
          .map((i) => p.pre_activation + scores[i] - p.v_dot_resid_mid - pre[i])
          .sort((a, b) => Math.abs(b) - Math.abs(a))
          .slice(0, 100)
        expect(want.length, `${p.key} fires somewhere in its batch`).toBeGreaterThan(0)
        expect(rows).toHaveLength(want.length)
        const scale = Math.max(1, Math.abs(want[0]))
        rows.forEach((r, k) => {
          const i = (r.batch - p.batch_start) * seqLen + r.pos
          expect(acts[i], `${p.key} ${r.label} fires`).toBeGreaterThan(0)
          expect(Math.abs(r.error - want[k]) / scale, `${p.key} row ${k}`).toBeLessThan(TOL)
          expect(Math.abs(r.error - (r.predicted - pre[i])) / scale).toBeLessThan(TOL)
        })
      }
    })

    it('unembeds v (W_E·v, top and bottom 20) and gives the logit effect', () => {
      for (const p of points()) {
        const t = traces.get(p.key)!
        expect(relErr(t.v.tokenScores.scores, f32(`${p.key}.W_E_v`))).toBeLessThan(TOL)
        const ids = (xs: VocabScores['top']): number[] => xs.map((x) => x.tokenId)
        // Ids may swap only where the golden's scores tie within tolerance; compare the score sequences.
        const scale = Math.max(...p.W_E_v_top.map((x) => Math.abs(x[1])))
        expect(relErr(t.v.tokenScores.top.map((x) => x.score), p.W_E_v_top.map((x) => x[1]))).toBeLessThan(TOL)
        expect(relErr(t.v.tokenScores.bottom.map((x) => x.score), p.W_E_v_bottom.map((x) => x[1]))).toBeLessThan(TOL)
        expect(ids(t.v.tokenScores.top).slice(0, 3)).toEqual(p.W_E_v_top.slice(0, 3).map((x) => x[0]))
        expect(scale).toBeGreaterThan(0)
        expect(t.logitEffect).not.toBeNull()
        expect(relErr(t.logitEffect!.scores, f32(`${p.key}.logit_effect`))).toBeLessThan(TOL)
      }
    })

    it('decomposes v·resid_mid and u·resid_mid exactly, heads × sources, with and without the pattern', () => {
      for (const p of points()) {
        const t = traces.get(p.key)!
        for (const [conv, ref] of [['v', p.decomposition_v], ['u', p.decomposition_u]] as const) {
          const dec = t[conv].decomposition
          const scale = Math.max(...terms(ref).map(Math.abs))
          expect(relErr(terms(dec), terms(ref)), `${p.key} ${conv} terms`).toBeLessThan(TOL)
          expect(Math.abs(dec.total - ref.total) / scale, `${p.key} ${conv} total`).toBeLessThan(TOL)
          expect(Math.abs(dec.sumOfTerms - ref.sum_of_terms) / scale).toBeLessThan(TOL)
          expect(Math.abs(dec.residual) / scale, `${p.key} ${conv} residual`).toBeLessThan(1e-5)
        }
        expect(t.sourcePos).toBe(p.circuit_source_pos)
        expect(t.head).toBe(p.best_head)
      }
    })

    it('builds the chosen head’s circuit tables (OV tokens, LN+OV, QK, QK seed) for v and u, every head’s when asked', async () => {
      for (const p of points()) {
        const t = traces.get(p.key)!
        // Without options.head, the best head's tables; each other head's come with a point trace for it.
        expect([t.v.headTables.head, t.u.headTables.head, t.qk.head]).toEqual([p.best_head, p.best_head, p.best_head])
        for (const h of p.circuit_heads) {
          const th = h === p.best_head ? t : await tracePoint(bundle, engine, { feature: p.feature, sample: p.sample, pos: p.pos }, { head: h })
          expect(th.head).toBe(h)
          expect(th.sourcePos).toBe(p.circuit_source_pos)
          // Every head's terms come whichever head's tables do.
          expect(terms(th.v.decomposition)).toEqual(terms(t.v.decomposition))
          expect(th.qk.head).toBe(h)
          for (const conv of ['v', 'u'] as const) {
            const tables = th[conv].headTables
            expect(tables.head).toBe(h)
            expect(relErr(tables.ovTokens.scores, f32(`${p.key}.ov_tokens_${conv}.h${h}`)), `${p.key} ov ${conv} h${h}`).toBeLessThan(TOL)
            expect(relErr(tables.lnOv.scores, f32(`${p.key}.ln_ov_${conv}.h${h}`)), `${p.key} ln_ov ${conv} h${h}`).toBeLessThan(TOL)
            expect(relErr(tables.qkSeed.scores, f32(`${p.key}.qk_seed_${conv}.h${h}`)), `${p.key} qk_seed ${conv} h${h}`).toBeLessThan(TOL)
            expect(relErr(th.qk.scores, f32(`${p.key}.qk_${conv}.h${h}`)), `${p.key} qk h${h}`).toBeLessThan(TOL)
          }
        }
      }
    }, 120_000)

    it('gives the QK grid and pairs of the best head at the point', () => {
      for (const p of points() as (PointJson & { qk_grid: { scores: (number | null)[][] }; qk_pairs: { score: number }[] })[]) {
        const t = traces.get(p.key)!
        const flat = (s: (number | null)[][]): number[] => s.flat().map((x) => x ?? 0)
        expect(relErr(flat(t.qkGrid.scores), flat(p.qk_grid.scores))).toBeLessThan(TOL)
        expect(relErr(t.qkPairs.map((x) => x.score), p.qk_pairs.map((x) => x.score))).toBeLessThan(TOL)
      }
    })

    it('compares two traces by the cosine of their directions, from their point parts alone', async () => {
      const [a, b] = [...traces.values()]
      const cmp = compareTraces(a, a)
      expect(cmp.cosineV).toBeCloseTo(1, 6)
      expect(cmp.tokenScoreDiff.moreInA[0].diff).toBe(0)
      expect(Math.abs(compareTraces(a, b).cosineV)).toBeLessThanOrEqual(1)
      const [pa, pb] = points()
      const at = (p: PointJson) => ({ feature: p.feature, sample: p.sample, pos: p.pos })
      const display = bundleViews(bundle).display
      const { scores: _, ...cmpPoints } = await comparePoints(bundle, engine, at(pa), at(pb), 'u', 7)
      expect(cmpPoints).toEqual(compareTraces(traces.get(pa.key)!, traces.get(pb.key)!, 'u', 7, display))
    })

    it('scores A\'s batch along both points\' vectors, with their Pearson r, as PyTorch\'s scores give them', async () => {
      // Two golden points of one batch: B's scores over A's batch are then PyTorch's scores of B.
      const pa = points()[0]
      const pb = points().find((p) => p !== pa && p.batch_start === pa.batch_start)!
      expect(pb, 'two golden points in one batch').toBeDefined()
      const at = (p: PointJson) => ({ feature: p.feature, sample: p.sample, pos: p.pos })
      const elsewhere = points().find((p) => p.batch_start !== pa.batch_start)
      if (elsewhere) expect((await comparePoints(bundle, engine, at(pa), at(elsewhere), 'u')).scores.pointB).toBe(-1)
      for (const convention of ['u', 'v'] as const) {
        const { scores } = await comparePoints(bundle, engine, at(pa), at(pb), convention)
        const [a, b] = [f32(`${pa.key}.scores_${convention}`), f32(`${pb.key}.scores_${convention}`)]
        expect(scores.scope).toEqual({ kind: 'batch', start: pa.batch_start, count: pa.batch_size, seqLen: bundle.tokens.seqLen })
        expect(relErr(scores.a, a), `${convention} a`).toBeLessThan(TOL)
        expect(relErr(scores.b, b), `${convention} b`).toBeLessThan(TOL)
        // Pearson r in float64 from the golden arrays.
        const n = a.length
        const ma = a.reduce((s, x) => s + x, 0) / n
        const mb = b.reduce((s, x) => s + x, 0) / n
        let sab = 0
        let saa = 0
        let sbb = 0
        for (let i = 0; i < n; i++) {
          sab += (a[i] - ma) * (b[i] - mb)
          saa += (a[i] - ma) ** 2
          sbb += (b[i] - mb) ** 2
        }
        expect(Math.abs(scores.pearson - sab / Math.sqrt(saa * sbb))).toBeLessThan(TOL)
        const seqLen = bundle.tokens.seqLen
        expect(scores.pointA).toBe((pa.sample - pa.batch_start) * seqLen + pa.pos)
        expect(scores.pointB).toBe((pb.sample - pb.batch_start) * seqLen + pb.pos)
      }
    })

    it('serializes a trace to JSON with v, u in full and every vocabulary row with its token id', () => {
      const p = points()[0]
      const t = traces.get(p.key)!
      const json = JSON.parse(JSON.stringify(traceToJson(t, (id) => bundle.tokenizer.tokenString(id)))) as {
        v: { vector: number[]; tokenScores: { rows: [number, string, number][] } }
        u: { headTables: { head: number; lnOv: { rows: [number, string, number][] } } }
      }
      expect(relErr(json.v.vector, f32(`${p.key}.v`))).toBeLessThan(TOL)
      const rows = json.v.tokenScores.rows
      expect(rows.length).toBe(bundle.config.model.d_vocab)
      expect(rows[0][0]).toBe(p.W_E_v_top[0][0])
      expect(new Set(rows.map((r) => r[0])).size).toBe(rows.length)
      expect(json.u.headTables.head).toBe(p.best_head)
      expect(json.u.headTables.lnOv.rows.length).toBe(bundle.config.model.d_vocab)
    })

    it('traces a typed prompt tokenized as the corpus (BOS per bundle.json) and matches the corpus trace', async () => {
      // The first point whose sequence's text tokenizes back to it (random corpora's texts need not; one that
      // re-tokenizes longer than n_ctx is refused, which is not this test's concern).
      const sequenceOf = (q: PointJson): Int32Array => bundle.tokens.data.subarray(q.sample * bundle.tokens.seqLen, (q.sample + 1) * bundle.tokens.seqLen)
      const textOf = (q: PointJson): string => Array.from(sequenceOf(q).subarray(1), (id) => bundle.tokenizer.tokenString(id)).join('')
      const roundTrips = (q: PointJson): boolean => {
        const seq = sequenceOf(q)
        try {
          const ids = promptTokens(bundle, textOf(q))
          return ids.length === seq.length && ids.every((x, i) => x === seq[i])
        } catch (e) {
          if (e instanceof TraceInputError) return false
          throw e
        }
      }
      const p = points().find(roundTrips) ?? points()[0]
      const seq = sequenceOf(p)
      const text = textOf(p)
      const ids = roundTrips(p) ? promptTokens(bundle, text) : []
      if (ids.length === seq.length && ids.every((x, i) => x === seq[i])) {
        const t = await traceAt(bundle, engine, { feature: p.feature, prompt: text, token: p.pos })
        expect(t.scope).toEqual({ kind: 'prompt', seqLen: seq.length })
        expect(relErr(t.v.vector, f32(`${p.key}.v`))).toBeLessThan(TOL)
        expect(relErr(lastHeads(t.u.decomposition), p.decomposition_u.heads.flat())).toBeLessThan(TOL)
      }
      if (ids.length === seq.length && ids.every((x, i) => x === seq[i])) {
        // The prompt view's features are the golden's SAE non-zeros of that sequence.
        const view = await promptView(bundle, engine, text, { topK: 1000, feature: p.feature })
        const idx = golden.i32(`${p.key}.seq_acts_idx`).data
        const val = f32(`${p.key}.seq_acts_val`)
        const got = view.tokens.flatMap((t) => t.top.map((x) => `${t.pos}/${x.feature}`)).sort()
        const want = Array.from({ length: val.length }, (_, i) => `${idx[2 * i]}/${idx[2 * i + 1]}`).sort()
        expect(got).toEqual(want)
        expect(view.strip!.activations[p.pos]).toBeCloseTo(p.activation, 3)
      }
      const uni = await traceAt(bundle, engine, { feature: p.feature, prompt: 'naïve café\t—\u0001\n🙂', token: 1 })
      expect(uni.sequence[0]).toBe(bundle.config.dataset.bos_token_id ?? 0)
      expect(uni.v.activationScores.length).toBe(uni.sequence.length)
      await expect(traceAt(bundle, engine, { feature: p.feature, prompt: '', token: 0 })).rejects.toBeInstanceOf(TraceInputError)
      await expect(traceAt(bundle, engine, { feature: p.feature, prompt: 'word '.repeat(bundle.config.model.n_ctx * 2), token: 0 })).rejects.toThrow(/n_ctx/)
      await expect(traceAt(bundle, engine, { feature: p.feature, prompt: 'abc', token: 99 })).rejects.toThrow(/outside/)
    })
  })
}

describe('a trace in two parts: the point, then the scope', () => {
  it('answers the point part from the point\'s own sequence alone, and the scope part with the batch; both as PyTorch', async () => {
    const bundle = await loadBundle('test/fixtures/tiny')
    const golden = readGolden('test/fixtures/golden/tiny')
    const engine = await OrtEngine.create(bundle, { providers: ['cpu'], intraOpNumThreads: 1 })
    // Record what each part asks of the engine.
    const calls: string[] = []
    const spy: TraceEngine = {
      forward: (tokens, nSeq, seqLen, outputs) => (calls.push(`forward ${nSeq}x${seqLen}`), engine.forward(tokens, nSeq, seqLen, outputs)),
      vocabProducts: (req) => (calls.push('vocabProducts'), engine.vocabProducts(req)),
      projectBlock: (req) => (calls.push(`projectBlock ${req.nSeq}x${req.seqLen}`), engine.projectBlock(req)),
    }
    try {
      for (const p of golden.points as unknown as PointJson[]) {
        const point = { feature: p.feature, sample: p.sample, pos: p.pos }
        calls.length = 0
        const pt = await tracePoint(bundle, spy, point)
        // The point's sequence up to the point: later positions change nothing there (the model is causal).
        expect(calls).toEqual([`forward 1x${p.pos + 1}`, 'vocabProducts'])
        expect(relErr(pt.v.vector, golden.f32(`${p.key}.v`).data)).toBeLessThan(TOL)
        expect(relErr(pt.v.tokenScores.scores, golden.f32(`${p.key}.W_E_v`).data)).toBeLessThan(TOL)
        expect(relErr(pt.u.headTables.lnOv.scores, golden.f32(`${p.key}.ln_ov_u.h${p.best_head}`).data)).toBeLessThan(TOL)
        expect(relErr(terms(pt.v.decomposition), terms(p.decomposition_v))).toBeLessThan(TOL)
        expect(pt.scope).toEqual({ kind: 'batch', start: p.batch_start, count: p.batch_size, seqLen: bundle.tokens.seqLen })

        calls.length = 0
        const sc = await traceScope(bundle, spy, point, { rowLimit: 10 })
        expect(calls).toEqual([`forward 1x${p.pos + 1}`, `projectBlock ${p.batch_size}x${bundle.tokens.seqLen}`])
        expect(relErr(sc.v.activationScores, golden.f32(`${p.key}.scores_v`).data)).toBeLessThan(TOL)
        expect(relErr(sc.u.activationScores, golden.f32(`${p.key}.scores_u`).data)).toBeLessThan(TOL)
        expect(sc.v.topRows).toHaveLength(10)
        expect(sc.v.fidelity.pearson).toBeCloseTo(p.fidelity_pearson, 4)
        expect(sc.u.topRows[0].score).toBe(Math.max(...sc.u.activationScores))
      }
    } finally {
      await engine.dispose()
    }
  }, 120_000)
})

describe('the engine\'s kept blocks and prefetch', () => {
  /** An OrtEngine whose forward passes are counted. */
  async function countingEngine(bundle: Bundle, maxBlockBytes?: number): Promise<{ engine: OrtEngine; forwards: () => number }> {
    const engine = await OrtEngine.create(bundle, { providers: ['cpu'], intraOpNumThreads: 1, maxBlockBytes })
    let n = 0
    const forward = engine.forward.bind(engine)
    engine.forward = (...args) => (n++, forward(...args))
    return { engine, forwards: () => n }
  }

  it('prefetches a batch so its trace scope needs no batch forward pass, and keeps recent blocks, oldest out first', async () => {
    const bundle = await loadBundle('test/fixtures/tiny')
    const golden = readGolden('test/fixtures/golden/tiny')
    const p = golden.points[0] as unknown as PointJson
    const batchKey = `batch:${p.batch_start}:${p.batch_size}`
    const { engine, forwards } = await countingEngine(bundle)
    try {
      await prefetchScope(bundle, engine, p.sample)
      expect(forwards()).toBe(1)
      expect(engine.keptBlocks).toEqual([batchKey])
      const sc = await traceScope(bundle, engine, { feature: p.feature, sample: p.sample, pos: p.pos })
      expect(forwards()).toBe(2) // the point's own sequence only
      expect(relErr(sc.v.activationScores, golden.f32(`${p.key}.scores_v`).data)).toBeLessThan(TOL)
      // Two prompts' scopes are blocks too: all three are kept, least recently used first.
      await traceScope(bundle, engine, { feature: p.feature, prompt: 'def f(x):', token: 1 })
      await traceScope(bundle, engine, { feature: p.feature, prompt: 'import os', token: 1 })
      expect(engine.keptBlocks[0]).toBe(batchKey)
      expect(engine.keptBlocks).toHaveLength(3)
      await traceScope(bundle, engine, { feature: p.feature, sample: p.sample, pos: p.pos })
      expect(engine.keptBlocks.at(-1)).toBe(batchKey)
    } finally {
      await engine.dispose()
    }

    // A budget smaller than one block keeps only the newest.
    const small = await countingEngine(bundle, 1)
    try {
      await prefetchScope(bundle, small.engine, p.sample)
      await traceScope(bundle, small.engine, { feature: p.feature, prompt: 'def f(x):', token: 1 })
      expect(small.engine.keptBlocks).toHaveLength(1)
      const before = small.forwards()
      const sc = await traceScope(bundle, small.engine, { feature: p.feature, sample: p.sample, pos: p.pos })
      expect(small.forwards() - before).toBe(2) // the point's sequence and the batch again
      expect(relErr(sc.u.activationScores, golden.f32(`${p.key}.scores_u`).data)).toBeLessThan(TOL)
    } finally {
      await small.engine.dispose()
    }
  }, 120_000)
})

describe('traceAt with the batch\'s forward pass cut into runs (the compute process\'s engine)', () => {
  it('gives the same trace when each ONNX run takes two sequences, and reuses the batch block', async () => {
    const bundle = await loadBundle('test/fixtures/tiny')
    const golden = readGolden('test/fixtures/golden/tiny')
    const p = golden.points[1] as unknown as PointJson
    // Two sequences per run: the 24-sequence batch runs as 12 runs, between which a click could go first.
    const engine = await OrtEngine.create(bundle, { providers: ['cpu'], intraOpNumThreads: 1, forwardChunkTokens: 2 * bundle.tokens.seqLen })
    try {
      const t = await traceAt(bundle, engine, { feature: p.feature, sample: p.sample, pos: p.pos })
      expect(relErr(t.u.activationScores, golden.f32(`${p.key}.scores_u`).data)).toBeLessThan(TOL)
      expect(relErr(t.u.headTables.lnOv.scores, golden.f32(`${p.key}.ln_ov_u.h${p.best_head}`).data)).toBeLessThan(TOL)
      expect(relErr(t.logitEffect!.scores, golden.f32(`${p.key}.logit_effect`).data)).toBeLessThan(TOL)
      const again = await traceAt(bundle, engine, { feature: p.feature, sample: p.sample, pos: p.pos })
      expect(Array.from(again.v.activationScores)).toEqual(Array.from(t.v.activationScores))
    } finally {
      await engine.dispose()
    }
  }, 300_000)
})
