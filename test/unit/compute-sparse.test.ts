// TopK → CSR conversion and execution-provider fallback (no model numbers involved).
import { describe, expect, it } from 'vitest'
import { concatCsr, topKToCsr } from '../../main/compute/sparse'
import { candidateProviders, createSession } from '../../main/compute/providers'
import { DataType, GraphBuilder } from '../../main/compute/onnx-builder'

describe('topKToCsr', () => {
  it('keeps the positive activations of each token, feature ids ascending', () => {
    const csr = topKToCsr({
      nTokens: 3,
      k: 3,
      values: Float32Array.of(5, 2, 0, 0, 0, 0, 7, 1, 0.5),
      indices: Int32Array.of(9, 4, 0, 1, 2, 3, 3, 8, 1),
      counts: Int32Array.of(2, 0, 3),
    })
    expect(Array.from(csr.rowPtr)).toEqual([0, 2, 2, 5])
    expect(Array.from(csr.featureIds)).toEqual([4, 9, 1, 3, 8])
    expect(Array.from(csr.values)).toEqual([2, 5, 0.5, 7, 1])
  })

  it('refuses a block where TopK kept fewer than the firing count (it would drop activations)', () => {
    expect(() => topKToCsr({ nTokens: 1, k: 1, values: Float32Array.of(3), indices: Int32Array.of(0), counts: Int32Array.of(2) })).toThrow(/TopK kept 1/)
  })

  it('concatenates blocks', () => {
    const a = topKToCsr({ nTokens: 1, k: 2, values: Float32Array.of(1, 0), indices: Int32Array.of(3, 0), counts: Int32Array.of(1) })
    const b = topKToCsr({ nTokens: 2, k: 2, values: Float32Array.of(2, 1, 4, 0), indices: Int32Array.of(0, 5, 6, 0), counts: Int32Array.of(2, 1) })
    const c = concatCsr([a, b])
    expect(Array.from(c.rowPtr)).toEqual([0, 1, 3, 4])
    expect(Array.from(c.featureIds)).toEqual([3, 0, 5, 6])
  })
})

describe('execution providers', () => {
  it('tries the platform GPU providers first and CPU last', () => {
    expect(candidateProviders('linux')).toEqual(['cuda', 'cpu'])
    expect(candidateProviders('win32')).toEqual(['cuda', 'dml', 'cpu'])
    expect(candidateProviders('darwin')).toEqual(['coreml', 'cpu'])
  })

  it('falls back to CPU when a provider cannot start, and says why', async () => {
    const b = new GraphBuilder()
    const x = b.input('x', DataType.FLOAT, [2])
    b.op('Relu', [x], {}, 'y')
    b.output('y', DataType.FLOAT, [2])
    const created = await createSession(b.build('relu'), process.platform === 'darwin' ? ['cpu'] : ['dml', 'cpu'], { intraOpNumThreads: 1 })
    expect(created.provider).toBe('cpu')
    if (process.platform !== 'darwin' && process.platform !== 'win32') expect(created.skipped.map((s) => s.provider)).toEqual(['dml'])
    await created.session.release()
  })
})
