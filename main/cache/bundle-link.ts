// What the cache takes from a bundle: its key (the provenance hashes), the corpus, the token texts and
// the weights of the logit-effect product. Shared by the build worker and the main-side reader.
import { homedir } from 'node:os'
import { join } from 'node:path'
import type { Bundle } from '../bundle'
import type { LogitWeights } from './logits'
import { logitPath } from './logits'
import { displayStrings, type CorpusView } from './rows'
import { SCHEMA_VERSION, type CacheKey } from './schema'

export function cacheKeyOf(bundle: Bundle): CacheKey {
  const files = bundle.hashes.files
  return {
    schemaVersion: SCHEMA_VERSION,
    modelSha256: files['model.safetensors'],
    saeSha256: files['sae.safetensors'],
    tokensSha256: files['tokens.safetensors'],
    nSeq: bundle.tokens.nSeq,
    seqLen: bundle.tokens.seqLen,
    dSae: bundle.config.sae.d_sae,
  }
}

/** The user's cache folder: $XDG_CACHE_HOME/feature-tracer, else ~/.cache/feature-tracer. */
export function userCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME.length > 0 ? env.XDG_CACHE_HOME : join(homedir(), '.cache')
  return join(base, 'feature-tracer')
}

/** Bundle folders may be read-only, so the cache lives in the user's cache folder under the bundle hash. */
export function defaultCachePath(bundle: Bundle, dir: string = userCacheDir()): string {
  return join(dir, `${bundle.hashes.bundle}.sqlite`)
}

export function corpusViewOf(bundle: Bundle): CorpusView {
  const strings = bundle.tokenizer.tokenStrings()
  // Ids the tokenizer lacks but the model has (padding rows of W_U) still get a name.
  const display = displayStrings(strings)
  for (let i = display.length; i < bundle.config.model.d_vocab; i++) display.push(`<${i}>`)
  return { corpus: bundle.tokens.data, seqLen: bundle.tokens.seqLen, display }
}

export function logitWeightsOf(bundle: Bundle): LogitWeights | null {
  const path = logitPath(bundle.hookPoint.hook)
  const W_U = bundle.model.get('unembed.W_U')
  if (!path || !W_U) return null
  const W_out = path === 'mlp_post' ? bundle.model.get(`blocks.${bundle.hookPoint.layer}.mlp.W_out`) : null
  if (path === 'mlp_post' && !W_out) return null
  return { W_dec: bundle.sae.W_dec, W_out: W_out ?? null, W_U }
}
