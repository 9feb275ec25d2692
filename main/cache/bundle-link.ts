// What the cache takes from a bundle: its key (the verified file hashes), its file's default place, and
// the weights of the logit-effect product (the build job computes it; main, holding no weights, reads it).
import { dirname, join } from 'node:path'
import type { Bundle, BundleMeta } from '../bundle'
import type { LogitWeights } from './logits'
import { logitPath } from '../trace/logit-effect'
import { SCHEMA_VERSION, type CacheKey } from './schema'
import { userCacheDir } from '../files/dirs'

export function cacheKeyOf(bundle: BundleMeta): CacheKey {
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

/**
 * A bundle may carry its summary cache, compressed (resources/demo does): unpacked into the cache folder and
 * read until the app has built its own, so the features are on screen with no build (ship.ts; written by
 * `feature-tracer cache ship`).
 */
export const SHIPPED_CACHE = 'summary.sqlite.br'

/** Where the shipped summary of a bundle is unpacked: beside the cache, under the bundle's hash. */
export function unpackedShippedPath(bundle: BundleMeta, cachePath: string): string {
  return join(dirname(cachePath), `${bundle.hashes.bundle}.shipped.sqlite`)
}

/** Bundle folders may be read-only, so the cache lives in the user's cache folder under the bundle hash. */
export function defaultCachePath(bundle: BundleMeta, dir: string = userCacheDir()): string {
  return join(dir, `${bundle.hashes.bundle}.sqlite`)
}

export function logitWeightsOf(bundle: Bundle): LogitWeights | null {
  const path = logitPath(bundle.hookPoint.hook)
  const W_U = bundle.model.get('unembed.W_U')
  if (!path || !W_U) return null
  const W_out = path === 'mlp_post' ? bundle.model.get(`blocks.${bundle.hookPoint.layer}.mlp.W_out`) : path === 'z' ? bundle.model.get(`blocks.${bundle.hookPoint.layer}.attn.W_O`) : null
  if (path !== 'resid' && !W_out) return null
  return { W_dec: bundle.sae.W_dec, W_out: W_out ?? null, W_U }
}
