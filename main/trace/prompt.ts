// The prompt view (issue 5, Interaction): a typed prompt tokenized as the corpus was, its top SAE features
// per token, and one feature's activation on every token (the heat strip). Clicking a token then traces
// there with traceAt(bundle, engine, { feature, prompt, token }).
import type { Bundle } from '../bundle'
import { checkFeatureId } from '../bundle/feature-id'
import type { ComputeEngine } from '../compute/api'
import type { PromptViewJson } from '../../common/contract'
import { visibleToken } from '../../common/text'
import { promptTokens } from './locate'
import { TraceInputError } from './types'

export type PromptView = PromptViewJson
export type PromptToken = PromptView['tokens'][number]

export async function promptView(bundle: Bundle, engine: Pick<ComputeEngine, 'saeActs'>, prompt: string, opts: { topK?: number; feature?: number } = {}): Promise<PromptView> {
  if (opts.feature !== undefined) checkFeatureId(opts.feature, bundle.config.sae.d_sae, (m) => new TraceInputError(m))
  const ids = promptTokens(bundle, prompt)
  const acts = await engine.saeActs(ids, 1, ids.length)
  const k = opts.topK ?? 10
  const tokens: PromptToken[] = Array.from(ids, (tokenId, pos) => {
    const fired: { feature: number; activation: number }[] = []
    for (let j = acts.rowPtr[pos]; j < acts.rowPtr[pos + 1]; j++) fired.push({ feature: acts.featureIds[j], activation: acts.values[j] })
    fired.sort((a, b) => b.activation - a.activation || a.feature - b.feature)
    return { pos, tokenId, str_tokens: visibleToken(bundle.tokenizer.tokenString(tokenId)), top: fired.slice(0, k), firing: fired.length }
  })
  let strip: PromptView['strip'] = null
  if (opts.feature !== undefined) {
    const f = opts.feature
    const activations = Array.from(ids, (_, pos) => {
      for (let j = acts.rowPtr[pos]; j < acts.rowPtr[pos + 1]; j++) if (acts.featureIds[j] === f) return acts.values[j]
      return 0
    })
    strip = { feature: f, activations }
  }
  return { prompt, tokens, strip }
}
