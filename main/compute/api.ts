// The compute engine's surface, shared by the inference worker (main/compute), the cache build job
// (main/cache) and the trace code (main/trace). Arrays are row-major; a "token" is one (sequence,
// position) pair, numbered sequence * seqLen + position within a request.

/** Every non-zero SAE activation of a block of tokens, in CSR form (no activation is ever dropped). */
export interface SparseActs {
  nTokens: number
  /** rowPtr[i]..rowPtr[i+1] index featureIds/values for token i; length nTokens + 1. */
  rowPtr: Uint32Array
  featureIds: Uint32Array
  values: Float32Array
}

/** A dense tensor returned by the engine. */
export interface Tensor {
  dims: number[]
  data: Float32Array
}

/** Hook values the forward graph can return, named as TransformerLens names them (layer L). */
export type HookName =
  | `blocks.${number}.hook_resid_pre`
  | `blocks.${number}.hook_resid_mid`
  | `blocks.${number}.hook_resid_post`
  | `blocks.${number}.attn.hook_pattern`
  | `blocks.${number}.attn.hook_v`
  | `blocks.${number}.hook_attn_out`
  | `blocks.${number}.mlp.hook_pre`
  | `blocks.${number}.mlp.hook_post`
  | `blocks.${number}.hook_mlp_out`
  | 'logits'

export type ExecutionProvider = 'cuda' | 'dml' | 'coreml' | 'cpu'

export interface ComputeEngine {
  /** The execution provider that actually runs the sessions. */
  readonly provider: ExecutionProvider
  /** SAE activations of tokens [nSeq, seqLen] at the bundle's hook point. */
  saeActs(tokens: Int32Array, nSeq: number, seqLen: number): Promise<SparseActs>
  /** Hook values for tokens [nSeq, seqLen]. */
  forward(tokens: Int32Array, nSeq: number, seqLen: number, outputs: HookName[]): Promise<Record<string, Tensor>>
  dispose(): Promise<void>
}
