// The axes of the trace views' scatter plots (fidelity, causal checks, Compare's scores): one range and tick
// computation and one mapping from values to pixels, so every scatter reads the same way.

/** A value range drawn along an axis. */
export interface Range {
  lo: number
  hi: number
}

/** Where the plotting area sits inside the figure (pixels). */
export interface Pad {
  l: number
  r: number
  t: number
  b: number
}

/**
 * The finite values' range widened by `pad` of its width on each side (`include` joins the values, e.g. 0);
 * a single value or none gets a unit-wide range around it.
 */
export function rangeOf(values: Iterable<number>, pad = 0.04, include: number[] = []): Range {
  let lo = Infinity
  let hi = -Infinity
  for (const v of [...include, ...values]) {
    if (!Number.isFinite(v)) continue
    if (v < lo) lo = v
    if (v > hi) hi = v
  }
  if (!Number.isFinite(lo)) return { lo: -1, hi: 1 }
  if (!(hi > lo)) return { lo: lo - 1, hi: hi + 1 }
  const p = (hi - lo) * pad
  return { lo: lo - p, hi: hi + p }
}

/** The union of two ranges (an x = y diagonal needs one scale on both axes). */
export function unionRange(a: Range, b: Range): Range {
  return { lo: Math.min(a.lo, b.lo), hi: Math.max(a.hi, b.hi) }
}

/** A 1, 2 or 5 times a power of ten near (hi − lo) / count: the step between ticks. */
export function tickStep(lo: number, hi: number, count = 5): number {
  const raw = (hi - lo) / Math.max(1, count)
  if (!(raw > 0) || !Number.isFinite(raw)) return 1
  const p = 10 ** Math.floor(Math.log10(raw))
  const m = raw / p
  // d3's thresholds (√50, √10, √2): the step whose count of ticks comes nearest `count`.
  return (m >= Math.SQRT2 * 5 ? 10 : m >= Math.sqrt(10) ? 5 : m >= Math.SQRT2 ? 2 : 1) * p
}

/** Round ticks (multiples of tickStep) inside [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  const step = tickStep(lo, hi, count)
  const out: number[] = []
  // Integer multiples of the step, so 0.1 + 0.2 never shows as 0.30000000000000004.
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k++) out.push(Number((k * step).toPrecision(12)) + 0)
  return out
}

/** A tick's text with as many decimals as its step needs. */
export function tickLabel(value: number, step: number): string {
  const decimals = Math.max(0, Math.min(8, -Math.floor(Math.log10(step) + 1e-9)))
  return Math.abs(step) >= 1e5 || (step < 1e-4 && value !== 0) ? value.toExponential(1) : value.toFixed(decimals)
}

/** Maps values of `x` and `y` into a `width` × `height` figure with the plotting area inside `pad`. */
export function frame(width: number, height: number, pad: Pad, x: Range, y: Range): { sx: (v: number) => number; sy: (v: number) => number } {
  return {
    sx: (v) => pad.l + ((v - x.lo) / (x.hi - x.lo)) * (width - pad.l - pad.r),
    sy: (v) => height - pad.b - ((v - y.lo) / (y.hi - y.lo)) * (height - pad.t - pad.b),
  }
}

/** The plotting area's padding every scatter uses: room for tick labels left and below, and axis titles. */
export const SCATTER_PAD: Pad = { l: 52, r: 10, t: 10, b: 38 }
