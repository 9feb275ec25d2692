// Small dense linear algebra on row-major Float32Arrays, accumulated in float64. Only for vectors and
// d_model-sized matrices: anything vocabulary- or corpus-sized goes through the ONNX session instead.

export type Vec = Float32Array

export function dot(a: ArrayLike<number>, b: ArrayLike<number>, aOff = 0, bOff = 0, n = a.length - aOff): number {
  let s = 0
  for (let i = 0; i < n; i++) s += a[aOff + i] * b[bOff + i]
  return s
}

export function norm(a: ArrayLike<number>): number {
  return Math.sqrt(dot(a, a))
}

/** Cosine similarity; 0 when either vector is zero. */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`cosine of vectors of length ${a.length} and ${b.length}`)
  const n = norm(a) * norm(b)
  return n === 0 ? 0 : dot(a, b) / n
}

// vecMat and matVec copy x into a Float64Array first (exact: every float32 and JS number is one): their
// inner loops then read one kind of array each, which V8 compiles to far faster code than a loop over
// ArrayLike<number> called with several kinds (a GPT-2-small trace's head vectors: 38 ms → a few). The
// products and their order of accumulation are the same.

/** y = x · M for M [rows = x.length, cols] (row-major), starting at element `off` of M. */
export function vecMat(x: ArrayLike<number>, M: Float32Array, cols: number, off = 0): Vec {
  const xs = Float64Array.from(x)
  const acc = new Float64Array(cols)
  for (let i = 0; i < xs.length; i++) {
    const xi = xs[i]
    if (xi === 0) continue
    const row = off + i * cols
    for (let j = 0; j < cols; j++) acc[j] += xi * M[row + j]
  }
  return Float32Array.from(acc)
}

/** y = M · x for M [rows, cols = x.length] (row-major), starting at element `off` of M. */
export function matVec(M: Float32Array, x: ArrayLike<number>, rows: number, off = 0): Vec {
  const xs = Float64Array.from(x)
  const cols = xs.length
  const y = new Float32Array(rows)
  for (let i = 0; i < rows; i++) {
    const r = off + i * cols
    let s = 0
    for (let j = 0; j < cols; j++) s += M[r + j] * xs[j]
    y[i] = s
  }
  return y
}

/** Row i of a row-major matrix with `cols` columns (a view, not a copy). */
export function row(M: Float32Array, i: number, cols: number): Vec {
  return M.subarray(i * cols, (i + 1) * cols)
}

/** Vectors stacked into one row-major [k, d] matrix. */
export function stack(vectors: ArrayLike<number>[], d: number): Float32Array {
  const out = new Float32Array(vectors.length * d)
  vectors.forEach((x, i) => out.set(x, i * d))
  return out
}

/** The LayerNorm TransformerLens applies (LNPre when w is absent): centre, divide by sqrt(var + eps), affine. */
export function layerNorm(x: ArrayLike<number>, eps: number, w?: Float32Array, b?: Float32Array): { out: Vec; normed: Float64Array; scale: number } {
  const d = x.length
  let mean = 0
  for (let i = 0; i < d; i++) mean += x[i]
  mean /= d
  const normed = new Float64Array(d)
  let sq = 0
  for (let i = 0; i < d; i++) {
    normed[i] = x[i] - mean
    sq += normed[i] * normed[i]
  }
  const scale = Math.sqrt(sq / d + eps)
  const out = new Float32Array(d)
  for (let i = 0; i < d; i++) {
    normed[i] /= scale
    out[i] = w && b ? normed[i] * w[i] + b[i] : normed[i]
  }
  return { out, normed, scale }
}

/** erf to ~1e-15 relative (a series near 0, the Lentz continued fraction of erfc beyond). */
export function erf(x: number): number {
  const ax = Math.abs(x)
  if (ax < 2.5) {
    // Maclaurin: erf(x) = 2/√π Σ (-1)^n x^(2n+1) / (n! (2n+1))
    let term = ax
    let sum = ax
    const x2 = ax * ax
    for (let n = 1; n < 80; n++) {
      term *= -x2 / n
      const add = term / (2 * n + 1)
      sum += add
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum
  }
  // erfc(x) = exp(-x²)/√π · 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...))))
  let f = ax
  let C = ax
  let D = 0
  for (let n = 1; n < 200; n++) {
    const a = n / 2
    D = ax + a * D
    D = D === 0 ? 1e-300 : 1 / D
    C = ax + a / C
    const delta = C * D
    f *= delta
    if (Math.abs(delta - 1) < 1e-16) break
  }
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f
  return Math.sign(x) * (1 - erfc)
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI)

export type ActFn = 'gelu' | 'gelu_new' | 'gelu_fast' | 'relu'

/** The MLP non-linearity and its derivative, as TransformerLens defines each act_fn. */
export function activation(fn: ActFn, x: number): { y: number; dy: number } {
  switch (fn) {
    case 'relu':
      return { y: Math.max(0, x), dy: x > 0 ? 1 : 0 }
    case 'gelu': {
      const cdf = 0.5 * (1 + erf(x / Math.SQRT2))
      const pdf = Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI)
      return { y: x * cdf, dy: cdf + x * pdf }
    }
    case 'gelu_new':
    case 'gelu_fast': {
      const inner = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)
      const t = Math.tanh(inner)
      return { y: 0.5 * x * (1 + t), dy: 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x) }
    }
  }
}

/** Pearson correlation of two equally long series (NaN when either is constant). */
export function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length
  if (n !== b.length) throw new RangeError(`pearson of series of length ${n} and ${b.length}`)
  let ma = 0
  let mb = 0
  for (let i = 0; i < n; i++) {
    ma += a[i]
    mb += b[i]
  }
  ma /= n
  mb /= n
  let sab = 0
  let saa = 0
  let sbb = 0
  for (let i = 0; i < n; i++) {
    const da = a[i] - ma
    const db = b[i] - mb
    sab += da * db
    saa += da * da
    sbb += db * db
  }
  return sab / Math.sqrt(saa * sbb)
}

/** Indices of the k largest values, largest first (ties: lower index first); NaNs are skipped. */
export function topIndices(values: ArrayLike<number>, k: number, largest = true): number[] {
  const sign = largest ? 1 : -1
  const n = values.length
  k = Math.min(k, n)
  if (k <= 0) return []
  // A bounded sorted buffer of the best k (indices and their signed values): k is small (20-100) next to n
  // (a vocabulary, or a batch of tokens), so once it is full almost every value fails the one comparison
  // with the k-th best, kept in `floor`. (Reading it back from `values` through the buffer, as before, was
  // most of a trace's table-building time.)
  const best: number[] = []
  const keys: number[] = []
  let i = 0
  for (; i < n && best.length < k; i++) {
    const x = sign * values[i]
    if (Number.isNaN(x)) continue
    let at = best.length
    while (at > 0 && x > keys[at - 1]) {
      best[at] = best[at - 1]
      keys[at] = keys[at - 1]
      at--
    }
    best[at] = i
    keys[at] = x
  }
  let floor = keys[k - 1]
  for (; i < n; i++) {
    const x = sign * values[i]
    if (!(x > floor)) continue // i is later, so a tie loses; NaN fails the comparison too
    let at = k - 1
    while (at > 0 && x > keys[at - 1]) {
      best[at] = best[at - 1]
      keys[at] = keys[at - 1]
      at--
    }
    best[at] = i
    keys[at] = x
    floor = keys[k - 1]
  }
  return best
}
