// How trace numbers and places are written in the trace views.
import type { TracePointRequest, TracePointJson, TraceScopeKind } from '../../../common/contract'

/** Four decimals; values too small for that (v·resid_mid, a residual) in exponent form so they never read as 0. */
export function fmtNum(x: number | null | undefined): string {
  if (typeof x !== 'number' || !Number.isFinite(x)) return '—'
  if (x !== 0 && Math.abs(x) < 1e-3) return x.toExponential(3)
  return x.toFixed(4)
}

/** `sample/pos` as the seed labels corpus tokens, or `prompt[token]`. */
export function pointLabel(p: TracePointRequest): string {
  return 'sample' in p ? `${p.sample}/${p.pos}` : `prompt[${p.token}]`
}

/** The tab strip's title of a trace tab. */
export function traceTitle(p: TracePointRequest): string {
  return `⤷ #${p.feature} @ ${pointLabel(p)}`
}

/** Whether a result's point (corpus token or prompt token) is the requested one's place. */
export function isPointOf(ref: TracePointJson['point'], p: TracePointRequest): boolean {
  return 'sample' in p ? ref.kind === 'corpus' && ref.sample === p.sample && ref.pos === p.pos : ref.kind === 'prompt' && ref.prompt === p.prompt && ref.pos === p.token
}

/** What a trace's scope covers: `sequences 128…255`, or `the prompt`. */
export function scopeLabel(s: TraceScopeKind): string {
  return s.kind === 'batch' ? `sequences ${s.start}…${s.start + s.count - 1}` : 'the prompt'
}

/** The point a token of a trace's own scope stands for (corpus rows carry their sequence; prompt rows the prompt). */
export function pointInScope(trace: TracePointJson, row: { batch: number; pos: number }): TracePointRequest {
  return trace.point.kind === 'prompt'
    ? { feature: trace.feature, prompt: trace.point.prompt, token: row.pos }
    : { feature: trace.feature, sample: row.batch, pos: row.pos }
}

/** A file-name-safe stem for a trace's exports. */
export function exportStem(p: TracePointRequest): string {
  return 'sample' in p ? `trace-f${p.feature}-s${p.sample}-p${p.pos}` : `trace-f${p.feature}-prompt-t${p.token}`
}

/** A residual hook's short name: `blocks.1.hook_resid_mid` → `resid_mid`. */
export function residName(hook: string): string {
  return hook.replace(/^blocks\.\d+\.hook_/, '')
}
