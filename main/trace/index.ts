// The science of feature tracing (issue 5): pure functions from arrays to arrays, each tested against the
// PyTorch goldens of tools/golden.py, and traceAt, which runs the engine and assembles a Trace.
export { headVectors, qkGrid, qkKeyVectors, qkPair, queries, type HeadVectors, type QkGrid, type QkKeyVector } from './circuits'
export { compareTraces, type TokenScoreDiff, type TraceComparison } from './compare'
export { CORPUS_CHUNK_TOKENS, corpusScores, corpusScoresToJson, scatterSample, type CorpusScores, type CorpusScoresEngine, type CorpusScoresOptions } from './corpus-scores'
export { decomposeAt, headWriteDirections, strongestSourceAndHead, type Decomposition, type DecompositionInput } from './decompose'
export { LINEARIZABLE_HOOKS, linearizeFeature, type Linearization } from './linearize'
export { activation, cosine, erf, layerNorm, pearson, topIndices } from './math'
export { promptView, type PromptToken, type PromptView } from './prompt'
export { fidelity, scoreRow, scoreRows, type Fidelity, type FidelityRow, type ScopeView, type ScoreRow } from './scores'
export {
  bundleViews,
  logitEffectDirection,
  pointDirection,
  pointSequence,
  prefetchScope,
  promptTokens,
  residMidHook,
  SCORE_BATCH,
  traceAt,
  tracePoint,
  traceScope,
  TraceInputError,
  isTraceInputError,
  type Convention,
  type ConventionPoint,
  type ConventionScope,
  type ConventionTrace,
  type PointTrace,
  type ScopeTrace,
  type HeadTables,
  type TokenScore,
  type Trace,
  type TraceEngine,
  type TraceOptions,
  type TracePoint,
  type VocabScores,
} from './trace'
export { pointTraceToJson, scopeTraceToJson, traceToJson, type TraceJsonOptions } from './serialize'
export { encoderColumn, modelWeights, saeView, type ModelWeights, type SaeView } from './weights'
