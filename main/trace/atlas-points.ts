// Which firings an atlas linearizes at (issue 15 §1): the feature's top N from the cache's top list, then
// M from its quantile groups (sae_vis's groups of about equal firings, 3 examples each), taken round-robin
// from the lowest group up, so a small M still spans the activation range; a point already taken is skipped.
// A cache built before the quantile groups existed (the demo's shipped summary) has none: its equal-width
// intervals' examples (5 in each of 10) are sampled the same way instead.
import type { FeatureDetail } from '../../common/contract'
import type { AtlasPointIn } from './atlas'

export function atlasPoints(detail: Pick<FeatureDetail, 'top' | 'quantiles' | 'intervals'>, top: number, quantileSamples: number): AtlasPointIn[] {
  const seen = new Set<string>()
  const out: AtlasPointIn[] = []
  const add = (sample: number, pos: number, source: AtlasPointIn['source']): void => {
    const key = `${sample}/${pos}`
    if (seen.has(key)) return
    seen.add(key)
    out.push({ sample, pos, source })
  }
  for (const r of detail.top.slice(0, top)) add(r.batch, r.pos, 'top')
  const groups = (detail.quantiles.length ? detail.quantiles : detail.intervals).map((g) => g.examples)
  const deepest = Math.max(0, ...groups.map((g) => g.length))
  let taken = 0
  for (let k = 0; k < deepest && taken < quantileSamples; k++) {
    for (const g of groups) {
      if (taken >= quantileSamples) break
      const r = g[k]
      if (!r) continue
      const before = out.length
      add(r.batch, r.pos, 'quantile')
      if (out.length > before) taken++
    }
  }
  return out
}
