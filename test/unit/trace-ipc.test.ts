// The trace.* channels end to end: dispatch → handler → the workbench's compute process → traceAt → the
// contract's JSON form, checked against the PyTorch goldens of tools/golden.py; bad input as error data;
// and `feature-tracer trace` as a user runs it (a child process).
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { AblationsJson, Result, TraceComparisonJson, TraceJson, TracePointJson, TraceScopeJson } from '../../common/contract'
import type { Workbench } from '../../main/app/workbench'
import { unwrap } from '../../main/app/dispatch'
import { tempDir, tinyWorkbench, TINY } from './helpers/cache'
import { readGolden, relErr, type Golden, type GoldenPoint } from './helpers/golden'

const TOL = 1e-4
/** Child processes on a machine shared with a training job can be very slow. */
const SLOW = 240_000
const BIN = 'bin/feature-tracer.mjs'

function ok<T>(r: Result<unknown>): T {
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`)
  return r.value as T
}

describe('trace channels on the tiny bundle', () => {
  let wb: Workbench
  let golden: Golden
  let points: GoldenPoint[]
  const traces = new Map<string, TraceJson>()

  beforeAll(async () => {
    wb = tinyWorkbench(tempDir())
    golden = readGolden('test/fixtures/golden/tiny')
    points = golden.points
    for (const p of points) traces.set(p.key, ok(await wb.dispatch('trace.run', { point: { feature: p.feature, sample: p.sample, pos: p.pos } })))
  }, SLOW)
  afterAll(async () => wb?.close())

  it('gives v, u and the activation of every golden point as PyTorch does', () => {
    for (const p of points) {
      const t = traces.get(p.key)!
      expect(t.point).toEqual({ kind: 'corpus', sample: p.sample, pos: p.pos })
      expect(t.tokenId).toBe(p.token)
      expect(relErr(t.v.vector, golden.f32(`${p.key}.v`).data), `${p.key} v`).toBeLessThan(TOL)
      expect(relErr(t.u.vector, golden.f32(`${p.key}.u`).data), `${p.key} u`).toBeLessThan(TOL)
      expect(Math.abs(t.activation - p.activation) / Math.max(1, p.activation)).toBeLessThan(TOL)
      expect(relErr(t.v.activationScores, golden.f32(`${p.key}.scores_v`).data), `${p.key} scores_v`).toBeLessThan(TOL)
    }
  })

  it('returns plain JSON: number arrays, top/bottom lists by default, every vocabulary row on request', async () => {
    const t = traces.get(points[0].key)!
    expect(JSON.parse(JSON.stringify(t)).v.vector).toEqual(t.v.vector)
    expect(Array.isArray(t.sequence)).toBe(true)
    expect(t.v.tokenScores.top).toHaveLength(20)
    expect(t.v.tokenScores.rows).toBeUndefined()

    const p = points[0]
    const all = ok<TraceJson>(await wb.dispatch('trace.run', { point: { feature: p.feature, sample: p.sample, pos: p.pos }, options: { vocabRows: 'all', topK: 5 } }))
    const rows = all.u.headTables.lnOv.rows!
    expect(all.u.tokenScores.top).toHaveLength(5)
    expect(rows.map((r) => r[0]).sort((a, b) => a - b)).toEqual(Array.from({ length: 300 }, (_, i) => i))
    const byId = new Map(all.v.tokenScores.rows!.map(([id, , score]) => [id, score]))
    expect(relErr(Array.from({ length: 300 }, (_, i) => byId.get(i)!), golden.f32(`${p.key}.W_E_v`).data)).toBeLessThan(TOL)
  }, SLOW)

  it('answers trace.point and trace.scope, the two parts the app asks for, as PyTorch does', async () => {
    for (const p of points) {
      const point = { feature: p.feature, sample: p.sample, pos: p.pos }
      const pt = ok<TracePointJson>(await wb.dispatch('trace.point', { point }))
      expect(relErr(pt.v.vector, golden.f32(`${p.key}.v`).data), `${p.key} v`).toBeLessThan(TOL)
      expect(relErr(pt.u.vector, golden.f32(`${p.key}.u`).data), `${p.key} u`).toBeLessThan(TOL)
      expect(pt.v.tokenScores.top).toHaveLength(20)
      expect('activationScores' in pt.v).toBe(false)
      const sc = ok<TraceScopeJson>(await wb.dispatch('trace.scope', { point, rowLimit: 7 }))
      expect(relErr(sc.v.activationScores, golden.f32(`${p.key}.scores_v`).data), `${p.key} scores_v`).toBeLessThan(TOL)
      expect(relErr(sc.u.activationScores, golden.f32(`${p.key}.scores_u`).data), `${p.key} scores_u`).toBeLessThan(TOL)
      expect(relErr(sc.scopeActivations, golden.f32(`${p.key}.acts_batch`).data), `${p.key} acts`).toBeLessThan(TOL)
      expect(sc.v.topRows).toHaveLength(7)
      expect(sc.scope).toEqual(pt.scope)
    }
    const bad = await wb.dispatch('trace.scope', { point: { feature: points[0].feature, sample: 1e6, pos: 0 } })
    expect(bad.ok ? null : bad.error.code).toBe('invalid_request')
    // Prefetch warms the first two distinct batches of the samples given, and refuses a sample outside the corpus.
    expect(ok<{ batches: number }>(await wb.dispatch('trace.prefetch', { samples: points.map((p) => p.sample) })).batches).toBe(new Set(points.map((p) => Math.floor(p.sample / 128))).size)
    const outside = await wb.dispatch('trace.prefetch', { samples: [1e6] })
    expect(outside.ok ? null : outside.error.code).toBe('invalid_request')
  }, SLOW)

  it('answers from one compute process of its own, and keeps it for the open bundle', async () => {
    const { compute } = await wb.compute()
    expect(compute.pid).toBeGreaterThan(0)
    expect(compute.pid).not.toBe(process.pid)
    expect(compute.starts).toBe(1)
    expect(unwrap(await wb.invoke('bundle.info', {})).provider).toBe('cpu')
  })

  it('answers a point part while a batch\'s forward pass runs: a click\'s runs go first', async () => {
    // Each ONNX run takes 150 ms more, and a batch runs in runs of two sequences: the scope takes 12+ runs.
    const held = tinyWorkbench(tempDir(), { compute: { engine: { pauseMsPerRun: 150, forwardChunkTokens: 64, intraOpNumThreads: 1 } } })
    try {
      const p = points[0]
      const point = { feature: p.feature, sample: p.sample, pos: p.pos }
      await (await held.compute()).compute.ready()
      const order: string[] = []
      const scope = held.dispatch('trace.scope', { point }).then((r) => (order.push('scope'), r))
      await new Promise((r) => setTimeout(r, 400)) // the batch's runs have begun
      const pt = ok<TracePointJson>(await held.dispatch('trace.point', { point }).then((r) => (order.push('point'), r)))
      expect(relErr(pt.v.vector, golden.f32(`${p.key}.v`).data)).toBeLessThan(TOL)
      const sc = ok<TraceScopeJson>(await scope)
      expect(relErr(sc.v.activationScores, golden.f32(`${p.key}.scores_v`).data)).toBeLessThan(TOL)
      expect(order).toEqual(['point', 'scope'])
    } finally {
      await held.close()
    }
  }, SLOW)

  it('compares two points and shows a typed prompt', async () => {
    const [p, q] = points
    const same = ok<TraceComparisonJson>(await wb.dispatch('trace.compare', { a: { feature: p.feature, sample: p.sample, pos: p.pos }, b: { feature: p.feature, sample: p.sample, pos: p.pos } }))
    expect(same.cosineV).toBeCloseTo(1, 5)
    const other = ok<TraceComparisonJson>(await wb.dispatch('trace.compare', { a: { feature: p.feature, sample: p.sample, pos: p.pos }, b: { feature: q.feature, sample: q.sample, pos: q.pos }, convention: 'u', topK: 3 }))
    expect(other.tokenScoreDiff.convention).toBe('u')
    expect(other.tokenScoreDiff.moreInA).toHaveLength(3)
    // Each token carries its display text: the one trace.run's full vocabulary rows give that id, and the
    // differences are those of the two traces' own W_E·u scores.
    const [ta, tb] = await Promise.all(
      [p, q].map(async (x) => ok<TraceJson>(await wb.dispatch('trace.run', { point: { feature: x.feature, sample: x.sample, pos: x.pos }, options: { vocabRows: 'all' } }))),
    )
    const rowOf = (t: TraceJson) => new Map(t.u.tokenScores.rows!.map(([id, str, score]) => [id, { str, score }]))
    const [ra, rb] = [rowOf(ta), rowOf(tb)]
    for (const d of [...other.tokenScoreDiff.moreInA, ...other.tokenScoreDiff.moreInB]) {
      expect(d.str_tokens).toBe(ra.get(d.tokenId)!.str)
      expect(d.diff).toBeCloseTo(ra.get(d.tokenId)!.score - rb.get(d.tokenId)!.score, 5)
    }

    const view = ok<{ tokens: { pos: number }[]; strip: { activations: number[] } | null }>(await wb.dispatch('trace.prompt', { prompt: 'hello world', feature: 2 }))
    expect(view.tokens.length).toBeGreaterThan(1)
    expect(view.strip!.activations).toHaveLength(view.tokens.length)
  }, SLOW)

  it.each([
    ['trace.run', {}, 'point'],
    ['trace.run', { point: { feature: -1, sample: 0, pos: 0 } }, 'feature'],
    ['trace.run', { point: { feature: 0, sample: 0 } }, 'point'],
    ['trace.run', { point: { feature: 0, sample: 0, pos: 0, prompt: 'x' } }, 'point'],
    ['trace.run', { point: { feature: 0, sample: 0, pos: 0 }, options: { topK: 0 } }, 'topK'],
    ['trace.run', { point: { feature: 0, sample: 0, pos: 0 }, options: { vocabRows: 'some' } }, 'vocabRows'],
    ['trace.run', { point: { feature: 0, prompt: '', token: 0 } }, 'empty'],
    ['trace.prompt', { prompt: '' }, 'empty'],
    ['trace.compare', { a: { feature: 0, sample: 0, pos: 0 } }, 'b'],
  ])('refuses %s %j as invalid_request data', async (channel, payload, field) => {
    const r = await wb.dispatch(channel, payload)
    expect(r).toEqual({ ok: false, error: { code: 'invalid_request', message: expect.stringContaining(field) } })
  })

  it.each([
    [{ feature: 64, sample: 0, pos: 0 }, /feature 64 does not exist \(the SAE has 64 features, 0…63\)/],
    [{ feature: 0, sample: 10_000, pos: 0 }, /sample 10000 outside/],
    [{ feature: 0, sample: 0, pos: 32 }, /position 32 outside \[0, 32\)/],
    [{ feature: 0, prompt: 'word '.repeat(64), token: 0 }, /n_ctx/],
    [{ feature: 0, prompt: 'abc', token: 99 }, /token 99 outside/],
  ])('answers a point outside the bundle (%j) with invalid_request', async (point, message) => {
    const r = await wb.dispatch('trace.run', { point })
    expect(r.ok).toBe(false)
    if (!r.ok) {
      expect(r.error.code).toBe('invalid_request')
      expect(r.error.message).toMatch(message)
    }
  }, SLOW)

  it('refuses a prompt view of a feature the SAE lacks, and a too-long prompt', async () => {
    expect(await wb.dispatch('trace.prompt', { prompt: 'abc', feature: 64 })).toMatchObject({ ok: false, error: { code: 'invalid_request' } })
    expect(await wb.dispatch('trace.prompt', { prompt: 'word '.repeat(64) })).toMatchObject({ ok: false, error: { code: 'invalid_request', message: expect.stringContaining('n_ctx') } })
  }, SLOW)
})

function cli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

describe('feature-tracer trace', () => {
  it(
    'prints every quantity as JSON, and exits non-zero with a clear message for a bad point',
    async () => {
      const dir = tempDir()
      const env = { XDG_CACHE_HOME: join(dir, 'xdg-cache'), FEATURE_TRACER_USER_DATA: join(dir, 'user') }
      const [good, badPos, usage] = await Promise.all([
        cli(['trace', '--bundle', TINY, '--feature', '2', '--sample', '6', '--pos', '30', '--json'], env),
        cli(['trace', '--bundle', TINY, '--feature', '2', '--sample', '6', '--pos', '32', '--json'], env),
        cli(['trace', '--bundle', TINY, '--feature', '2', '--sample', '6', '--token', '3'], env),
      ])
      expect(good.stderr).toBe('')
      expect(good.code).toBe(0)
      const t = JSON.parse(good.stdout) as TraceJson
      expect(Object.keys(t)).toEqual(expect.arrayContaining(['feature', 'point', 'activation', 'v', 'u', 'qk', 'qkGrid', 'qkPairs', 'logitEffect', 'scope']))
      expect(t.v.vector).toHaveLength(32)
      expect(t.u.vector).toHaveLength(32)
      for (const table of [t.v.tokenScores, t.u.headTables.qkSeed, t.qk, t.logitEffect!]) {
        expect(table.rows!.map((r) => r[0]).sort((a, b) => a - b)).toEqual(Array.from({ length: 300 }, (_, i) => i))
      }

      expect(badPos.code).toBe(1)
      expect(badPos.stdout).toBe('')
      expect(badPos.stderr).toMatch(/^feature-tracer: position 32 outside \[0, 32\) \[invalid_request\]\n$/)
      expect(usage.code).toBe(2)
      expect(usage.stderr).toContain('--sample S --pos P')
    },
    SLOW,
  )

  it(
    '--ablate adds the causal checks (predicted and actual as torch’s hooked forward pass), also as a table',
    async () => {
      const dir = tempDir()
      const env = { XDG_CACHE_HOME: join(dir, 'xdg-cache'), FEATURE_TRACER_USER_DATA: join(dir, 'user') }
      const golden = JSON.parse(readFileSync('test/fixtures/golden/ablation-tiny/golden.json', 'utf-8'))
      const p = golden.points[0]
      const where = ['--bundle', TINY, '--feature', String(p.feature), '--sample', String(p.sample), '--pos', String(p.pos)]
      const [json, text, usage] = await Promise.all([
        cli(['trace', ...where, '--ablate', '--terms', '5', '--json'], env),
        cli(['trace', ...where, '--ablate'], env),
        cli(['trace', ...where, '--terms', '5'], env),
      ])
      expect(json.stderr).toBe('')
      const t = JSON.parse(json.stdout) as TraceJson & { ablations: AblationsJson['ablations']; causalChecks: Omit<AblationsJson, 'ablations'> }
      expect(t.v.vector).toHaveLength(32)
      expect(t.ablations).toHaveLength(5 + 8)
      expect(t.causalChecks.meanSequences).toBe(golden.mean_sequences)
      const byKey = new Map<string, { predicted: number; actual: number }>(p.checks.map((g: { layer: number; head: number; source: number | null }) => [`${g.layer}:${g.head}:${g.source}`, g]))
      for (const a of t.ablations) {
        const g = byKey.get(`${a.layer}:${a.head}:${a.source}`)!
        expect(Math.abs(a.predicted - g.predicted)).toBeLessThan(1e-3)
        expect(Math.abs(a.actual - g.actual)).toBeLessThan(1e-3)
      }
      expect(text.code).toBe(0)
      expect(text.stdout).toMatch(/causal checks \(terms removed from blocks\.1\.hook_resid_mid\): Pearson r of u·term against the true change -?\d\.\d{3}; mean-ablation over corpus sequences 0…23/)
      expect(text.stdout).toMatch(/layer +head +source +predicted +actual +mean_predicted +mean_actual\n/)
      expect(usage.code).toBe(2)
      expect(usage.stderr).toContain('--terms belongs to --ablate')
    },
    SLOW,
  )
})
