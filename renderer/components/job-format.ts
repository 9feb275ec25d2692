// How a background job's progress reads (the cache build, whole-corpus activation scores).

/** Seconds as people read a wait: `42 s`, `3 min 5 s`, `1 h 20 min`; `—` while unknown. */
export function duration(sec: number | null | undefined): string {
  if (sec == null || !Number.isFinite(sec)) return '—'
  if (sec < 60) return `${Math.ceil(sec)} s`
  const m = Math.floor(sec / 60)
  return m < 60 ? `${m} min ${Math.round(sec % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`
}

/** `12,345 tokens/s`, or null before the first rate is known. */
export function tokenRate(tokensPerSec: number | null | undefined): string | null {
  return tokensPerSec && tokensPerSec > 0 ? `${Math.round(tokensPerSec).toLocaleString('en-US')} tokens/s` : null
}

/** The rate to show: the running job's, else the last job's (`last build 6,123 tokens/s`), else a dash. */
export function rateText(tokensPerSec: number | null | undefined, lastRate: number | null, lastWhat: string): string {
  return tokenRate(tokensPerSec) ?? (lastRate ? `${lastWhat} ${tokenRate(lastRate)}` : '— tokens/s')
}
