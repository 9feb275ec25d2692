// Two decompositions matched term by term (issue 14 §6), on hand-made ones.
import { describe, expect, it } from 'vitest'
import { matchTerms, type DecomposedPoint } from '../../main/trace/compare'

// A at position 2 of "a b c", B at position 1 of "x y": one layer of two heads, one MLP.
const A: DecomposedPoint = {
  pos: 2,
  strTokens: ['a', 'b', 'c'],
  decomposition: { embed: 1, pos: 0.5, mlpOut: [2], attn: [{ layer: 0, b_O: 0.1, heads: [[0.3, 0.2, 0.4], [0, 1.5, 0.25]], headsOv: [] }] },
}
const B: DecomposedPoint = {
  pos: 1,
  strTokens: ['x', 'y'],
  decomposition: { embed: 0.75, pos: 0.5, mlpOut: [-1], attn: [{ layer: 0, b_O: 0.1, heads: [[0.2, 0.4], [0.5, 0.25]], headsOv: [] }] },
}

describe('matchTerms', () => {
  const terms = matchTerms(A, B)
  const find = (kind: string, head: number | null = null, offset: number | null = null) => terms.find((t) => t.kind === kind && t.head === head && t.offset === offset)!

  it('matches attention terms by head and source − destination, not by absolute source', () => {
    // Head 1 one token back: A's source 1 ("b", 1.5) beside B's source 0 ("x", 0.5).
    expect(find('attn', 1, -1)).toMatchObject({ layer: 0, a: 1.5, b: 0.5, diff: 1, tokenA: 'b', tokenB: 'x' })
    expect(find('attn', 0, 0)).toMatchObject({ a: 0.4, b: 0.4, diff: 0, tokenA: 'c', tokenB: 'y' })
    // Two back exists only at A: B's side is 0 and has no token.
    expect(find('attn', 0, -2)).toMatchObject({ a: 0.3, b: 0, tokenA: 'a', tokenB: null })
  })

  it('keeps every term once, each side summing to its own decomposition, |diff| descending', () => {
    // embed, pos, mlp_out, b_O, 2 heads × offsets {0, −1, −2}
    expect(terms).toHaveLength(4 + 6)
    expect(terms.reduce((s, t) => s + t.a, 0)).toBeCloseTo(1 + 0.5 + 2 + 0.1 + 0.9 + 1.75, 12)
    expect(terms.reduce((s, t) => s + t.b, 0)).toBeCloseTo(0.75 + 0.5 - 1 + 0.1 + 0.6 + 0.75, 12)
    expect(terms[0]).toMatchObject({ kind: 'mlp_out', layer: 0, a: 2, b: -1, diff: 3 })
    const abs = terms.map((t) => Math.abs(t.diff))
    expect(abs).toEqual([...abs].sort((x, y) => y - x))
    expect(find('embed').diff).toBeCloseTo(0.25, 12)
  })
})
