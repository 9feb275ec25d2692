// Which parts of the model a trace reads, by the SAE's hook (docs/BUNDLE.md, "What a trace linearizes"):
// the residual point R where v and u live (linearize.ts), the attention layers and MLPs before it whose
// terms decompose vec·R (decompose.ts), and the attention layer of the circuit tables (the last of those,
// or the hook's own layer for an attention hook).
import type { Bundle } from '../bundle'
import type { HookName } from '../compute/api'
import { ATTENTION_HOOKS, residPointOf } from './linearize'
import { TraceInputError } from './types'

export interface TracePlan {
  layer: number
  /** The SAE's hook relative to blocks.L. */
  hook: string
  /** The SAE's hook point. */
  saeHook: HookName
  /** R: the residual-stream hook v and u are gradients with respect to. */
  resid: HookName
  /** An attention hook (attn.hook_z, hook_attn_out): its own value decomposes over its layer's heads. */
  attentionHook: boolean
  /** Attention layers whose terms the decomposition lists, first to last. */
  attnLayers: number[]
  /** MLPs whose hook_mlp_out the decomposition lists, first to last. */
  mlpLayers: number[]
  /** The attention layer of the circuit tables (OV, LN+OV, QK); null when there is none before R. */
  circuitLayer: number | null
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i)

export function tracePlan(bundle: Pick<Bundle, 'hookPoint' | 'config'>): TracePlan {
  const m = bundle.config.model
  if (m.positional_embedding_type !== 'standard' || m.parallel_attn_mlp) {
    // The engine computes these models exactly (their feature views are right); the trace's linearization
    // (R = resid_mid for MLP hooks), its embedding terms (W_pos) and QK tables (one position each side) assume
    // sequential blocks and learned positions, so a trace here would be another model's.
    throw new TraceInputError(
      'traces are not computed yet for models with rotary positions or parallel attention and MLP (GPT-NeoX/Pythia): ' +
        'their linearization, decomposition and QK tables assume sequential blocks and learned positions; the feature views are exact',
    )
  }
  const { layer: L, hook } = bundle.hookPoint
  const resid = residPointOf(L, hook)
  const attentionHook = (ATTENTION_HOOKS as readonly string[]).includes(hook)
  const atPre = resid.endsWith('hook_resid_pre')
  const attnLayers = attentionHook ? [L] : range(atPre ? L : L + 1)
  const mlpLayers = attentionHook ? [] : range(resid.endsWith('hook_resid_post') ? L + 1 : L)
  return {
    layer: L,
    hook,
    saeHook: bundle.config.sae.hook_point as HookName,
    resid,
    attentionHook,
    attnLayers,
    mlpLayers,
    circuitLayer: attnLayers.length ? attnLayers[attnLayers.length - 1] : null,
  }
}

export const patternHook = (l: number): HookName => `blocks.${l}.attn.hook_pattern`
export const hookVHook = (l: number): HookName => `blocks.${l}.attn.hook_v`
export const mlpOutHook = (l: number): HookName => `blocks.${l}.hook_mlp_out`
export const residPreHook = (l: number): HookName => `blocks.${l}.hook_resid_pre`

/** The hooks the linearization reads at the point: R, and for an attention hook its value and pattern. */
export function linearizationHooks(plan: TracePlan): HookName[] {
  return plan.attentionHook ? [plan.resid, plan.saeHook, patternHook(plan.layer)] : [plan.resid, plan.saeHook]
}
