import { describe, expect, it } from 'vitest'
import {
  colourScale,
  columnRange,
  coolwarm,
  diverging,
  gradientStyle,
  legendColours,
  luminance,
  normalize,
  scaleStyle,
  sequential,
  symmetricBound,
} from '../../renderer/components/grid/coolwarm'

describe('coolwarm colour map (pandas background_gradient("coolwarm"), the named option)', () => {
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

describe('scales that mean one thing (the default)', () => {
  const white = 'rgb(255, 255, 255)'

  it('paints a non-negative quantity from white at 0 to the deepest red at the bound, darkening step by step', () => {
    expect(sequential(0)).toEqual([255, 255, 255])
    expect(sequential(1)).toEqual([165, 15, 21])
    expect(sequential(-2)).toEqual(sequential(0))
    expect(sequential(Number.NaN)).toEqual(sequential(0))
    const lum = [0, 0.2, 0.4, 0.6, 0.8, 1].map((t) => luminance(sequential(t)))
    expect([...lum].sort((a, b) => b - a)).toEqual(lum)
    for (let i = 1; i <= 10; i++) expect(sequential(i / 10)[0]).toBeGreaterThan(sequential(i / 10)[2]) // never blue
  })

  it('scales activations to the feature maximum, not to the column: the same value is the same colour in every grid', () => {
    // The case: 3.3681 of a feature whose maximum is 4.17, in a top-activation grid spanning
    // 3.35–3.41 and an interval grid spanning 0.2–3.37. Per column, coolwarm made it blue in one, salmon in the other.
    const top = colourScale('sequential', [3.35, 3.3681, 3.41], 'zero', 4.17)
    const intervals = colourScale('sequential', [0.2, 1.1, 3.3681], 'zero', 4.17)
    expect(scaleStyle(3.3681, top)).toEqual(scaleStyle(3.3681, intervals))
    expect(scaleStyle(0, top).backgroundColor).toBe(white)
    expect(scaleStyle(4.17, top).backgroundColor).toBe('rgb(165, 15, 21)')
    const rgb = sequential(3.3681 / 4.17)
    expect(rgb[0]).toBeGreaterThan(rgb[2]) // 80 % of the maximum reads as strong and positive, not blue
    // Per-column coolwarm, kept as an option, is what the issue measured.
    const pandas = colourScale('sequential', [3.35, 3.3681, 3.41], 'coolwarm', 4.17)
    expect(scaleStyle(3.35, pandas).backgroundColor).toBe('rgb(59, 76, 192)')
  })

  it('without a feature maximum, ends at the largest value; an all-zero column stays white', () => {
    const s = colourScale('sequential', [0, 1, 2], 'zero')
    expect(s.bound).toBe(2)
    expect(scaleStyle(2, s).backgroundColor).toBe('rgb(165, 15, 21)')
    const zeros = colourScale('sequential', [0, 0, 0], 'zero')
    expect(scaleStyle(0, zeros).backgroundColor).toBe(white)
  })

  it('paints a signed quantity symmetrically around a white zero: ±x have the same depth in red and blue', () => {
    expect(diverging(0)).toEqual([255, 255, 255])
    expect(diverging(1)).toEqual(sequential(1))
    expect(diverging(-1)).toEqual([8, 69, 148])
    const s = colourScale('diverging', [-0.5, 2, 1], 'zero')
    expect(s.bound).toBe(symmetricBound([-0.5, 2, 1]))
    expect(scaleStyle(0, s).backgroundColor).toBe(white)
    for (const x of [0.3, 1, 2]) {
      const red = diverging(x / s.bound)
      const blue = diverging(-x / s.bound)
      expect(red[0]).toBeGreaterThan(red[2])
      expect(blue[2]).toBeGreaterThan(blue[0])
      expect(Math.abs(luminance(red) - luminance(blue))).toBeLessThan(0.12)
    }
  })

  it('draws legends from white for the default scales and from blue for coolwarm', () => {
    expect(legendColours(colourScale('sequential', [1], 'zero'))[0]).toBe(white)
    const div = legendColours(colourScale('diverging', [-1, 1], 'zero'))
    expect(div[Math.floor(div.length / 2)]).toBe(white)
    expect(legendColours(colourScale('sequential', [1, 2], 'coolwarm'))[0]).toBe('rgb(59, 76, 192)')
  })
})
