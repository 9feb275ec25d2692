// The supervised compute worker: round trip, crash → restart, cancel → answered at once while the worker
// finishes its run (terminated only when stuck), and a dispose in the middle of a native run.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadBundle, BundleError } from '../../main/bundle'
import { ComputeCancelledError, ComputeWorkerClient, ComputeWorkerCrashedError } from '../../main/compute/worker-client'
import { readGolden, relErr } from './helpers/golden'

const TINY = 'test/fixtures/tiny'

describe('ComputeWorkerClient on the tiny bundle', () => {
  let client: ComputeWorkerClient
  let tokens: Int32Array
  let seqLen: number
  const golden = readGolden('test/fixtures/golden/tiny')
  const p = golden.points[0]

  beforeAll(async () => {
    const bundle = await loadBundle(TINY)
    seqLen = bundle.tokens.seqLen
    tokens = bundle.tokens.data.slice(p.sample * seqLen, (p.sample + 1) * seqLen)
    client = await ComputeWorkerClient.start({ bundleDir: TINY, engine: { providers: ['cpu'], intraOpNumThreads: 1 } })
  })
  afterAll(() => client?.dispose())

  const expectGoldenLogits = async (): Promise<void> => {
    const out = await client.forward(tokens, 1, seqLen, ['logits'])
    expect(out.logits.dims).toEqual([1, seqLen, 300])
    expect(relErr(out.logits.data, golden.f32(`${p.key}.logits`).data)).toBeLessThanOrEqual(1e-4)
  }

  it('round-trips forward and saeActs through the worker, leaving the caller its tokens', async () => {
    expect(client.provider).toBe('cpu')
    await expectGoldenLogits()
    const acts = await client.saeActs(tokens, 1, seqLen)
    expect(acts.values.length).toBe(golden.f32(`${p.key}.seq_acts_val`).data.length)
    expect(acts.rowPtr).toBeInstanceOf(Uint32Array)
    expect(tokens.length).toBe(seqLen) // not detached by the transfer
    const hook = 'blocks.1.attn.hook_pattern'
    const both = await client.forward(tokens, 1, seqLen, [hook, 'blocks.0.hook_resid_mid', 'logits'])
    expect(relErr(both[hook].data, golden.f32(`${p.key}.${hook}`).data)).toBeLessThanOrEqual(1e-4)
    expect(relErr(both.logits.data, golden.f32(`${p.key}.logits`).data)).toBeLessThanOrEqual(1e-4)
  })

  it('reports engine errors as errors of the request, and keeps the worker', async () => {
    const starts = client.starts
    await expect(client.saeActs(Int32Array.of(0, 100000), 1, 2)).rejects.toThrow(/outside/)
    expect(client.starts).toBe(starts)
  })

  it.each(['throw', 'exit'] as const)('restarts after a crash (%s) and rejects the request that was running', async (how) => {
    const starts = client.starts
    await expect(client.crashForTest(how)).rejects.toBeInstanceOf(ComputeWorkerCrashedError)
    await expectGoldenLogits()
    expect(client.starts).toBe(starts + 1)
  })

  it('answers a cancelled running request at once, lets the worker finish the run, then serves the queue on it', async () => {
    const starts = client.starts
    const ac = new AbortController()
    const t0 = Date.now()
    const blocked = client.blockForTest(1500, { signal: ac.signal })
    const queued = client.forward(tokens, 1, seqLen, ['logits'])
    setTimeout(() => ac.abort(), 200)
    await expect(blocked).rejects.toBeInstanceOf(ComputeCancelledError)
    expect(Date.now() - t0).toBeLessThan(1400)
    const out = await queued
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1500) // it waited for the run: one request at a time
    expect(relErr(out.logits.data, golden.f32(`${p.key}.logits`).data)).toBeLessThanOrEqual(1e-4)
    expect(client.starts).toBe(starts)
  })

  it('retires a cancelled worker still busy after the grace period and runs the queue on a new one', async () => {
    const stuck = await ComputeWorkerClient.start({ bundleDir: TINY, engine: { providers: ['cpu'], intraOpNumThreads: 1 }, finishGraceMs: 300 })
    try {
      const ac = new AbortController()
      const t0 = Date.now()
      const blocked = stuck.blockForTest(30_000, { signal: ac.signal })
      const queued = stuck.forward(tokens, 1, seqLen, ['logits'])
      setTimeout(() => ac.abort(), 100)
      await expect(blocked).rejects.toBeInstanceOf(ComputeCancelledError)
      const out = await queued
      expect(Date.now() - t0).toBeLessThan(20_000)
      expect(relErr(out.logits.data, golden.f32(`${p.key}.logits`).data)).toBeLessThanOrEqual(1e-4)
      expect(stuck.starts).toBe(2)
    } finally {
      await stuck.dispose()
    }
  }, 60_000)

  it('cancels a queued request without touching the running one', async () => {
    const starts = client.starts
    const ac = new AbortController()
    const running = client.blockForTest(300)
    const queued = client.saeActs(tokens, 1, seqLen, { signal: ac.signal })
    ac.abort()
    await expect(queued).rejects.toBeInstanceOf(ComputeCancelledError)
    await running
    expect(client.starts).toBe(starts)
  })

  it('survives a dispose in the middle of a native ONNX run (terminating the thread there aborts the process)', async () => {
    // A forward pass long enough to be inside onnxruntime-node's run() when dispose comes.
    const bundle = await loadBundle(TINY)
    const reps = 300
    const big = new Int32Array(bundle.tokens.data.length * reps)
    for (let r = 0; r < reps; r++) big.set(bundle.tokens.data, r * bundle.tokens.data.length)
    const nSeq = bundle.tokens.nSeq * reps
    const other = await ComputeWorkerClient.start({ bundleDir: TINY, engine: { providers: ['cpu'], intraOpNumThreads: 1 } })
    const t0 = Date.now()
    await other.forward(big, nSeq, seqLen, ['blocks.0.mlp.hook_post'])
    const oneRun = Date.now() - t0
    const run = other.forward(big, nSeq, seqLen, ['blocks.0.mlp.hook_post']).then(
      () => 'answered',
      (e: unknown) => e,
    )
    await new Promise((r) => setTimeout(r, oneRun * 0.4))
    await other.dispose()
    expect(await run).toBeInstanceOf(ComputeCancelledError)
    // Past the end of that run, where a thread terminated inside it would have aborted the process.
    await new Promise((r) => setTimeout(r, oneRun))
    // Still here (an abort would have ended this test process), and the other client still answers.
    await expectGoldenLogits()
  }, 120_000)

  it('fails to start on a broken bundle with the BundleError', async () => {
    await expect(ComputeWorkerClient.start({ bundleDir: 'test/fixtures/no-such-bundle' })).rejects.toBeInstanceOf(BundleError)
  })
})
