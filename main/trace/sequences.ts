// A feature's activation at every position of some corpus sequences (the feature.sequences channel): the
// examples' running text shades each token by it. The values come from the engine's saeActs, the same
// encode (hook values → SAE → gate → every non-zero activation) the cache build runs, so a row's token
// gets the activation its grid shows and every other token the one the cache would have stored.
import type { Bundle } from '../bundle'
import { checkFeatureId } from '../bundle/feature-id'
import type { ComputeEngine } from '../compute/api'
import type { FeatureSequence } from '../../common/contract'
import { tokenText } from '../../common/text'
import { TraceInputError } from './types'

export async function featureSequences(
  bundle: Pick<Bundle, 'config' | 'tokens'>,
  engine: Pick<ComputeEngine, 'saeActs'>,
  feature: number,
  samples: readonly number[],
  display: readonly string[],
): Promise<FeatureSequence[]> {
  checkFeatureId(feature, bundle.config.sae.d_sae, (m) => new TraceInputError(m))
  const { data, nSeq, seqLen } = bundle.tokens
  for (const s of samples) if (!Number.isInteger(s) || s < 0 || s >= nSeq) throw new TraceInputError(`sample ${s} outside [0, ${nSeq})`)
  if (samples.length === 0) return []
  const tokens = new Int32Array(samples.length * seqLen)
  samples.forEach((s, i) => tokens.set(data.subarray(s * seqLen, (s + 1) * seqLen), i * seqLen))
  const acts = await engine.saeActs(tokens, samples.length, seqLen)
  return samples.map((sample, i) => {
    const tokenIds = Array.from(tokens.subarray(i * seqLen, (i + 1) * seqLen))
    const activations = tokenIds.map((_, pos) => {
      const t = i * seqLen + pos
      for (let j = acts.rowPtr[t]; j < acts.rowPtr[t + 1]; j++) if (acts.featureIds[j] === feature) return acts.values[j]
      return 0
    })
    return { sample, tokenIds, tokens: tokenIds.map((id) => tokenText(display, id)), activations }
  })
}
