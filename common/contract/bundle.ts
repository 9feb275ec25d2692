// Bundles: the model, SAE and corpus configs a bundle declares, and what the app shows of the open one.
import type { CacheState } from './cache'
import { channel, empty, userPath } from './channel'
import { z } from 'zod'

export interface ModelConfig {
  n_layers: number
  d_model: number
  n_heads: number
  d_head: number
  d_mlp: number
  d_vocab: number
  n_ctx: number
  act_fn: string
  normalization_type: string
  eps: number
  positional_embedding_type: string
  dtype?: string
}

export interface SaeConfig {
  hook_point: string
  d_in: number
  d_sae: number
  kind: string
  dtype?: string
}

export interface DatasetConfig {
  name?: string
  n_seq: number
  seq_len: number
  prepend_bos: boolean
  bos_token_id?: number | null
}

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
   * The execution provider ONNX Runtime runs on: the app's compute worker's, else the one the cache was
   * built with; null while no engine has run for this bundle.
   */
  provider: ExecutionProviderName | null
  cache: CacheState
}

export const bundleChannels = {
  'bundle.info': channel<BundleInfo>()(empty),
  /** Open another bundle folder; it becomes the one every other channel talks about. */
  'bundle.open': channel<BundleInfo>()(z.strictObject({ path: userPath })),
}
