// bundle.json's schema and the tensor shapes a config implies; a port of tools/ftlib/bundle.py so that
// the Python writer and this reader refuse exactly the same bundles.
import { bundleConfigSchema, type BundleConfig, type ModelConfig, type SaeConfig } from '../../common/contract/bundle'
import { BundleError } from './errors'

export type { BundleConfig, ModelConfig, SaeConfig }


/** Parses bundle.json's content; a failure lists every offending field by its path, in one message. */
export function parseBundleConfig(json: unknown, file = 'bundle.json'): BundleConfig {
  const result = bundleConfigSchema.safeParse(json)
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
    throw new BundleError('bad-config', `${file} does not follow the bundle format: ${problems.join('; ')}`, { file })
  }
  const m = result.data.model
  if (m.n_heads * m.d_head !== m.d_model) {
    throw new BundleError('bad-config', `${file}: n_heads·d_head = ${m.n_heads * m.d_head} but d_model = ${m.d_model}`, { file })
  }
  const rotaryProblem = rotaryConfigProblem(m)
  if (rotaryProblem) throw new BundleError('bad-config', `${file}: ${rotaryProblem}`, { file })
  if (m.attn_scales && m.attn_scales.length !== m.n_layers) {
    throw new BundleError('bad-config', `${file}: model.attn_scales has ${m.attn_scales.length} entries but the model has ${m.n_layers} layers`, { file })
  }
  const sae = result.data.sae
  if (sae.kind === 'topk' && sae.k > sae.d_sae) {
    throw new BundleError('bad-config', `${file}: the TopK SAE keeps k = ${sae.k} features per token but has d_sae = ${sae.d_sae}`, { file })
  }
  return result.data
}

/** Rotary fields where and only where positions are rotary: an even rotary_dim ≤ d_head and a rotary_base. */
function rotaryConfigProblem(m: ModelConfig): string | null {
  if (m.positional_embedding_type !== 'rotary') {
    return m.rotary_dim !== undefined || m.rotary_base !== undefined ? 'model.rotary_dim and model.rotary_base belong to rotary positional embeddings only' : null
  }
  if (m.rotary_dim === undefined || m.rotary_base === undefined) return 'rotary positional embeddings need model.rotary_dim and model.rotary_base'
  if (m.rotary_dim % 2 !== 0 || m.rotary_dim > m.d_head) return `model.rotary_dim = ${m.rotary_dim} must be even and at most d_head = ${m.d_head}`
  return null
}

/** What layer `layer` divides its attention scores by: bundle.json's attn_scales, else sqrt(d_head). */
export function attnScale(cfg: ModelConfig, layer: number): number {
  return cfg.attn_scales ? cfg.attn_scales[layer] : Math.sqrt(cfg.d_head)
}

/** The state-dict shapes TransformerLens uses for this config (extra tensors in the file are ignored). */
export function expectedModelShapes(cfg: ModelConfig): Map<string, number[]> {
  const { d_model: d, n_heads: h, d_head: dh, d_mlp: dm, d_vocab: v, n_ctx: n } = cfg
  const shapes = new Map<string, number[]>([
    ['embed.W_E', [v, d]],
    // Rotary models have no learned positions: their positions enter through the queries and keys.
    ...(cfg.positional_embedding_type === 'standard' ? [['pos_embed.W_pos', [n, d]] as [string, number[]]] : []),
  ])
  const ln = cfg.normalization_type === 'LN'
  for (let l = 0; l < cfg.n_layers; l++) {
    const pre = `blocks.${l}.`
    if (ln) for (const name of ['ln1.w', 'ln1.b', 'ln2.w', 'ln2.b']) shapes.set(pre + name, [d])
    for (const m of ['Q', 'K', 'V']) {
      shapes.set(`${pre}attn.W_${m}`, [h, d, dh])
      shapes.set(`${pre}attn.b_${m}`, [h, dh])
    }
    shapes.set(`${pre}attn.W_O`, [h, dh, d])
    shapes.set(`${pre}attn.b_O`, [d])
    shapes.set(`${pre}mlp.W_in`, [d, dm])
    shapes.set(`${pre}mlp.b_in`, [dm])
    shapes.set(`${pre}mlp.W_out`, [dm, d])
    shapes.set(`${pre}mlp.b_out`, [d])
  }
  if (ln) {
    shapes.set('ln_final.w', [d])
    shapes.set('ln_final.b', [d])
  }
  shapes.set('unembed.W_U', [d, v])
  shapes.set('unembed.b_U', [v])
  return shapes
}

export function expectedSaeShapes(sae: SaeConfig): Map<string, number[]> {
  const shapes = new Map([
    ['W_enc', [sae.d_in, sae.d_sae]],
    ['b_enc', [sae.d_sae]],
    ['W_dec', [sae.d_sae, sae.d_in]],
    ['b_dec', [sae.d_in]],
  ])
  if (sae.kind === 'jumprelu') shapes.set('threshold', [sae.d_sae])
  return shapes
}

/** The hooks an SAE may sit on, with the width each has, relative to `blocks.L.`. */
const HOOK_WIDTH: Record<string, (cfg: ModelConfig) => number> = {
  'mlp.hook_post': (c) => c.d_mlp,
  'mlp.hook_pre': (c) => c.d_mlp,
  hook_resid_pre: (c) => c.d_model,
  hook_resid_mid: (c) => c.d_model,
  hook_resid_post: (c) => c.d_model,
  hook_mlp_out: (c) => c.d_model,
  hook_attn_out: (c) => c.d_model,
  // Every head's z concatenated (head-major, as SAELens's hook_z SAEs read it): n_heads·d_head = d_model.
  'attn.hook_z': (c) => c.n_heads * c.d_head,
}

export interface HookPoint {
  layer: number
  /** The hook's name within its block, e.g. `mlp.hook_post`. */
  hook: string
  width: number
}

export function parseHookPoint(cfg: ModelConfig, hookPoint: string, file = 'bundle.json'): HookPoint {
  const m = /^blocks\.(\d+)\.(.+)$/.exec(hookPoint)
  if (!m) throw new BundleError('sae-mismatch', `${file}: hook point "${hookPoint}" is not of the form blocks.L.<hook>`, { file })
  const layer = Number(m[1])
  if (layer >= cfg.n_layers) {
    throw new BundleError('sae-mismatch', `${file}: hook point "${hookPoint}" names layer ${layer}, but the model has ${cfg.n_layers} layers`, { file })
  }
  const width = HOOK_WIDTH[m[2]]
  if (!width) {
    const supported = Object.keys(HOOK_WIDTH).sort().join(', ')
    throw new BundleError('sae-mismatch', `${file}: hook point "${hookPoint}" is not supported (supported: ${supported})`, { file })
  }
  if (m[2] === 'hook_resid_mid' && cfg.parallel_attn_mlp) {
    throw new BundleError('sae-mismatch', `${file}: hook point "${hookPoint}" does not exist in a model with parallel attention and MLP (both read resid_pre)`, { file })
  }
  return { layer, hook: m[2], width: width(cfg) }
}
