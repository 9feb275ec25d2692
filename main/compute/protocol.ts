// Messages between the compute worker (worker.ts) and its supervisor (worker-client.ts). Requests carry
// ids; the supervisor sends one at a time, so a crash or a cancel concerns exactly one request.
import type { BlockProjectionRequest, ExecutionProvider, HookName, SparseActs, Tensor, VocabProducts, VocabProductsRequest } from './api'
import type { OrtEngineOptions } from './ort-engine'

/** workerData of the compute worker. */
export interface WorkerInit {
  bundleDir: string
  engine: OrtEngineOptions
}

export type WorkerRequest =
  | { id: number; op: 'saeActs'; tokens: Int32Array; nSeq: number; seqLen: number }
  | { id: number; op: 'forward'; tokens: Int32Array; nSeq: number; seqLen: number; outputs: HookName[] }
  | { id: number; op: 'vocabProducts'; req: VocabProductsRequest }
  | { id: number; op: 'projectBlock'; req: BlockProjectionRequest }
  /** Supervision tests: make the worker die the way a fault would (an uncaught exception, or exit). */
  | { id: number; op: 'crash'; how: 'throw' | 'exit' }
  /** Supervision tests: hold the thread the way a long session.run() does. */
  | { id: number; op: 'block'; ms: number }

export interface WireError {
  name: string
  message: string
  code?: string
}

export type WorkerReply =
  | { type: 'ready'; provider: ExecutionProvider; skipped: { provider: ExecutionProvider; reason: string }[] }
  | { type: 'init-error'; error: WireError }
  | { type: 'result'; id: number; value: SparseActs | Record<string, Tensor> | VocabProducts | Float32Array[] | null }
  | { type: 'error'; id: number; error: WireError }

export function toWireError(e: unknown): WireError {
  const err = e instanceof Error ? e : new Error(String(e))
  const code = (err as { code?: unknown }).code
  return { name: err.name, message: err.message, ...(typeof code === 'string' ? { code } : {}) }
}

export type ResultValue = Extract<WorkerReply, { type: 'result' }>['value']

function isSparse(v: object): v is SparseActs {
  return (v as Partial<SparseActs>).rowPtr instanceof Uint32Array
}

/** The ArrayBuffers of a result, deduplicated (listing one buffer twice makes postMessage throw). */
export function transferList(value: ResultValue): ArrayBuffer[] {
  if (!value) return []
  let views: ArrayBufferView[]
  if (Array.isArray(value)) views = value
  else if (isSparse(value)) views = [value.rowPtr, value.featureIds, value.values]
  else views = Object.values(value as Record<string, Tensor | Float32Array>).map((t) => (t instanceof Float32Array ? t : t.data))
  return [...new Set(views.map((v) => v.buffer as ArrayBuffer))]
}
