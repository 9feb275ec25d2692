// Plain-text renderings for people at a terminal; --json prints the handler's value instead.
import type { AblationsJson, ActivationRow, CacheProgress, ConventionTraceJson, FeatureBos, FeatureDetail, FeatureSummary, TraceJson } from '../../../common/contract'

const num = (x: number | null, digits = 4): string => (x === null ? '-' : x.toFixed(digits))

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()
  return [line(header), ...rows.map(line)].join('\n')
}

export function formatProgress(p: CacheProgress): string {
  const pct = p.totalTokens > 0 ? (100 * p.doneTokens) / p.totalTokens : 0
  if (p.phase === 'finalize') return `finalizing: ${p.totalTokens} tokens computed, writing per-feature tables…`
  if (p.phase === 'logits') return 'logit effects: the summary is ready; computing every feature\'s top and bottom logit effects…'
  const eta = p.etaSec === null ? '?' : `${Math.round(p.etaSec)} s`
  return `cache build: ${p.doneTokens}/${p.totalTokens} tokens (${pct.toFixed(1)}%), ${Math.round(p.tokensPerSec)} tokens/s, ETA ${eta}`
}

/** Which firings the numbers count (FeatureBos), in words. */
export function bosText(bos: FeatureBos): string {
  if (bos === 'excluded') return 'BOS excluded (firings at position 0 of a sequence starting with BOS; --include-bos counts them)'
  if (bos === 'included') return 'BOS included'
  if (bos === 'no_bos') return 'the corpus has no BOS token'
  return 'BOS included: this cache cannot leave it out (built by an older version, or a build under way); rebuild it'
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
    `statistics: ${bosText(d.bos)}`,
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

function convention(c: ConventionTraceJson): string[] {
  const d = c.decomposition
  const tokens = (xs: { str_tokens: string; score: number }[]): string => xs.map((t) => `${t.str_tokens} ${num(t.score, 3)}`).join(', ')
  return [
    c.label,
    `  ${c.convention}·resid_mid ${num(c.dotResidMid)}; decomposition total ${num(d.total)}, sum of terms ${num(d.sumOfTerms)} (residual ${d.residual.toExponential(1)})`,
    `  fidelity over the scope: Pearson r ${num(c.fidelity.pearson, 3)}, with ReLU ${num(c.fidelity.pearsonRelu, 3)}`,
    `  W_E·${c.convention} top: ${tokens(c.tokenScores.top.slice(0, 10))}`,
    `  W_E·${c.convention} bottom: ${tokens(c.tokenScores.bottom.slice(0, 10))}`,
  ]
}

/** A trace's headline numbers; --json prints every quantity. */
export function formatTrace(t: TraceJson): string {
  const where = t.point.kind === 'corpus' ? `sample ${t.point.sample}, pos ${t.point.pos}` : `prompt token ${t.point.pos}`
  return [
    `feature ${t.feature} at ${where} (token ${t.sequenceStrTokens[t.point.pos]}, id ${t.tokenId}) on ${t.hookPoint}`,
    `activation ${num(t.activation)}, pre-activation ${num(t.preActivation)}, cosine(v, u) ${num(t.cosineVU)}`,
    ...convention(t.v),
    ...convention(t.u),
    `circuit tables (OV, LN+OV, QK) for head ${t.head} (--head H for another) at source pos ${t.sourcePos}, and its QK grid and pairs`,
    'use --json for every vector, table and row',
  ].join('\n')
}

/** What --ablate adds to trace --json: `ablations` (one row per check) and `causalChecks` (the rest). */
export function ablationFields({ ablations, ...causalChecks }: AblationsJson): { ablations: AblationsJson['ablations']; causalChecks: Omit<AblationsJson, 'ablations'> } {
  return { ablations, causalChecks }
}

/** The causal checks as a table: each term (or whole head) removed, u·term beside the true change. */
export function formatAblations(a: AblationsJson): string {
  const mean = a.meanSequences === null ? 'no mean-ablation' : `mean-ablation over corpus sequences 0…${a.meanSequences - 1}: Pearson r ${num(a.meanPearson, 3)}`
  return [
    `causal checks (terms removed from ${a.removedFrom}): Pearson r of u·term against the true change ${num(a.pearson, 3)}; ${mean}`,
    table(
      ['layer', 'head', 'source', 'predicted', 'actual', 'mean_predicted', 'mean_actual'],
      a.ablations.map((x) => [String(x.layer), String(x.head), x.source === null ? 'all' : String(x.source), num(x.predicted), num(x.actual), num(x.meanPredicted), num(x.meanActual)]),
    ),
  ].join('\n')
}
