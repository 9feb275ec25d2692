// Degenerate flags (issue 14 §3) from a feature row's stored statistics, on hand-made rows.
import { describe, expect, it } from 'vitest'
import { degenerateFlags, positionZeroToken } from '../../main/cache/degenerate'

const plain = { count: 500, density: 0.002, max: 4, mean: 0.8, topTokenId: 7, precision: 0.4 }

describe('degenerateFlags', () => {
  it('leaves an ordinary feature and a dead one unflagged', () => {
    expect(degenerateFlags(plain, 0)).toEqual([])
    expect(degenerateFlags({ count: 0, density: 0, max: 0, mean: 0, topTokenId: null, precision: null }, 0)).toEqual([])
  })

  it('flags a feature that fires (almost) only on BOS, and only when BOS is its top token', () => {
    expect(degenerateFlags({ ...plain, topTokenId: 0, precision: 1 }, 0)).toEqual(['bos_only'])
    expect(degenerateFlags({ ...plain, topTokenId: 0, precision: 0.995 }, 0)).toEqual(['bos_only'])
    expect(degenerateFlags({ ...plain, topTokenId: 0, precision: 0.9 }, 0)).toEqual([])
    expect(degenerateFlags({ ...plain, topTokenId: 7, precision: 1 }, 0)).toEqual([])
    // A corpus without a BOS has no BOS-only features.
    expect(degenerateFlags({ ...plain, topTokenId: 0, precision: 1 }, null)).toEqual([])
  })

  it('flags constant firings (the 56 demo features at 0.3176) and dense ones, together when both hold', () => {
    // As the demo's summary stores them: 8,192 BOS firings at 0.31757 and 6 elsewhere, lower.
    const bosConst = { count: 8198, density: 8198 / 1_048_576, max: 0.3175734877586365, mean: 0.3173649180485115, topTokenId: 0, precision: 8192 / 8198 }
    expect(degenerateFlags(bosConst, 0)).toEqual(['bos_only', 'constant'])
    expect(degenerateFlags({ ...plain, mean: 3.999 }, 0)).toEqual(['constant'])
    expect(degenerateFlags({ ...plain, mean: 3.99 }, 0)).toEqual([])
    expect(degenerateFlags({ ...plain, density: 0.1001 }, 0)).toEqual(['dense'])
    expect(degenerateFlags({ ...plain, density: 0.1 }, 0)).toEqual([])
  })
})

describe('positionZeroToken', () => {
  it('is the token every sequence starts with, or null', () => {
    expect(positionZeroToken({ corpus: Int32Array.from([5, 1, 2, 5, 3, 4]), seqLen: 3 })).toBe(5)
    expect(positionZeroToken({ corpus: Int32Array.from([5, 1, 2, 6, 3, 4]), seqLen: 3 })).toBeNull()
    expect(positionZeroToken({ corpus: new Int32Array(0), seqLen: 3 })).toBeNull()
  })
})
