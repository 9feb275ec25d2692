// A feature id names a feature of the bundle's SAE when it is an integer in [0, d_sae). Every place one
// arrives (the feature views, the cache's queries, a trace point, the prompt's heat strip) checks it here,
// so each refuses the same ids with the same words; the caller chooses the error (and so the IPC code).
import { FtError } from '../../common/errors'

/** Throws `error(message)` unless `feature` is an integer in [0, dSae); by default a `not_found` FtError. */
export function checkFeatureId(feature: number, dSae: number, error: (message: string) => Error = (m) => new FtError('not_found', m)): void {
  if (Number.isInteger(feature) && feature >= 0 && feature < dSae) return
  throw error(`feature ${feature} does not exist (the SAE has ${dSae} features, 0…${dSae - 1})`)
}
