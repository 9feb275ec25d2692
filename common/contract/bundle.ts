// Bundles: the model, SAE and corpus configs a bundle declares, and what the app shows of the open one.
import type { CacheState } from './cache'
import { channel, empty, userPath } from './channel'
import { z } from 'zod'

// bundle.json's schema, a port of tools/ftlib/bundle.py so that the Python writer and this reader refuse
// exactly the same bundles; main/bundle parses with it, and the page sees the same config types.
const dim = z.number().int().positive()
const dtype = z.enum(['float16', 'float32'])

export const modelConfigSchema = z.object({
  n_layers: dim,
  d_model: dim,
  n_heads: dim,
  d_head: dim,
  d_mlp: dim,
  d_vocab: dim,
  n_ctx: dim,
  act_fn: z.enum(['gelu', 'gelu_new', 'gelu_fast', 'relu']),
  normalization_type: z.enum(['LN', 'LNPre']),
  eps: z.number().positive(),
  // standard: learned W_pos added to the embedding; rotary: GPT-NeoX's rotary embedding of queries and keys
  // (the first rotary_dim of each head's d_head, rotated in halves, frequencies rotary_base^(−2i/rotary_dim)).
  positional_embedding_type: z.enum(['standard', 'rotary']),
  rotary_dim: dim.optional(),
  rotary_base: z.number().positive().finite().optional(),
  /** Attention and MLP both read resid_pre and add to it (GPT-NeoX/Pythia); there is no resid_mid. */
  parallel_attn_mlp: z.boolean().optional(),
  dtype,
  /**
   * What each layer divides its attention scores by (TransformerLens's attn_scale, or 1 without use_attn_scale,
   * times layer+1 with scale_attn_by_inverse_layer_idx); absent means sqrt(d_head) in every layer, as in every
   * bundle made before the field, which stay absent when parsed so their identity is unchanged.
   */
  attn_scales: z.array(z.number().positive().finite()).optional(),
  processing: z.record(z.string(), z.boolean()).optional(),
})

// The SAE's kind says how its pre-activations pre = (x − b_dec·[apply_b_dec_to_input])·W_enc + b_enc become
// activations (docs/BUNDLE.md): relu ReLU(pre); jumprelu ReLU(pre)·[pre > threshold] with a per-feature
// threshold tensor in sae.safetensors; topk ReLU(pre) on each token's k largest pre-activations, 0 elsewhere.
// Optional fields are absent from old bundles and stay absent when parsed, so their identity is unchanged.
const saeCommon = { hook_point: z.string(), d_in: dim, d_sae: dim }
const saeTail = { dtype, apply_b_dec_to_input: z.boolean().optional() }
export const saeKinds = ['relu', 'jumprelu', 'topk'] as const

export const saeConfigSchema = z.discriminatedUnion('kind', [
  z.object({ ...saeCommon, kind: z.literal('relu'), ...saeTail }),
  z.object({ ...saeCommon, kind: z.literal('jumprelu'), ...saeTail }),
  z.object({ ...saeCommon, kind: z.literal('topk'), k: dim, ...saeTail }),
])

export const datasetConfigSchema = z.object({
  n_seq: dim,
  seq_len: dim,
  name: z.string().optional(),
  prepend_bos: z.boolean().default(false),
  bos_token_id: z.number().int().nonnegative().nullable().optional(),
})

export const bundleConfigSchema = z.object({
  format: z.literal('feature-tracer-bundle'),
  version: z.literal(1),
  name: z.string().default(''),
  model: modelConfigSchema,
  sae: saeConfigSchema,
  dataset: datasetConfigSchema,
  quality: z.record(z.string(), z.number()).default({}),
  provenance: z
    .object({ files: z.record(z.string(), z.object({ sha256: z.string(), source: z.string().optional() })).default({}) })
    .default({ files: {} }),
})

export type ModelConfig = z.infer<typeof modelConfigSchema>
export type SaeConfig = z.infer<typeof saeConfigSchema>
export type DatasetConfig = z.infer<typeof datasetConfigSchema>
export type BundleConfig = z.infer<typeof bundleConfigSchema>

export type ExecutionProviderName = 'cuda' | 'dml' | 'coreml' | 'cpu'

export interface BundleInfo {
  path: string
  /** Identifies the bundle (from its provenance sha256s); sessions and labels are keyed by it. */
  hash: string
  name: string
  model: ModelConfig
  sae: SaeConfig
  dataset: DatasetConfig
  quality: Record<string, number>
  /**
   * The execution provider ONNX Runtime runs on: the app's compute process's, else the one the cache was
   * built with; null while no engine has run for this bundle. The app and serve start the compute process
   * when a bundle opens, and push its provider as 'bundle.provider' as soon as it is ready.
   */
  provider: ExecutionProviderName | null
  cache: CacheState
}

/**
 * The open bundle's compute process is ready (its provider) or could not start (provider null and why);
 * pushed once per compute process that the app starts when a bundle opens.
 */
export interface BundleProvider {
  /** BundleInfo.hash of the bundle it serves. */
  hash: string
  provider: ExecutionProviderName | null
  error?: string
}

export const bundleChannels = {
  'bundle.info': channel<BundleInfo>()(empty),
  /** Open another bundle folder; it becomes the one every other channel talks about. */
  'bundle.open': channel<BundleInfo>()(z.strictObject({ path: userPath })),
}
