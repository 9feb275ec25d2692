// A trace's types in main: the contract's shapes (common/contract/trace.ts) with typed arrays, so a field
// is declared once for both sides. What only main needs (the request options, the engine, input errors)
// is declared here.
import type { ComputeEngine, TraceCompute } from '../compute/api'
import type {
  ConventionPointOf,
  ConventionScopeOf,
  FidelityOf,
  HeadTablesOf,
  TokenScoreJson,
  TraceArrays,
  TraceConvention,
  TraceOf,
  TracePointOf,
  TracePointRequest,
  TraceScopeKind,
  TraceScopeOf,
  VocabTableJson,
} from '../../common/contract'

/** Every vocabulary token's score, and the top and bottom of them (the wire keeps the lists, and all rows on request). */
export interface VocabScores extends Pick<VocabTableJson, 'top' | 'bottom'> {
  /** One score per vocabulary id. */
  scores: Float32Array
}

/** How main holds a trace's arrays (the wire form is the contract's WireArrays). */
export interface TypedArrays extends TraceArrays {
  floats: Float32Array
  tokenIds: Int32Array
  tokenIndices: Uint32Array
  vocab: VocabScores
}

export type TokenScore = TokenScoreJson
export type HeadTables = HeadTablesOf<TypedArrays>
export type Convention = TraceConvention
export type ConventionPoint = ConventionPointOf<TypedArrays>
export type ConventionScope = ConventionScopeOf<TypedArrays>
export type ConventionTrace = ConventionPoint & ConventionScope
export type Fidelity = FidelityOf<TypedArrays>
export type TraceScope = TraceScopeKind
/** The point part of a trace: everything but the scope's arrays. */
export type PointTrace = TracePointOf<TypedArrays>
/** The scope part of a trace: activation scores and fidelity over the batch (or the prompt). */
export type ScopeTrace = TraceScopeOf<TypedArrays>
/** A whole trace: the point and the scope. */
export type Trace = TraceOf<TypedArrays>

/** Where to trace: a feature at a corpus token (sequence `sample`, position `pos`) or at token `token` of a typed prompt. */
export type TracePoint = TracePointRequest

export type TraceEngine = Pick<ComputeEngine, 'forward'> & TraceCompute

export interface TraceOptions {
  /** Source position of the LN+OV and QK tables; default: the largest |term| of the v decomposition. */
  sourcePos?: number
  /** Head of the circuit tables, the QK grid and pairs (only its tables are computed); default: the head with the largest Σ|term| of the v decomposition. */
  head?: number
  /** Tokens of the QK grid; default: the five tokens before the point. */
  gridTokens?: number[]
  /** Rows per top/bottom vocabulary list (20). */
  topK?: number
  /** Rows of the activation-score and disagreement grids (100). */
  rowLimit?: number
}

export class TraceInputError extends Error {
  override readonly name = 'TraceInputError'
}

/** Whether an error is bad input the trace code detected (its own checks, or a range the engine refused). */
export function isTraceInputError(error: unknown): error is Error {
  return error instanceof TraceInputError || error instanceof RangeError
}
