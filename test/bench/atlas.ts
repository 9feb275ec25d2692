// Mechanism-atlas benchmark (issue 15 §5: 96 points in < 5 s on the demo bundle, < 30 s at gelu-1l's
// shape, CPU). `npx tsx test/bench/atlas.ts [--bundle DIR] [--threads T] [--direct]` reports, does not assert:
// - the job as the app runs it (the Workbench's trace.atlas: the points from the cache's top list and
//   quantile groups (or intervals), a process of its own that loads the bundle and builds an engine), wall
//   time from the request to job.done, and the atlas's own time inside the job (elapsedSec);
// - computeAtlas on this thread with a warm engine at 96 points in 96 distinct sequences (the worst case:
//   one forward sequence per point), which needs no cache (--direct: only this, e.g. for a gelu-1l-shaped
//   bundle with no cache built).
import { parseArgs } from 'node:util'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AtlasJson, JobDone } from '../../common/contract'
import { unwrap } from '../../main/app/dispatch'
import { createWorkbench } from '../../main/app/workbench'
import { loadBundle } from '../../main/bundle'
import { OrtEngine } from '../../main/compute/ort-engine'
import { computeAtlas, type AtlasPointIn } from '../../main/trace/atlas'

const { values: args } = parseArgs({ options: { bundle: { type: 'string', default: 'resources/demo' }, threads: { type: 'string', default: '2' }, direct: { type: 'boolean', default: false }, feature: { type: 'string', default: '1' } } })
const dir = args.bundle!
const feature = Number(args.feature)
const bundle = await loadBundle(dir)
const { nSeq, seqLen } = bundle.tokens
const m = bundle.config.model
console.log(`bundle ${dir}: ${bundle.config.name}; d_model ${m.d_model}, d_mlp ${m.d_mlp}, d_vocab ${m.d_vocab}, ${m.n_layers} layer(s); ${nSeq}×${seqLen} tokens; hook ${bundle.config.sae.hook_point}`)

if (!args.direct) {
  const tmp = mkdtempSync(join(tmpdir(), 'ft-bench-atlas-'))
  const wb = createWorkbench({ bundleDir: dir, userDataDir: tmp })
  try {
    const jobId = 'bench-atlas'
    const done = new Promise<JobDone>((resolve) => wb.subscribe((e, p) => e === 'job.done' && (p as JobDone).jobId === jobId && resolve(p as JobDone)))
    const t0 = performance.now()
    unwrap(await wb.invoke('trace.atlas', { jobId, feature, top: 64, quantileSamples: 32 }))
    const end = await done
    const wall = (performance.now() - t0) / 1000
    if (end.outcome !== 'done') throw new Error(`the atlas job ended ${end.outcome}: ${end.error?.message}`)
    const a = (end as { result?: AtlasJson }).result!
    console.log(`job (trace.atlas, feature ${feature}): ${a.points.length} points, ${new Set(a.points.map((p) => p.batch)).size} sequences: ${wall.toFixed(2)} s from request to job.done (process start, bundle load, engine), of which the atlas ${a.elapsedSec.toFixed(2)} s`)
  } finally {
    await wb.close()
    rmSync(tmp, { recursive: true, force: true })
  }
}

const engine = await OrtEngine.create(bundle, { providers: ['cpu'], intraOpNumThreads: Number(args.threads) })
try {
  // 96 points, each in a sequence of its own, at positions spread over the sequence (not position 0).
  const step = Math.max(1, Math.floor(nSeq / 96))
  const points: AtlasPointIn[] = Array.from({ length: Math.min(96, nSeq) }, (_, i) => ({ sample: (i * step) % nSeq, pos: 1 + ((i * 37) % (seqLen - 1)), source: 'top' }))
  await computeAtlas(bundle, engine, feature, points.slice(0, 4)) // warm the sessions
  const times: number[] = []
  for (let r = 0; r < 2; r++) {
    const t0 = performance.now()
    await computeAtlas(bundle, engine, feature, points)
    times.push((performance.now() - t0) / 1000)
  }
  console.log(`computeAtlas, warm engine, ${points.length} points in ${points.length} sequences: ${times.map((t) => t.toFixed(2)).join(' s, ')} s (${args.threads} ORT threads)`)
} finally {
  await engine.dispose()
}
