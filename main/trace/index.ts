// The science of feature tracing (issue 5): pure functions from arrays to arrays, each tested against the
// PyTorch goldens of tools/golden.py, and traceAt, which runs the engine and assembles a Trace.
export { ABLATION_TERMS, ablationsAt, MEAN_SEQUENCES, traceAblations, type AblationInput } from './ablate'
export { headVectors, qkGrid, qkKeyVector, qkPair, queries, type HeadVectors, type QkGrid, type QkKeyVector } from './circuits'
export { comparePoints, compareTraces, indexInScope, matchTerms, scoreScatter, type TokenScoreDiff, type TraceComparison } from './compare'
export { CORPUS_CHUNK_TOKENS, corpusScores, corpusScoresToJson, scatterSample, type CorpusScores, type CorpusScoresEngine, type CorpusScoresOptions } from './corpus-scores'
export { decomposeAt, decomposeAttentionHook, headTerms, headWriteDirections, strongestSourceAndHead, type AttentionLayerValues, type Decomposition, type DecompositionInput } from './decompose'
export { ATTENTION_HOOKS, attentionReadDirections, linearizeFeature, residPointOf, TRACEABLE_HOOKS, type Linearization } from './linearize'
export { logitEffectDirection, logitPath } from './logit-effect'
export { bundleViews, linearizeAt, pointDirection, pointSequence, promptTokens, type BundleViews } from './locate'
export { tracePlan, type TracePlan } from './plan'
export { activation, cosine, erf, layerNorm, pearson, topIndices } from './math'
export { tracePoint } from './point'
export { PointRows } from './point-rows'
export { promptView, type PromptToken, type PromptView } from './prompt'
export { prefetchScope, SCORE_BATCH, traceScope } from './scope'
export { featureSequences } from './sequences'
export { fidelity, scoreRow, scoreRows, type FidelityRow, type ScopeView, type ScoreRow } from './scores'
export { pointTraceToJson, scopeTraceToJson, traceToJson, type TraceJsonOptions } from './serialize'
export { traceAt } from './trace'
export {
  TraceInputError,
  isTraceInputError,
  type Convention,
  type ConventionPoint,
  type ConventionScope,
  type ConventionTrace,
  type Fidelity,
  type HeadTables,
  type PointTrace,
  type ScopeTrace,
  type TokenScore,
  type Trace,
  type TraceEngine,
  type TraceOptions,
  type TracePoint,
  type VocabScores,
} from './types'
export { encoderColumn, modelWeights, saeView, type ModelWeights, type SaeView } from './weights'
