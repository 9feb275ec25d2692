// Which cache answers the feature queries: the app's own once it is built, the bundle's shipped summary
// until then, and else the app's own build's partial summary while it runs (CacheReader.list/detail).
import type { CacheState } from '../../common/contract'
import type { CacheReader } from '../cache/query'

/** What the choice needs of an open bundle (workbench.ts's OpenBundle). */
export interface CacheChoice {
  reader: CacheReader
  shipped: CacheReader | null
}

/**
 * The cache the feature queries read: the one this app built when it is ready, else the summary shipped in
 * the bundle folder when that one fits the bundle (a newcomer sees the demo's features with no build), else
 * the app's own (a build's partial summary so far, or errors that say what to build).
 */
export function servingReader(open: CacheChoice): CacheReader {
  if (open.reader.status().state === 'ready') return open.reader
  if (open.shipped?.status().state === 'ready') return open.shipped
  return open.reader
}

/** The shipped summary the queries read while the app's own cache is not ready; null when none fits. */
export function shippedState(open: CacheChoice): CacheState['shipped'] | null {
  const s = open.shipped?.status()
  if (!s || s.state !== 'ready') return null
  return { path: s.path, builtAt: s.builtAt ?? '', fullTable: s.fullTable ?? false, sizeBytes: s.sizeBytes }
}
