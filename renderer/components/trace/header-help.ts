// One line per number of a trace's header, shown on hover: what the number is, in the terms of
// main/trace/linearize.ts (which derives v and u) and docs/BUNDLE.md. Kept beside the header so the words
// change with it.
import type { TraceConvention, TracePointJson } from '../../../common/contract'
import { residName } from './format'

export type HeaderNumber = 'token' | 'activation' | 'preActivation' | 'lnScale' | 'cosVU' | 'dot' | 'hook'

/** The explanation of each header number of `trace`, `dot` being `convention`·R. */
export function headerHelp(trace: Pick<TracePointJson, 'frozenLn' | 'resid' | 'hookPoint'>, convention: TraceConvention): Record<HeaderNumber, string> {
  const R = residName(trace.resid)
  const ln = trace.frozenLn
  const LN = ln?.name.toUpperCase() ?? ''
  const dot = (c: TraceConvention): string => {
    if (!ln) return `${c}·${R}: W_enc[:,f]·${R}; the SAE reads ${R} itself, so the pre-activation is this plus b_enc[f] − W_enc[:,f]·b_dec, exactly (u = v)`
    if (c === 'v')
      return `v·${R}: ≈ 0 at the point, because ${LN} is scale-invariant (scaling ${R} leaves the feature unchanged, so the full gradient is blind to ${R}'s own direction); hence v's terms add up to almost nothing`
    const rest =
      ln.name === 'ln2'
        ? `the constant terms (${LN}'s bias, the MLP's biases, b_dec, b_enc) and the MLP's non-linearity`
        : `the constant terms (${LN}'s bias, b_V, b_dec, b_enc) and the other positions' values, which the frozen pattern holds fixed`
    return `u·${R}: the first-order value of the pre-activation with ${LN}'s scale frozen, and the sum of u's decomposition terms; it differs from the true pre-activation by what is not linear in ${R}: ${rest}`
  }
  return {
    token: 'The token at the point, whitespace made visible (· space, ↩ newline, → tab), and its vocabulary id',
    activation: `The feature's activation at the point: its SAE's gate (ReLU, JumpReLU's threshold or TopK's selection) applied to the pre-activation`,
    preActivation: `The feature's pre-activation at the point, W_enc[:,f]·(${trace.hookPoint} − b_dec) + b_enc[f]: the number the trace linearizes`,
    lnScale: ln
      ? `${LN} scale: √(var + ε) of ${R} at the point, the factor ${LN} divides by; v includes how it changes with ${R}, u freezes it at this value`
      : '',
    cosVU: ln
      ? `cos(v, u): how alike the two directions are; v = u − n·(n·g)/(d·s), u less a multiple of the centred, normalized ${R} (n), the direction ${LN} cannot see`
      : `cos(v, u): 1, no LayerNorm is on the path (u = v)`,
    dot: dot(convention),
    hook: `The hook the SAE reads; the trace linearizes at the residual stream ${R}`,
  }
}

/** `c`·R's explanation alone (for the other convention's value shown beside it). */
export function dotHelp(trace: Pick<TracePointJson, 'frozenLn' | 'resid' | 'hookPoint'>, c: TraceConvention): string {
  return headerHelp(trace, c).dot
}
