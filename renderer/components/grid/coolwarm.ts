// Colour scales that mean one thing. A non-negative quantity (an activation) is painted on a sequential
// scale from 0 (white) to the feature's maximum, the same in every grid of that feature; a signed one (a
// score, a logit effect, a decomposition term) on a diverging scale symmetric around 0 (white), so a red
// and a blue of the same depth mean the same strength. The notebook's pandas `background_gradient
// ("coolwarm")` (each column's own min..max on matplotlib's coolwarm) stays available as a named option:
// it reads well within a column but says nothing across columns or about zero. Text switches to light
// on dark cells as pandas does. Kept pure so that the e2e test and the unit test check the same numbers
// the grid paints.

/** Moreland's cool-warm map sampled at 33 evenly spaced points (sRGB, 0–255). */
const COOLWARM_33: ReadonlyArray<readonly [number, number, number]> = [
  [59, 76, 192], [68, 90, 204], [77, 104, 215], [87, 117, 225], [98, 130, 234], [108, 142, 241],
  [119, 154, 247], [130, 165, 251], [141, 176, 254], [152, 185, 255], [163, 194, 255], [174, 201, 253],
  [184, 208, 249], [194, 213, 244], [204, 217, 238], [213, 219, 230], [221, 221, 221], [229, 216, 209],
  [236, 211, 197], [241, 204, 185], [245, 196, 173], [247, 187, 160], [247, 177, 148], [247, 166, 135],
  [244, 154, 123], [241, 141, 111], [236, 127, 99], [229, 112, 88], [222, 96, 77], [213, 80, 66],
  [203, 62, 56], [192, 40, 47], [180, 4, 38],
]

export type Rgb = readonly [number, number, number]

/** The coolwarm colour at t ∈ [0, 1] (clamped; NaN maps to the middle). */
export function coolwarm(t: number): Rgb {
  const x = Number.isFinite(t) ? Math.min(1, Math.max(0, t)) : 0.5
  const f = x * (COOLWARM_33.length - 1)
  const i = Math.min(COOLWARM_33.length - 2, Math.floor(f))
  const w = f - i
  const a = COOLWARM_33[i]
  const b = COOLWARM_33[i + 1]
  return [0, 1, 2].map((k) => Math.round(a[k] + (b[k] - a[k]) * w)) as unknown as Rgb
}

/** Where value sits in [min, max]; a constant column is painted with the middle colour, as pandas does. */
export function normalize(value: number, min: number, max: number): number {
  if (!(max > min)) return 0.5
  return (value - min) / (max - min)
}

/** WCAG relative luminance, the measure pandas uses to choose the text colour. */
export function luminance([r, g, b]: Rgb): number {
  const lin = (c: number) => {
    const s = c / 255
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4
  }
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)
}

export interface CellColours {
  [property: string]: string
  backgroundColor: string
  color: string
}

/** Background and text colour for value in a column spanning [min, max] (pandas' threshold 0.408). */
export function gradientStyle(value: number, min: number, max: number): CellColours {
  const rgb = coolwarm(normalize(value, min, max))
  return {
    backgroundColor: `rgb(${rgb[0]}, ${rgb[1]}, ${rgb[2]})`,
    color: luminance(rgb) < 0.408 ? '#f1f1f1' : '#000000',
  }
}

/** The largest |value| (at least 1e-12): the bound of a colour scale symmetric around zero. */
export function symmetricBound(values: Iterable<number>): number {
  const range = columnRange(values)
  return Math.max(1e-12, Math.abs(range?.min ?? 0), Math.abs(range?.max ?? 0))
}

/** min and max of the finite values, or null when there are none. */
export function columnRange(values: Iterable<number>): { min: number; max: number } | null {
  let min = Infinity
  let max = -Infinity
  for (const v of values) {
    if (!Number.isFinite(v)) continue
    if (v < min) min = v
    if (v > max) max = v
  }
  return min <= max ? { min, max } : null
}

/** White to red (matplotlib's Reds, with pure white at 0): the sequential scale of non-negative values. */
const REDS: ReadonlyArray<Rgb> = [
  [255, 255, 255], [254, 224, 210], [252, 187, 161], [252, 146, 114], [251, 106, 74], [239, 59, 44], [203, 24, 29], [165, 15, 21],
]
/** White to blue (matplotlib's Blues): the negative half of the diverging scale. */
const BLUES: ReadonlyArray<Rgb> = [
  [255, 255, 255], [222, 235, 247], [198, 219, 239], [158, 202, 225], [107, 174, 214], [66, 146, 198], [33, 113, 181], [8, 69, 148],
]

