// The compute engine's surface, shared by the compute process (main/app/compute-host.ts), the cache build
// job (main/cache) and the trace code (main/trace). Arrays are row-major; a "token" is one (sequence,
// position) pair, numbered sequence * seqLen + position within a request. Every method takes an optional
// RunContext last: the request's lane and its cancel signal (main/compute/run-gate.ts).

/** Every non-zero SAE activation of a block of tokens, in CSR form (no activation is ever dropped). */
export interface SparseActs {
  nTokens: number
  /** rowPtr[i]..rowPtr[i+1] index featureIds/values for token i; length nTokens + 1. */
  rowPtr: Uint32Array
  featureIds: Uint32Array
  values: Float32Array
}

/** A dense tensor returned by the engine. */
export type { Tensor } from '../bundle/tensor'
import type { Tensor } from '../bundle/tensor'
import type { RunContext } from './run-gate'
export type { Lane, RunContext } from './run-gate'

/** Hook values the forward graph can return, named as TransformerLens names them (layer L). */
export type HookName =
  | `blocks.${number}.hook_resid_pre`
  | `blocks.${number}.hook_resid_mid`
  | `blocks.${number}.hook_resid_post`
  | `blocks.${number}.attn.hook_pattern`
  | `blocks.${number}.attn.hook_v`
  | `blocks.${number}.attn.hook_z`
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
  saeActs(tokens: Int32Array, nSeq: number, seqLen: number, ctx?: RunContext): Promise<SparseActs>
  /** Hook values for tokens [nSeq, seqLen]. */
  forward(tokens: Int32Array, nSeq: number, seqLen: number, outputs: HookName[], ctx?: RunContext): Promise<Record<string, Tensor>>
  dispose(): Promise<void>
}

/**
 * Vocabulary-sized products for the trace code (main/trace), one ORT run for many vectors. Vectors are rows
 * of a row-major [k, d_model] matrix; every result is row-major [k, d_vocab], one row per vector.
 */
export interface VocabProductsRequest {
  /** The layer whose LN1 normalizes the keys (its attention is being traced). */
  layer: number
  /** Rows scored against W_E: row i of the result is W_E · vectors[i]. */
  embed: Float32Array
  /** Rows scored against LN1(W_E[x] + W_pos[keyPos]) for every token x. */
  keys: Float32Array
  keyPos: number
  /** Rows scored against the unembedding: row i is vectors[i] · W_U. */
  unembed: Float32Array
}

export interface VocabProducts {
  embed: Float32Array
  keys: Float32Array
  unembed: Float32Array
}

/** Hook values of a token block projected onto a few vectors: values[token, :] · vectors[i] for every i. */
export interface BlockProjectionRequest {
  /**
   * Names the token block: the engine keeps recent blocks' hook values under their keys, so a request
   * with a kept key (another trace in the same 128-sequence batch) skips the forward pass. A request
   * whose projections have no vectors only makes sure the block is kept (a prefetch).
   */
  key: string
  tokens: Int32Array
  nSeq: number
  seqLen: number
  projections: { hook: HookName; /** row-major [k, width of the hook] */ vectors: Float32Array }[]
  /**
   * false: a one-off block (a feature's examples, feature.sequences): its hook values are used and dropped,
   * so it evicts none of the batches kept for the next trace. Default: kept.
   */
  keep?: boolean
}

/** A token block (kept under `key` as projectBlock keeps it) and how many of its largest pre-activations to return. */
export interface SaeTopRequest {
  key: string
  tokens: Int32Array
  nSeq: number
  seqLen: number
  /** As BlockProjectionRequest's. */
  keep?: boolean
  /** At most d_sae. */
  width: number
}

/**
 * Each token's `width` largest SAE pre-activations (before any gate) and their feature ids, row-major
 * [nSeq·seqLen, width], each row descending, equal values lower feature id first (ONNX TopK's order).
 */
export interface SaeTop {
  width: number
  values: Float32Array
  indices: Int32Array
}

export interface TraceCompute {
  vocabProducts(req: VocabProductsRequest, ctx?: RunContext): Promise<VocabProducts>
  /** One result per projection, row-major [nSeq·seqLen, k]. */
  projectBlock(req: BlockProjectionRequest, ctx?: RunContext): Promise<Float32Array[]>
  /** What TopK SAEs' gate needs over a block (main/trace/gate.ts); engines for other kinds may lack it. */
  saeTopPre?(req: SaeTopRequest, ctx?: RunContext): Promise<SaeTop>
}
