// Which parts of the model a trace reads, by the SAE's hook (docs/BUNDLE.md, "What a trace linearizes"):
// the residual point R where v and u live (linearize.ts), the attention layers and MLPs before it whose
// terms decompose vec·R (decompose.ts), and the attention layer of the circuit tables (the last of those,
// or the hook's own layer for an attention hook).
import type { Bundle } from '../bundle'
import type { HookName } from '../compute/api'
import { ATTENTION_HOOKS, residPointOf } from './linearize'

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
  const { layer: L, hook } = bundle.hookPoint
  // Parallel blocks (GPT-NeoX): the MLP reads resid_pre, so R for an MLP hook is resid_pre and layer L's
  // attention is not before it; the decomposition lists attention and MLPs 0…L−1.
  const resid = residPointOf(L, hook, bundle.config.model.parallel_attn_mlp === true)
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
