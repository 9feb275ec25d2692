import { describe, expect, it } from 'vitest'
import { columnRange, coolwarm, gradientStyle, luminance, normalize } from '../../renderer/components/grid/coolwarm'

describe('coolwarm colour map (pandas background_gradient("coolwarm"))', () => {
  it('is matplotlib coolwarm at the ends and the middle', () => {
    expect(coolwarm(0)).toEqual([59, 76, 192])
    expect(coolwarm(0.5)).toEqual([221, 221, 221])
    expect(coolwarm(1)).toEqual([180, 4, 38])
  })

  it('clamps out-of-range input and paints NaN as the middle', () => {
    expect(coolwarm(-3)).toEqual(coolwarm(0))
    expect(coolwarm(7)).toEqual(coolwarm(1))
    expect(coolwarm(Number.NaN)).toEqual(coolwarm(0.5))
  })

  it('is blue below the middle and red above it, warming step by step', () => {
    for (let i = 0; i < 50; i++) expect(coolwarm(i / 100)[2]).toBeGreaterThan(coolwarm(i / 100)[0])
    for (let i = 51; i <= 100; i++) expect(coolwarm(i / 100)[0]).toBeGreaterThan(coolwarm(i / 100)[2])
    const warmth = [0, 0.25, 0.5, 0.75, 1].map((t) => coolwarm(t)[0] - coolwarm(t)[2])
    expect([...warmth].sort((x, y) => x - y)).toEqual(warmth)
  })

  it('interpolates between the table points', () => {
    const [r, g, b] = coolwarm(0.25 + 1 / 64) // halfway between samples 8 and 9
    expect([r, g, b]).toEqual([Math.round((141 + 152) / 2), Math.round((176 + 185) / 2), Math.round((254 + 255) / 2)])
  })

  it('scales to the column like pandas: min is blue, max is red, a constant column is the middle', () => {
    expect(normalize(2, 2, 10)).toBe(0)
    expect(normalize(10, 2, 10)).toBe(1)
    expect(normalize(6, 2, 10)).toBe(0.5)
    expect(normalize(3, 3, 3)).toBe(0.5)
    expect(gradientStyle(2, 2, 10).backgroundColor).toBe('rgb(59, 76, 192)')
    expect(gradientStyle(10, 2, 10).backgroundColor).toBe('rgb(180, 4, 38)')
  })

  it('chooses light text on dark cells and dark text on light ones (threshold 0.408)', () => {
    expect(luminance([255, 255, 255])).toBeCloseTo(1, 6)
    expect(luminance([0, 0, 0])).toBe(0)
    expect(gradientStyle(0, 0, 1).color).toBe('#f1f1f1')
    expect(gradientStyle(0.5, 0, 1).color).toBe('#000000')
    expect(gradientStyle(1, 0, 1).color).toBe('#f1f1f1')
  })

  it('finds the range of the finite values', () => {
    expect(columnRange([3, Number.NaN, -1, 2])).toEqual({ min: -1, max: 3 })
    expect(columnRange([])).toBeNull()
  })
})
