// The atlas channels (issue 15 §1). Main reads the feature's firings from the serving cache (it holds the
// cache, never the weights), picks the atlas's points (main/trace/atlas-points.ts) and starts the atlas as
// a job in a process of its own (main/trace/atlas-job.ts); its result arrives with job.done and the last
// one can be fetched again.
import type { AtlasJson } from '../../common/contract'
import { FtError } from '../../common/errors'
import { checkFeatureId } from '../bundle/feature-id'
import { atlasPoints } from '../trace/atlas-points'
import type { HandlerTable } from './dispatch'
import { servingReader } from './serving'
import type { Workbench } from './workbench'

type AtlasHandlers = Pick<HandlerTable, 'trace.atlas' | 'trace.atlas.result'>

export function createAtlasHandlers(wb: Workbench): AtlasHandlers {
  let last: AtlasJson | null = null
  return {
    'trace.atlas': async ({ jobId, feature, top, quantileSamples, topK }) => {
      const running = wb.jobs.running('trace.atlas')
      if (running) throw new FtError('busy', `an atlas is already being computed (job ${running.id}); cancel it or wait`)
      const open = await wb.bundle()
      checkFeatureId(feature, open.bundle.config.sae.d_sae)
      // The points are the examples the feature tab shows by default: without BOS (main/cache/bos.ts), whose
      // position 0 has no context to linearize through.
      const points = atlasPoints(servingReader(open).detail(feature, top), top, quantileSamples)
      if (points.length === 0) throw new FtError('invalid_request', `feature ${feature} never fires in the cache: an atlas needs firings`)
      const job = wb.jobs.start('trace.atlas', jobId, { jobId, bundleDir: open.bundle.dir, feature, points, topK })
      void job.ended.then((end) => {
        if (end.outcome === 'done') last = end.value
        wb.emit('job.done', {
          kind: 'trace.atlas',
          jobId,
          outcome: end.outcome,
          ...(end.outcome === 'failed' ? { error: end.error } : {}),
          ...(end.outcome === 'done' ? { result: end.value } : {}),
        })
      })
      return { jobId }
    },
    'trace.atlas.result': ({ jobId }) => {
      if (last?.jobId !== jobId) throw new FtError('not_found', `no finished atlas job ${jobId} (only the last one is kept)`)
      return last
    },
  }
}
