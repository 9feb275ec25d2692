// A feature's activation at every position of some corpus sequences (the feature.sequences channel): the
// examples' running text shades each token by it. It is the trace scope's own computation of the feature's
// true activation (scope.ts: the hook values projected on W_enc[:,f], plus b_enc[f] − inputBias·W_enc[:,f],
// through the SAE's gate, TopK's from the tokens' top pre-activations), not the whole SAE: one column of
// W_enc costs a forward pass to the hook, where encoding every feature (the cache build's saeActs) took
// ~40 s for 64 demo sequences on 2 loaded cores. The block is not kept, so no batch a trace wants is evicted.
import type { Bundle } from '../bundle'
import { checkFeatureId } from '../bundle/feature-id'
import type { HookName } from '../compute/api'
import type { FeatureSequence } from '../../common/contract'
import { tokenText } from '../../common/text'
import { preBias } from './gate'
import { bundleViews } from './locate'
import { gateOf, topKRivals } from './scope'
import { TraceInputError, type TraceEngine } from './types'
import { encoderColumn } from './weights'

export async function featureSequences(
  bundle: Bundle,
  engine: Pick<TraceEngine, 'projectBlock' | 'saeTopPre'>,
  feature: number,
  samples: readonly number[],
): Promise<FeatureSequence[]> {
  checkFeatureId(feature, bundle.config.sae.d_sae, (m) => new TraceInputError(m))
  const { data, nSeq, seqLen } = bundle.tokens
  for (const s of samples) if (!Number.isInteger(s) || s < 0 || s >= nSeq) throw new TraceInputError(`sample ${s} outside [0, ${nSeq})`)
  if (samples.length === 0) return []
  const tokens = new Int32Array(samples.length * seqLen)
  samples.forEach((s, i) => tokens.set(data.subarray(s * seqLen, (s + 1) * seqLen), i * seqLen))
  const block = { key: `sequences:${samples.join(',')}`, tokens, nSeq: samples.length, seqLen, keep: false }
  const { sae, display } = bundleViews(bundle)
  const column = encoderColumn(sae, feature)
  const [proj] = await engine.projectBlock({ ...block, projections: [{ hook: bundle.config.sae.hook_point as HookName, vectors: column }] })
  const gate = gateOf(bundle, feature, await topKRivals(bundle, engine, block, feature))
  const bias = preBias(sae, feature, column)
  return samples.map((sample, i) => {
    const tokenIds = Array.from(tokens.subarray(i * seqLen, (i + 1) * seqLen))
    const activations = tokenIds.map((_, pos) => gate.actual(i * seqLen + pos, proj[i * seqLen + pos] + bias))
    return { sample, tokenIds, tokens: tokenIds.map((id) => tokenText(display, id)), activations }
  })
}
