// The engine factory for code that runs in its own worker already (the cache build job): an OrtEngine on
// the calling thread. Everything on main's thread goes through ComputeWorkerClient instead.
import type { Bundle } from '../bundle'
import type { ComputeEngine } from './api'
import { OrtEngine, type OrtEngineOptions } from './ort-engine'

export { OrtEngine, type OrtEngineOptions } from './ort-engine'

export function createEngine(bundle: Bundle, opts: OrtEngineOptions = {}): Promise<ComputeEngine> {
  return OrtEngine.create(bundle, opts)
}
