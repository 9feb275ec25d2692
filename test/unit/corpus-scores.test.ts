// Whole-corpus activation scores (issue 5 §2): main/trace's corpusScores against the PyTorch goldens of
// tools/golden.py (the tiny corpus is one 128-sequence batch, so the goldens' batch is the whole corpus),
// then the job through the handler table — its own process, progress, cancel, busy, bad input — and its
// events through serve mode's event stream.
import { request } from 'node:http'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadBundle, type Bundle } from '../../main/bundle'
import { OrtEngine } from '../../main/compute/ort-engine'
import type { CorpusScoresJson, JobDone, JobProgress, Result } from '../../common/contract'
import type { Workbench } from '../../main/app/workbench'
import { startServer } from '../../main/transports/serve/server'
import { corpusScores, scatterSample, type CorpusScores } from '../../main/trace'
import { tempDir, tinyWorkbench, TINY } from './helpers/cache'
import { readGolden, relErr, type Golden, type GoldenPoint } from './helpers/golden'

const TOL = 1e-4
/** Child processes on a machine shared with a training job can be very slow. */
const SLOW = 240_000

type Point = GoldenPoint & { batch_start: number; batch_size: number; fidelity_pearson: number; fidelity_pearson_relu: number }

function ok<T>(r: Result<unknown>): T {
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`)
  return r.value as T
}

describe('corpusScores on the tiny bundle', () => {
  let bundle: Bundle
  let engine: OrtEngine
  let golden: Golden
  const results = new Map<string, CorpusScores>()
  const points = (): Point[] => golden.points as Point[]

  beforeAll(async () => {
    bundle = await loadBundle(TINY)
    engine = await OrtEngine.create(bundle, { providers: ['cpu'], intraOpNumThreads: 2 })
    golden = readGolden('test/fixtures/golden/tiny')
    for (const p of points()) {
      for (const convention of ['v', 'u'] as const) {
        // Chunks of 5 sequences: the last one is short, and no chunk lines up with the golden's batch.
        results.set(`${p.key}.${convention}`, await corpusScores(bundle, engine, { feature: p.feature, sample: p.sample, pos: p.pos }, { convention, chunkSeqs: 5 }))
      }
    }
  }, SLOW)
  afterAll(async () => engine?.dispose())

  it('scores the sequences of the golden batch as PyTorch does, along v and u', () => {
    for (const p of points()) {
      const { seqLen } = bundle.tokens
      const batch = (a: Float32Array) => a.subarray(p.batch_start * seqLen, (p.batch_start + p.batch_size) * seqLen)
      for (const c of ['v', 'u'] as const) {
        const r = results.get(`${p.key}.${c}`)!
        expect(r.scores).toHaveLength(bundle.tokens.nSeq * seqLen)
        expect(relErr(batch(r.scores), golden.f32(`${p.key}.scores_${c}`).data), `${p.key} scores_${c}`).toBeLessThan(TOL)
        expect(relErr(batch(r.preActivations), golden.f32(`${p.key}.pre_batch`).data), `${p.key} pre`).toBeLessThan(TOL)
        expect(relErr(r.vector, golden.f32(`${p.key}.${c}`).data)).toBeLessThan(TOL)
      }
    }
  })

  it('measures fidelity as the golden does (v), and the scatter follows the same prediction', () => {
    for (const p of points()) {
      const r = results.get(`${p.key}.v`)!
      expect(Math.abs(r.fidelity.pearson - p.fidelity_pearson), p.key).toBeLessThan(TOL)
      expect(Math.abs(r.fidelity.pearsonRelu - p.fidelity_pearson_relu), p.key).toBeLessThan(TOL)
      const worst = r.fidelity.disagreements[0]
      const i = worst.batch * bundle.tokens.seqLen + worst.pos
      expect(worst.preActivation).toBeCloseTo(r.preActivations[i], 5)
      expect(worst.predicted).toBeCloseTo(r.preActivation + r.scores[i] - r.dotResidMid, 4)
      for (let k = 0; k < r.fidelity.scatter.token.length; k += 37) {
        const t = r.fidelity.scatter.token[k]
        expect(r.fidelity.scatter.preActivation[k]).toBe(r.preActivations[t])
      }
    }
  })

  it('gives the top and bottom rows, and a histogram of every token', () => {
    const r = results.get('p0.u')!
    expect(r.top[0].score).toBe(Math.max(...r.scores))
    expect(r.bottom[0].score).toBe(Math.min(...r.scores))
    expect(r.top[0].label).toBe(`${r.top[0].batch}/${r.top[0].pos}`)
    expect(r.top).toHaveLength(100)
    expect(r.histogram.counts.reduce((a, b) => a + b, 0)).toBe(r.scores.length)
    expect(r.histogram.edges).toHaveLength(51)
  })

  it('samples scatter points over the corpus and over the active tokens', () => {
    const n = 10_000
    const pre = new Float32Array(n).map((_, i) => (i % 1000 === 0 ? 1 : -1))
    const s = scatterSample(new Float32Array(n).fill(-1), pre, 100)
    expect(Array.from(s.token).filter((t) => pre[t] > 0)).toHaveLength(10) // all 10 active tokens, though 1 in 1000
    expect(s.token.length).toBeGreaterThanOrEqual(50)
  })
})

type ScoresDone = Extract<JobDone, { kind: 'trace.corpusScores' }>
let jobs = 0

/** Starts a job (with an id of ours) through dispatch and resolves with its done event; `onProgress` may cancel it. */
async function runJob(
  wb: Workbench,
  payload: object,
  onProgress?: (p: JobProgress, jobId: string) => void,
): Promise<{ jobId: string; progress: JobProgress[]; done: ScoresDone }> {
  const progress: JobProgress[] = []
  const jobId = `scores-${++jobs}`
  const done = new Promise<ScoresDone>((resolve) => {
    const off = wb.subscribe((event, p) => {
      if (event === 'job.progress' && (p as JobProgress).jobId === jobId) {
        progress.push(p as JobProgress)
        onProgress?.(p as JobProgress, jobId)
      }
      if (event === 'job.done' && (p as JobDone).jobId === jobId) {
        off()
        resolve(p as ScoresDone)
      }
    })
  })
  expect(ok<{ jobId: string }>(await wb.dispatch('trace.corpusScores', { ...payload, jobId })).jobId).toBe(jobId)
  return { jobId, progress, done: await done }
}

describe('trace.corpusScores: a job in its own process', () => {
  let wb: Workbench
  let golden: Golden

  beforeAll(() => {
    // Chunks of 2 sequences with a pause after each: long enough to watch and to cancel.
    wb = tinyWorkbench(tempDir(), { corpusScores: { chunkSeqs: 2, pauseMsPerChunk: 150 } })
    golden = readGolden('test/fixtures/golden/tiny')
  })
  afterAll(async () => wb?.close())

  it('reports progress and ends with the result, which the result channel repeats', async () => {
    const p = golden.points[4]
    const { jobId, progress, done } = await runJob(wb, { point: { feature: p.feature, sample: p.sample, pos: p.pos }, convention: 'u', rowLimit: 10 })
    expect(done).toMatchObject({ kind: 'trace.corpusScores', jobId, outcome: 'done' })
    const total = 24 * 32
    expect(progress.map((x) => x.doneTokens)).toEqual(Array.from({ length: 13 }, (_, i) => i * 64))
    expect(progress.every((x) => x.jobId === jobId && x.kind === 'trace.corpusScores' && x.totalTokens === total)).toBe(true)
    expect(progress.at(-1)!.etaSec).toBe(0)

    const r = done.result!
    expect(r.top).toHaveLength(10)
    const scores = golden.f32(`${p.key}.scores_u`).data
    const sorted = Array.from(scores).sort((a, b) => b - a)
    expect(relErr(r.top.map((row) => row.score), sorted.slice(0, 10))).toBeLessThan(TOL)
    for (const row of r.top) expect(Math.abs(row.score - scores[row.batch * 32 + row.pos])).toBeLessThan(TOL * Math.abs(sorted[0]))
    expect(r.fidelity.scatter.token.length).toBeGreaterThan(0)
    expect(ok<CorpusScoresJson>(await wb.dispatch('trace.corpusScores.result', { jobId }))).toEqual(r)
    expect(await wb.dispatch('trace.corpusScores.result', { jobId: 'nope' })).toMatchObject({ ok: false, error: { code: 'not_found' } })
  }, SLOW)

  it('cancels a running job, refuses a second one meanwhile, and forgets unknown ids', async () => {
    const point = { feature: 1, sample: 3, pos: 7 }
    let cancelled: Promise<Result<unknown>> | null = null
    let second: Promise<Result<unknown>> | null = null
    const { jobId, progress, done } = await runJob(wb, { point }, (x, id) => {
      if (!cancelled && x.doneTokens >= 128) {
        second = wb.dispatch('trace.corpusScores', { point, jobId: 'second' })
        cancelled = wb.dispatch('job.cancel', { jobId: id })
      }
    })
    expect(await cancelled).toEqual({ ok: true, value: { cancelled: true } })
    expect(await second).toMatchObject({ ok: false, error: { code: 'busy' } })
    expect(done).toEqual({ kind: 'trace.corpusScores', jobId, outcome: 'cancelled' })
    expect(progress.at(-1)!.doneTokens).toBeLessThan(24 * 32)
    expect(await wb.dispatch('job.cancel', { jobId })).toEqual({ ok: true, value: { cancelled: false } })
    expect(await wb.dispatch('trace.corpusScores.result', { jobId })).toMatchObject({ ok: false, error: { code: 'not_found' } })
  }, SLOW)

  it.each([
    [{ point: { feature: 64, sample: 0, pos: 0 } }, /feature 64 does not exist/],
    [{ point: { feature: 0, sample: 24, pos: 0 } }, /sample 24 outside/],
    [{ point: { feature: 0, prompt: 'word '.repeat(64), token: 0 } }, /n_ctx/],
    [{ point: { feature: 0, sample: 0, pos: 0 }, convention: 'w' }, /convention/],
    [{ point: { feature: 0, sample: 0, pos: 0 }, bins: 0 }, /bins/],
    [{ point: { feature: 0, sample: 0, pos: 0 }, jobId: 'a b' }, /job id/],
  ])('refuses %j at once as invalid_request', async (payload, message) => {
    const r = await wb.dispatch('trace.corpusScores', { jobId: 'bad', ...payload })
    expect(r).toMatchObject({ ok: false, error: { code: 'invalid_request', message: expect.stringMatching(message) } })
  })
})

describe('trace.corpusScores through serve mode', () => {
  it('pushes its progress and its result on the event stream', async () => {
    const wb = tinyWorkbench(tempDir())
    const rendererDir = mkdtempSync(join(tempDir(), 'renderer-'))
    writeFileSync(join(rendererDir, 'index.html'), '<!doctype html>')
    const server = await startServer({ port: 0, rendererDir, dispatch: wb.dispatch, subscribe: (l) => wb.subscribe(l) })
    try {
      const events: { event: string; payload: { jobId: string } }[] = []
      const streamDone = new Promise<void>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: server.port, path: `/api/events?token=${server.token}` }, (res) => {
          let buf = ''
          res.on('data', (chunk: Buffer) => {
            buf += chunk.toString()
            for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
              const frame = buf.slice(0, i)
              buf = buf.slice(i + 2)
              if (!frame.startsWith('data: ')) continue
              const msg = JSON.parse(frame.slice(6))
              events.push(msg)
              if (msg.event === 'job.done') {
                req.destroy()
                resolve()
              }
            }
          })
        })
        req.on('error', (e) => (events.some((x) => x.event === 'job.done') ? resolve() : reject(e)))
        req.end()
      })
      await new Promise((r) => setTimeout(r, 100)) // the stream is open before the job starts
      const res = await fetch(`${server.url}api/trace.corpusScores`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${server.token}` },
        body: JSON.stringify({ point: { feature: 2, sample: 6, pos: 30 }, jobId: 'served' }),
      })
      const { value } = (await res.json()) as { value: { jobId: string } }
      await streamDone
      const mine = events.filter((e) => e.payload.jobId === value.jobId).map((e) => e.event)
      expect(value.jobId).toBe('served')
      expect(mine[0]).toBe('job.progress')
      expect(mine.at(-1)).toBe('job.done')
      expect((events.at(-1)!.payload as ScoresDone).result!.feature).toBe(2)
    } finally {
      await server.close()
      await wb.close()
    }
  }, SLOW)
})
