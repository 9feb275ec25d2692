// The supervised compute worker: round trip, crash → restart, cancel → terminate.
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

  it('cancels a running request by terminating the worker, then runs the queued ones on a new worker', async () => {
    const starts = client.starts
    const ac = new AbortController()
    const t0 = Date.now()
    const blocked = client.blockForTest(30_000, { signal: ac.signal })
    const queued = client.forward(tokens, 1, seqLen, ['logits'])
    setTimeout(() => ac.abort(), 200)
    await expect(blocked).rejects.toBeInstanceOf(ComputeCancelledError)
    expect(Date.now() - t0).toBeLessThan(10_000)
    const out = await queued
    expect(relErr(out.logits.data, golden.f32(`${p.key}.logits`).data)).toBeLessThanOrEqual(1e-4)
    expect(client.starts).toBe(starts + 1)
  })

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

  it('fails to start on a broken bundle with the BundleError', async () => {
    await expect(ComputeWorkerClient.start({ bundleDir: 'test/fixtures/no-such-bundle' })).rejects.toBeInstanceOf(BundleError)
  })
})
