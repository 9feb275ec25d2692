// Whole-corpus activation-scores benchmark. `npx tsx test/bench/corpus.ts [--bundle DIR] [--threads T]`
// runs trace.corpusScores as the app does (the Workbench starts the job's process; progress arrives as
// job.progress events) over the bundle's whole corpus (the demo: 8192 × 128 tokens; a demo-shaped one:
// `/usr/bin/python3 tools/make_fake_demo.py .cache/fakedemo-1m --n-seq 8192`), then cancels a second run
// after its first chunk. Baseline in the same process: the bare forward pass to resid_mid and the hook over
// one chunk with an OrtEngine on this thread, as tokens/s; the job's rate is reported against it.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { loadBundle } from '../../main/bundle'
import type { HookName } from '../../main/compute/api'
import { OrtEngine } from '../../main/compute/ort-engine'
import type { JobDone, JobProgress } from '../../common/contract'
import { unwrap } from '../../main/app/dispatch'
import { createWorkbench, type Workbench } from '../../main/app/workbench'
import { CORPUS_CHUNK_TOKENS } from '../../main/trace'
import { processCpuMs } from './proc'

const { values: args } = parseArgs({ options: { bundle: { type: 'string', default: 'resources/demo' }, threads: { type: 'string', default: '2' } } })
const dir = args.bundle!
const threads = Number(args.threads)
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const cpuMs = (u: NodeJS.CpuUsage): number => (u.user + u.system) / 1000

const bundle = await loadBundle(dir)
const { nSeq, seqLen } = bundle.tokens
const total = nSeq * seqLen
console.log(`bundle ${dir}: ${bundle.config.name}; ${nSeq}×${seqLen} = ${total} tokens, d_model ${bundle.config.model.d_model}, hook ${bundle.config.sae.hook_point}`)

// Baseline: the forward pass the job needs, over one chunk, on this thread.
const chunkSeqs = Math.max(1, Math.floor(CORPUS_CHUNK_TOKENS / seqLen))
const engine = await OrtEngine.create(bundle, { providers: ['cpu'], intraOpNumThreads: threads })
const hooks = [`blocks.${bundle.hookPoint.layer}.hook_resid_mid`, bundle.config.sae.hook_point] as HookName[]
const tokens = bundle.tokens.data.subarray(0, Math.min(nSeq, chunkSeqs) * seqLen)
await engine.forward(tokens, tokens.length / seqLen, seqLen, hooks)
const fwd: number[] = []
const fwdCpu: number[] = []
for (let i = 0; i < 3; i++) {
  const c = process.cpuUsage()
  const t = performance.now()
  await engine.forward(tokens, tokens.length / seqLen, seqLen, hooks)
  fwd.push(performance.now() - t)
  fwdCpu.push(cpuMs(process.cpuUsage(c)))
}
await engine.dispose()
const forwardRate = tokens.length / (median(fwd) / 1000)
const forwardCpuPerToken = median(fwdCpu) / tokens.length
console.log(
  `baseline: forward to resid_mid + ${bundle.config.sae.hook_point} over one chunk (${tokens.length} tokens) on this thread: ` +
    `${median(fwd).toFixed(0)} ms, ${forwardRate.toFixed(0)} tokens/s, ${(forwardCpuPerToken * 1000).toFixed(1)} µs CPU a token`,
)

type ScoresDone = Extract<JobDone, { kind: 'trace.corpusScores' }>
let runs = 0

function run(wb: Workbench, onProgress?: (p: JobProgress, jobId: string) => void) {
  const jobId = `bench-${++runs}`
  const progress: number[] = []
  let jobCpu = 0
  const done = new Promise<ScoresDone>((resolve) => {
    const off = wb.subscribe((event, p) => {
      if (event === 'job.progress' && (p as JobProgress).jobId === jobId) {
        progress.push(performance.now())
        // The job's process ends with the job: read its CPU time at each report (the last is after the scoring).
        const pid = wb.runningJob(jobId)?.pid
        if (pid) jobCpu = processCpuMs(pid)
        onProgress?.(p as JobProgress, jobId)
      } else if (event === 'job.done' && (p as JobDone).jobId === jobId) {
        off()
        resolve(p as ScoresDone)
      }
    })
  })
  const started = (async () => unwrap(await wb.invoke('trace.corpusScores', { jobId, point: { feature: 7, sample: 3, pos: 17 }, convention: 'u' })).jobId)()
  return { started, done, progress, jobCpu: () => jobCpu }
}

const tmp = mkdtempSync(join(tmpdir(), 'ft-bench-corpus-'))
const wb = createWorkbench({ bundleDir: dir, cachePath: join(tmp, 'cache.sqlite'), userDataDir: join(tmp, 'user') })
try {
  const t0 = performance.now()
  const full = run(wb)
  await full.started
  const end = await full.done
  const wall = (performance.now() - t0) / 1000
  const jobCpu = full.jobCpu()
  if (end.outcome !== 'done') throw new Error(`job ${end.outcome}: ${end.error?.message}`)
  const computeSecs = (full.progress.at(-1)! - full.progress[0]) / 1000
  const rate = total / computeSecs
  console.log(
    `corpus scores (u) over ${total} tokens through the job's process: ${wall.toFixed(1)} s from the call to the result ` +
      `(process start + direction ${((full.progress[0] - t0) / 1000).toFixed(1)} s, scoring ${computeSecs.toFixed(1)} s), ${(jobCpu / 1000).toFixed(1)} s CPU (the job's process)`,
  )
  const cpuPerToken = jobCpu / total
  console.log(
    `  ${rate.toFixed(0)} tokens/s = ${(rate / forwardRate).toFixed(2)} × the bare forward pass's rate; ${(cpuPerToken * 1000).toFixed(1)} µs CPU a token = ` +
      `${(cpuPerToken / forwardCpuPerToken).toFixed(2)} × the forward pass's`,
  )
  console.log(`  fidelity r ${end.result!.fidelity.pearson.toFixed(3)}, r after ReLU ${end.result!.fidelity.pearsonRelu.toFixed(3)}`)

  let cancelAt = 0
  const cancelled = run(wb, (p, id) => {
    if (!cancelAt && p.doneTokens > 0) {
      cancelAt = performance.now()
      void wb.invoke('job.cancel', { jobId: id })
    }
  })
  const cEnd = await cancelled.done
  console.log(`cancel after the first chunk: ${cEnd.outcome} ${(performance.now() - cancelAt).toFixed(0)} ms after the cancel call`)
} finally {
  await wb.close()
  rmSync(tmp, { recursive: true, force: true })
}
