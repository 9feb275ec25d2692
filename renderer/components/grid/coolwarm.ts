// The colouring researchers know from the notebook: pandas' `background_gradient("coolwarm")`, which
// maps each column's min..max onto matplotlib's coolwarm (Moreland's diverging map: blue, near-white,
// red) and switches the text to light on dark cells. Kept pure so that the e2e test and the unit test
// can check the same numbers the grid paints.

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

/** min and max of the finite values, or null when there are none. */
/** The largest |value| (at least 1e-12): the bound of a colour scale symmetric around zero. */
export function symmetricBound(values: Iterable<number>): number {
  const range = columnRange(values)
  return Math.max(1e-12, Math.abs(range?.min ?? 0), Math.abs(range?.max ?? 0))
}

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
