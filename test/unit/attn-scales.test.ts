// bundle.json's model.attn_scales (each layer's attention-score divisor): the schema's refusals, the same as
// tools/ftlib/bundle.py's (tools/tests/test_bundle_kinds.py), and the divisor every computation reads. The
// engine and the trace on such bundles are checked against PyTorch in compute.test.ts and trace.test.ts
// (tiny-attn-unscaled, tiny-attn-by-layer).
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { attnScale, BundleError, loadBundle, parseBundleConfig } from '../../main/bundle'

const base = JSON.parse(readFileSync('test/fixtures/tiny/bundle.json', 'utf-8')) as { model: Record<string, unknown> }
const withScales = (attn_scales: unknown): unknown => ({ ...base, model: { ...base.model, attn_scales } })

function refusal(json: unknown): string {
  try {
    parseBundleConfig(json)
  } catch (e) {
    expect(e).toBeInstanceOf(BundleError)
    return (e as Error).message
  }
  throw new Error('accepted')
}

describe('bundle.json: model.attn_scales', () => {
  it('refuses a list of another length, a divisor that is not a positive finite number, a scalar', () => {
    expect(refusal(withScales([1]))).toMatch(/model\.attn_scales has 1 entries but the model has 2 layers/)
    for (const bad of [[1, 0], [1, -2], [1, true], [1, 'x'], 2]) expect(refusal(withScales(bad))).toMatch(/model\.attn_scales/)
  })

  it('gives each layer its divisor, and sqrt(d_head) to a bundle without the field (its parsed config unchanged)', async () => {
    const cfg = parseBundleConfig(withScales([1, 2.5])).model
    expect([attnScale(cfg, 0), attnScale(cfg, 1)]).toEqual([1, 2.5])
    const old = parseBundleConfig(base).model
    expect('attn_scales' in old).toBe(false)
    expect(attnScale(old, 1)).toBe(Math.sqrt(8))
    const byLayer = await loadBundle('test/fixtures/tiny-attn-by-layer', { hashCacheDir: null })
    expect(byLayer.config.model.attn_scales).toEqual([Math.sqrt(8), 2 * Math.sqrt(8)])
  })
})