function ramp(table: ReadonlyArray<Rgb>, t: number): Rgb {
  const x = Number.isFinite(t) ? Math.min(1, Math.max(0, t)) : 0
  const f = x * (table.length - 1)
  const i = Math.min(table.length - 2, Math.floor(f))
  const w = f - i
  return [0, 1, 2].map((k) => Math.round(table[i][k] + (table[i + 1][k] - table[i][k]) * w)) as unknown as Rgb
}

/** The sequential colour at t ∈ [0, 1]: 0 is white, 1 the deepest red (clamped; NaN is white). */
export function sequential(t: number): Rgb {
  return ramp(REDS, t)
}

/** The diverging colour at t ∈ [−1, 1]: 0 is white, +1 the deepest red, −1 the deepest blue. */
export function diverging(t: number): Rgb {
  return t < 0 ? ramp(BLUES, -t) : ramp(REDS, t)
}

function style(rgb: Rgb): CellColours {
  return { backgroundColor: `rgb(${rgb[0]}, ${rgb[1]}, ${rgb[2]})`, color: luminance(rgb) < 0.408 ? '#f1f1f1' : '#000000' }
}

/** 'zero': sequential from 0 / diverging around 0 (the default); 'coolwarm': pandas' per-column coolwarm. */
export type ColourMode = 'zero' | 'coolwarm'
export const COLOUR_MODES: ReadonlyArray<{ mode: ColourMode; name: string }> = [
  { mode: 'zero', name: 'from zero (sequential / diverging)' },
  { mode: 'coolwarm', name: 'pandas coolwarm, per column' },
]

/** How a coloured column, heatmap or strip maps values to colours; also what its legend shows. */
export interface ColourScale {
  /** sequential: a non-negative quantity from 0 to `bound`; diverging: a signed one in ±`bound`. */
  kind: 'sequential' | 'diverging'
  mode: ColourMode
  /** The value painted deepest: the feature's max (sequential) or the largest |value| (diverging). */
  bound: number
  /** The painted values' own range: what pandas' coolwarm spans. */
  min: number
  max: number
}

/**
 * A scale, or a getter of one read each time a cell paints: a grid created before its rows (a trace's
 * batch grid) keeps its column defs when they arrive and the scale follows them.
 */
export type ScaleOf = ColourScale | (() => ColourScale)

export function scaleNow(s: ScaleOf): ColourScale {
  return typeof s === 'function' ? s() : s
}

/**
 * A scale over `values`. A sequential scale ends at `bound` when given (the feature's max, shared by all
 * its grids), else at the largest value; a diverging one at the largest |value| (or `bound`).
 */
export function colourScale(kind: ColourScale['kind'], values: Iterable<number>, mode: ColourMode, bound?: number): ColourScale {
  const list = [...values]
  const range = columnRange(list) ?? { min: 0, max: 0 }
  const b = bound !== undefined && bound > 0 ? bound : kind === 'sequential' ? Math.max(1e-12, range.max) : symmetricBound(list)
  return { kind, mode, bound: b, min: range.min, max: range.max }
}

/** Where `value` sits on the scale: [0, 1] for a sequential scale, [−1, 1] for a diverging one. */
export function position(value: number, s: ColourScale): number {
  return s.kind === 'sequential' ? Math.max(0, value) / s.bound : value / s.bound
}

/** Background and text colour of `value` on scale `s`. */
export function scaleStyle(value: number, s: ColourScale): CellColours {
  if (s.mode === 'coolwarm') return gradientStyle(value, s.min, s.max)
  return style(s.kind === 'sequential' ? sequential(position(value, s)) : diverging(position(value, s)))
}

/** The colours of a legend bar from the scale's low end to its high end, as CSS colours. */
export function legendColours(s: ColourScale, steps = 9): string[] {
  const out: string[] = []
  for (let i = 0; i < steps; i++) {
    const t = i / (steps - 1)
    const rgb = s.mode === 'coolwarm' ? coolwarm(t) : s.kind === 'sequential' ? sequential(t) : diverging(2 * t - 1)
    out.push(`rgb(${rgb[0]}, ${rgb[1]}, ${rgb[2]})`)
  }
  return out
}
