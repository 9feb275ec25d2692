// The scatter plots' shared axes (renderer/components/trace/axes.ts): ranges, round ticks, labels and the
// value → pixel mapping, on numbers whose answers are worked out by hand.
import { describe, expect, it } from 'vitest'
import { frame, niceTicks, rangeOf, tickLabel, tickStep, unionRange } from '../../renderer/components/trace/axes'

describe('scatter axes', () => {
  it('pads a range by a share of its width, skips non-finite values, and widens a single value', () => {
    expect(rangeOf([0, 10, NaN, Infinity], 0.1)).toEqual({ lo: -1, hi: 11 })
    expect(rangeOf([2, 3], 0, [0])).toEqual({ lo: 0, hi: 3 })
    expect(rangeOf([5])).toEqual({ lo: 4, hi: 6 })
    expect(rangeOf([])).toEqual({ lo: -1, hi: 1 })
    expect(unionRange({ lo: -1, hi: 2 }, { lo: 0, hi: 5 })).toEqual({ lo: -1, hi: 5 })
  })

  it('steps by 1, 2 or 5 times a power of ten, ticks at its multiples inside the range', () => {
    expect(tickStep(0, 1)).toBe(0.2) // 0.2 per tick is 2·10⁻¹
    expect(tickStep(-3.7, 16.3)).toBe(5) // 20 / 5 = 4 ≥ √10 → 5
    expect(tickStep(-3.7, 12.1)).toBe(2) // 15.8 / 5 = 3.16 < √10 → 2
    expect(tickStep(0, 700)).toBe(100) // 140: 1.4 < √2 → 1·10²
    expect(niceTicks(0, 1)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1])
    expect(niceTicks(-3.7, 16.3)).toEqual([0, 5, 10, 15])
    expect(niceTicks(-3.7, 12.1)).toEqual([-2, 0, 2, 4, 6, 8, 10, 12])
    expect(niceTicks(-0.33, 0.12)).toEqual([-0.3, -0.2, -0.1, 0, 0.1])
    expect(Object.is(niceTicks(-3.7, 16.3)[0], -0)).toBe(false)
  })

  it('writes a tick with the decimals its step needs', () => {
    expect(tickLabel(0.4, 0.2)).toBe('0.4')
    expect(tickLabel(10, 5)).toBe('10')
    expect(tickLabel(-0.05, 0.05)).toBe('-0.05')
    expect(tickLabel(2e-5, 1e-5)).toBe('2.0e-5')
  })

  it('maps the range onto the plotting area, y upwards', () => {
    const { sx, sy } = frame(200, 100, { l: 20, r: 10, t: 10, b: 20 }, { lo: 0, hi: 17 }, { lo: -1, hi: 1 })
    expect(sx(0)).toBe(20)
    expect(sx(17)).toBe(190)
    expect(sy(-1)).toBe(80)
    expect(sy(1)).toBe(10)
    expect(sy(0)).toBe(45)
  })
})
