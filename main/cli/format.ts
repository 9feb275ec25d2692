// Plain-text renderings for people at a terminal; --json prints the handler's value instead.
import type { ActivationRow, CacheProgress, FeatureDetail, FeatureSummary } from '../ipc/contract'

const num = (x: number | null, digits = 4): string => (x === null ? '-' : x.toFixed(digits))

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()
  return [line(header), ...rows.map(line)].join('\n')
}

export function formatProgress(p: CacheProgress): string {
  const pct = p.totalTokens > 0 ? (100 * p.doneTokens) / p.totalTokens : 0
  if (p.phase === 'finalize') return `finalizing: ${p.totalTokens} tokens computed, writing per-feature tables…`
  const eta = p.etaSec === null ? '?' : `${Math.round(p.etaSec)} s`
  return `cache build: ${p.doneTokens}/${p.totalTokens} tokens (${pct.toFixed(1)}%), ${Math.round(p.tokensPerSec)} tokens/s, ETA ${eta}`
}

export function formatFeatures(features: FeatureSummary[]): string {
  return table(
    ['id', 'density', 'max', 'mean', 'top_token', 'f1', 'label'],
    features.map((f) => [String(f.id), num(f.density, 5), num(f.max), num(f.mean), f.topToken ?? '-', num(f.f1, 3), f.label]),
  )
}

function rows(r: ActivationRow[]): string {
  return table(
    ['str_tokens', 'unique_token', 'context', 'batch', 'pos', 'label', 'activation'],
    r.map((x) => [x.str_tokens, x.unique_token, x.context, String(x.batch), String(x.pos), x.label, num(x.activation)]),
  )
}

export function formatFeature(d: FeatureDetail): string {
  const s = d.stats
  const out = [
    `feature ${s.id}${s.label ? ` — ${s.label}` : ''}`,
    `density ${num(s.density, 5)} (${s.count} firings), max ${num(s.max)}, mean ${num(s.mean)} (over firings)`,
    `top token ${s.topToken ?? '-'}: precision ${num(s.precision, 3)}, recall ${num(s.recall, 3)}, F1 ${num(s.f1, 3)}`,
    '',
    'top activations',
    rows(d.top),
    '',
    'logit effects (top)',
    d.logits.top.map((l) => `  ${l.token}\t${num(l.effect)}`).join('\n'),
    'logit effects (bottom)',
    d.logits.bottom.map((l) => `  ${l.token}\t${num(l.effect)}`).join('\n'),
  ]
  for (const b of d.intervals) {
    out.push('', `interval [${num(b.lo, 3)}, ${num(b.hi, 3)}): ${b.count} firings`, rows(b.examples))
  }
  return out.join('\n')
}
