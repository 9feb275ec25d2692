// Cache benchmark. `npx tsx test/bench/cache.ts --bundle DIR [--full]` builds DIR's cache for real (the
// build job's process, ONNX Runtime) in a temp folder and reports build time, tokens/s, cache size (bytes per
// firing) and query latencies, beside two baselines run on the bundle's own tokens in the same run
// (tools/bench_torch.py): PyTorch eager doing what the build computes, and the encoder's GEMM bound.
// `--synthetic [--tokens N] [--l0 K] [--d-sae D]` skips the model: a stand-in engine emits K firings per
// token over D features with a power-law frequency, to measure finalize and storage at demo scale on
// machines where the model would be too slow.
// `--partial-ms MS` sets how often the build writes its partial summary (progressive builds; default the
// build's own), `--no-partial` turns it off.
// `--finalize N` then times finalize alone N times in this process on the same committed chunks (copies of
// one file, the build's partial summary included): wall and CPU time per run, with the load average, so
// the code's cost shows apart from the machine's other work.
// `--ab N` measures what the partial summary costs the build: N rounds of the same build's compute phase
// with it off and on (ABBA order, one engine and one process for all, so the machine's load falls on both
// alike) over the corpus's first `--ab-tokens` tokens (default all), with where each spent its time; with
// the model (not --synthetic) it runs after the build above, or alone with `--ab-only`.
import { copyFileSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import type { ComputeEngine, SparseActs } from '../../main/compute/api'
import { emptyProfile, finishBuild, runBuild, type BuildProfile } from '../../main/cache/build'
import { cacheKeyOf, logitWeightsOf } from '../../main/cache/bundle-link'
import { topLogitEffects } from '../../main/cache/logits'
import { loadBundle } from '../../main/bundle'
import { OrtEngine } from '../../main/compute/ort-engine'
import { CacheReader } from '../../main/cache/query'
import { openCacheDb, readMeta, SCHEMA_VERSION, type CacheKey } from '../../main/cache/schema'
import type { CacheProgress } from '../../common/contract'
import { unwrap } from '../../main/app/dispatch'
import { createWorkbench } from '../../main/app/workbench'
import { openSqlite } from '../../main/native/sqlite'
import { torchBaselines } from './baselines'

const { values: args } = parseArgs({
  options: {
    bundle: { type: 'string' },
    synthetic: { type: 'boolean', default: false },
    tokens: { type: 'string', default: String(1 << 20) },
    'seq-len': { type: 'string', default: '128' },
    l0: { type: 'string', default: '40' },
    'd-sae': { type: 'string', default: '16384' },
    vocab: { type: 'string', default: '48262' },
    queries: { type: 'string', default: '200' },
    keep: { type: 'boolean', default: false },
    full: { type: 'boolean', default: false },
    'baseline-tokens': { type: 'string', default: '131072' },
    'partial-ms': { type: 'string' },
    'no-partial': { type: 'boolean', default: false },
    ab: { type: 'string', default: '0' },
    finalize: { type: 'string', default: '0' },
    'ab-tokens': { type: 'string' },
    'ab-only': { type: 'boolean', default: false },
  },
})

/** BuildInput.partialEveryMs as asked for (undefined: the build's default). */
const partialEveryMs = args['no-partial'] ? null : args['partial-ms'] === undefined ? undefined : Number(args['partial-ms'])
const partialText = partialEveryMs === null ? 'partial summary off' : `partial summary every ${partialEveryMs ?? 'default'} ms`

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`
const fileSize = (p: string): number => statSync(p).size + (() => { try { return statSync(`${p}-wal`).size } catch { return 0 } })()

/** xorshift32: the synthetic corpus and firings are the same on every run. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1
  return () => {
    s ^= s << 13
    s ^= s >>> 17
    s ^= s << 5
    return (s >>> 0) / 2 ** 32
  }
}

function syntheticEngine(dSae: number, l0: number): ComputeEngine {
  return {
    provider: 'cpu',
    async saeActs(tokens: Int32Array): Promise<SparseActs> {
      const n = tokens.length
      const rowPtr = new Uint32Array(n + 1)
      const ids = new Uint32Array(n * l0)
      const vals = new Float32Array(n * l0)
      let k = 0
      for (let i = 0; i < n; i++) {
        const r = rng(tokens[i] * 7919 + i * 104729 + 1)
        const seen = new Set<number>()
        for (let j = 0; j < l0; j++) {
          // Power-law feature frequency: a few dense features, a long sparse tail.
          const f = Math.min(dSae - 1, Math.floor(dSae * r() ** 3))
          if (seen.has(f)) continue
          seen.add(f)
        }
        for (const f of [...seen].sort((a, b) => a - b)) {
          ids[k] = f
          vals[k++] = Math.fround(0.01 + 5 * r() ** 2)
        }
        rowPtr[i + 1] = k
      }
      return { nTokens: n, rowPtr, featureIds: ids.subarray(0, k), values: vals.subarray(0, k) }
    },
    async forward() {
      throw new Error('not in the synthetic engine')
    },
    async dispose() {},
  }
}

async function synthetic(dir: string): Promise<void> {
  const seqLen = Number(args['seq-len'])
  const nSeq = Math.ceil(Number(args.tokens) / seqLen)
  const dSae = Number(args['d-sae'])
  const vocab = Number(args.vocab)
  const l0 = Number(args.l0)
  const r = rng(12345)
  const corpus = Int32Array.from({ length: nSeq * seqLen }, () => Math.floor(vocab * r() ** 2))
  const key: CacheKey = { schemaVersion: SCHEMA_VERSION, modelSha256: 'synthetic', saeSha256: 'synthetic', tokensSha256: 'synthetic', nSeq, seqLen, dSae }
  if (args['ab-only']) {
    console.log(`synthetic: ${nSeq}×${seqLen} tokens, d_sae ${dSae}, L0≈${l0}`)
    return abCompare(dir, syntheticEngine(dSae, l0), key, corpus, vocab)
  }
  const path = join(dir, 'synthetic.sqlite')
  const db = openCacheDb(path)
  let finalizeAt = 0
  const t0 = performance.now()
  await runBuild({
    db,
    engine: syntheticEngine(dSae, l0),
    key,
    corpus,
    vocabSize: vocab,
    partialEveryMs,
    onProgress: (p: CacheProgress) => {
      if (p.phase === 'finalize') finalizeAt = performance.now()
    },
  })
  const t1 = performance.now()
  db.close()
  console.log(`synthetic: ${nSeq}×${seqLen} tokens, d_sae ${dSae}, L0≈${l0}, ${partialText}`)
  console.log(`  compute+commit ${((finalizeAt - t0) / 1000).toFixed(1)} s = ${((nSeq * seqLen) / ((finalizeAt - t0) / 1000)).toFixed(0)} tokens/s, finalize+vacuum ${((t1 - finalizeAt) / 1000).toFixed(1)} s, size ${mib(fileSize(path))}`)
  const display = Array.from({ length: vocab }, (_, i) => `t${i}`)
  const reader = new CacheReader({ path, key, view: { corpus, seqLen, display }, logitWeights: null })
  await queries(
    (id) => reader.detail(id, 100),
    () => reader.summaries(),
    (t) => reader.byToken([t], 1, 100),
    dSae,
    vocab,
  )
  reader.close()
  if (Number(args.ab) > 0) await abCompare(dir, syntheticEngine(dSae, l0), key, corpus, vocab)
}

async function queries(
  feature: (id: number) => unknown,
  list: () => unknown,
  byToken: (t: number) => unknown,
  dSae: number,
  vocab: number,
): Promise<void> {
  const r = rng(7)
  const times: number[] = []
  for (let i = 0; i < Number(args.queries); i++) {
    const id = Math.floor(r() * dSae)
    const t = performance.now()
    await feature(id)
    times.push(performance.now() - t)
  }
  const t = performance.now()
  await list()
  const listMs = performance.now() - t
  const tokenTimes: number[] = []
  for (let i = 0; i < 50; i++) {
    const s = performance.now()
    await byToken(Math.floor(vocab * r() ** 2))
    tokenTimes.push(performance.now() - s)
  }
  console.log(`  feature.get median ${median(times).toFixed(2)} ms (max ${Math.max(...times).toFixed(1)} ms, ${times.length} random features)`)
  console.log(`  features.list ${listMs.toFixed(0)} ms; features.byToken median ${median(tokenTimes).toFixed(2)} ms`)
}

/** Firings in a finished cache: the sum of the feature rows' counts. */
function firings(path: string): number {
  const db = openSqlite(path, { readonly: true, fileMustExist: true })
  try {
    return (db.prepare('SELECT SUM(count) AS n FROM feature').get() as { n: number }).n
  } finally {
    db.close()
  }
}

async function real(dir: string, bundleDir: string): Promise<void> {
  const wb = createWorkbench({ bundleDir, cachePath: join(dir, 'bench.sqlite'), userDataDir: join(dir, 'user'), ...(partialEveryMs === undefined ? {} : { build: { partialEveryMs } }) })
  const info = unwrap(await wb.invoke('bundle.info', {}))
  let last: CacheProgress | null = null
  let finalizeAt = 0
  let logitsAt = 0
  const t0 = performance.now()
  const done = new Promise<void>((resolve, reject) =>
    wb.subscribe((event, payload) => {
      if (event === 'job.progress') {
        const p = payload as CacheProgress
        if (p.phase === 'finalize') finalizeAt = performance.now()
        else if (p.phase === 'logits') logitsAt = performance.now()
        else last = p
      }
      if (event === 'job.done') {
        const d = payload as { outcome: string; error?: { message: string } }
        if (d.outcome === 'done') resolve()
        else reject(new Error(d.error?.message ?? d.outcome))
      }
    }),
  )
  unwrap(await wb.invoke('cache.build', { jobId: 'bench', rebuild: true, full: args.full }))
  await done
  const end = performance.now()
  const secs = (end - t0) / 1000
  const tokens = info.dataset.n_seq * info.dataset.seq_len
  const status = unwrap(await wb.invoke('cache.status', {}))
  const provider = unwrap(await wb.invoke('bundle.info', {})).provider
  // finalize: from the compute phase's end until the summary answers (the logit step's start); the logit
  // step: the logit effects, their transaction and the VACUUM, until the job is done.
  const summaryAt = logitsAt || end
  const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`
  console.log(`${info.name}: ${tokens} tokens, d_sae ${info.sae.d_sae}, provider ${provider}, ${partialText}`)
  console.log(
    `  build ${secs.toFixed(1)} s end to end = ${(tokens / secs).toFixed(0)} tokens/s; compute phase ${s((finalizeAt || end) - t0)} at ${(last as CacheProgress | null)?.tokensPerSec.toFixed(0)} tokens/s; ` +
      `finalize (the summary answers) ${s(summaryAt - finalizeAt)}; logit step (logit effects, VACUUM) ${s(end - summaryAt)}; ${loadText()}`,
  )
  const nnz = firings(join(dir, 'bench.sqlite'))
  console.log(`  cache size ${mib(status.sizeBytes)} (${args.full ? 'summary and full table' : 'summary'}), ${(status.sizeBytes / nnz).toFixed(2)} bytes per non-zero activation (${nnz} of them)`)
  const computeRate = (last as CacheProgress | null)?.tokensPerSec ?? 0
  const base = torchBaselines(bundleDir, Number(args['baseline-tokens']))
  if (base) {
    const r = (x: number) => `${x.toFixed(2)}×`
    console.log(`  baselines, same tokens' first ${base.tokens}, ${base.threads} threads: PyTorch eager (forward + encode + nonzero) ${base.eager_tokens_per_s.toFixed(0)} tokens/s; encoder GEMM bound ${base.gemm_tokens_per_s.toFixed(0)} tokens/s (${base.gemm_gflops.toFixed(0)} GFLOP/s)`)
    console.log(`  compute phase ${r(computeRate / base.eager_tokens_per_s)} PyTorch eager, ${r(computeRate / base.gemm_tokens_per_s)} the GEMM bound; end to end ${r(tokens / secs / base.gemm_tokens_per_s)} the GEMM bound`)
  }
  await queries(
    async (id) => unwrap(await wb.invoke('feature.get', { id })),
    async () => unwrap(await wb.invoke('features.list', {})),
    async (t) => unwrap(await wb.invoke('features.byToken', { tokenId: t })),
    info.sae.d_sae,
    info.model.d_vocab,
  )
  await wb.close()
  await perFeatureLogits(bundleDir)
}

/** What a feature view pays for its logit effects before the logit step has stored them (from the weights, per feature). */
async function perFeatureLogits(bundleDir: string): Promise<void> {
  const bundle = await loadBundle(bundleDir)
  const weights = logitWeightsOf(bundle)
  if (!weights) return
  const r = rng(11)
  const times: number[] = []
  for (let i = 0; i < 9; i++) {
    const id = Math.floor(r() * bundle.config.sae.d_sae)
    const t = performance.now()
    topLogitEffects(weights, id, [])
    times.push(performance.now() - t)
  }
  console.log(`  a feature's logit effects from the weights, before the logit step stores them: median ${median(times).toFixed(0)} ms (${times.length} random features; ${loadText()})`)
}

/** Thrown by the A/B builds' progress hook as the compute phase ends: finalize is the same either way. */
class ComputeDone extends Error {}

interface AbRun {
  partial: boolean
  secs: number
  /** CPU seconds of this process (ONNX Runtime's threads included): on a loaded machine, steadier than secs. */
  cpuSecs: number
  profile: BuildProfile
  load: number
}

const loadText = (): string => `load average ${loadavg().map((x) => x.toFixed(2)).join(', ')}`

/** The same build's compute phase with the partial summary off and on, interleaved (see --ab above). */
async function abCompare(dir: string, engine: ComputeEngine, key: CacheKey, corpus: Int32Array, vocab: number): Promise<void> {
  const rounds = Number(args.ab)
  const nSeq = Math.min(key.nSeq, Math.ceil(Number(args['ab-tokens'] ?? key.nSeq * key.seqLen) / key.seqLen))
  const abKey = { ...key, nSeq }
  const abCorpus = corpus.subarray(0, nSeq * key.seqLen)
  const tokens = nSeq * key.seqLen
  // The engine's first run pays its warm-up; neither side should.
  await engine.saeActs(abCorpus.subarray(0, key.seqLen), 1, key.seqLen)
  const on = partialEveryMs ?? undefined
  console.log(`  A/B: ${rounds} rounds of the compute phase over ${tokens} tokens, partial summary off and every ${on ?? 'default'} ms; ${loadText()}`)
  const runs: AbRun[] = []
  const s = (ms: number): string => (ms / 1000).toFixed(1)
  for (let i = 0; i < 2 * rounds; i++) {
    // ABBA: off, on, on, off, ... so a drift in load or heat weighs on both alike.
    const partial = i % 4 === 1 || i % 4 === 2
    const path = join(dir, `ab-${i}.sqlite`)
    const db = openCacheDb(path)
    const profile = emptyProfile()
    const load = loadavg()[0]
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    let t1 = 0
    try {
      await runBuild({
        db,
        engine,
        key: abKey,
        corpus: abCorpus,
        vocabSize: vocab,
        partialEveryMs: partial ? on : null,
        profile,
        onProgress: (p) => {
          if (p.phase === 'compute') return
          t1 = performance.now()
          throw new ComputeDone()
        },
      })
    } catch (e) {
      if (!(e instanceof ComputeDone)) throw e
    } finally {
      db.close()
      for (const f of [path, `${path}-wal`, `${path}-shm`]) rmSync(f, { force: true })
    }
    const cpu = process.cpuUsage(cpu0)
    const run = { partial, secs: (t1 - t0) / 1000, cpuSecs: (cpu.user + cpu.system) / 1e6, profile, load }
    runs.push(run)
    const p = run.profile
    console.log(
      `    ${partial ? 'on ' : 'off'} ${(tokens / run.secs).toFixed(0)} tokens/s (${run.secs.toFixed(1)} s, ${run.cpuSecs.toFixed(1)} CPU s; engine ${s(p.engineMs)} s, encode ${s(p.encodeMs)} s, ` +
        `partial add ${s(p.partialAddMs)} s, commit ${s(p.commitMs)} s of which ${p.partialWrites} partial writes ${s(p.partialWriteMs)} s; load ${load.toFixed(2)})`,
    )
  }
  const rate = (partial: boolean): number => median(runs.filter((r) => r.partial === partial).map((r) => tokens / r.secs))
  const offRate = rate(false)
  const onRate = rate(true)
  const cpuPerToken = (partial: boolean): number => median(runs.filter((r) => r.partial === partial).map((r) => r.cpuSecs / tokens))
  // Each round's pair (off, on) ran back to back: its ratio is the least disturbed by load changes.
  const pairs = Array.from({ length: rounds }, (_, r) => {
    const [a, b] = [runs[2 * r], runs[2 * r + 1]]
    const [off, onRun] = a.partial ? [b, a] : [a, b]
    return 1 - off.secs / onRun.secs
  })
  // The partial summary's own time: add(), and what its writes add to the commits (their transactions' I/O
  // included, which write() alone does not see) over the off builds' commits.
  const offCommitMs = median(runs.filter((r) => !r.partial).map((r) => r.profile.commitMs))
  const spent = median(runs.filter((r) => r.partial).map((r) => (r.profile.partialAddMs + Math.max(0, r.profile.commitMs - offCommitMs)) / 1000 / r.secs))
  const pct = (x: number): string => `${(100 * x).toFixed(1)} %`
  console.log(
    `  A/B: off ${offRate.toFixed(0)} tokens/s, on ${onRate.toFixed(0)} tokens/s (medians): throughput ${pct(1 - onRate / offRate)} lower with the partial summary; ` +
      `per round ${pairs.map(pct).join(', ')}; CPU time per token ${pct(cpuPerToken(true) / cpuPerToken(false) - 1)} higher; time in the partial summary's own code ${pct(spent)} of the on builds' (median); ${loadText()}`,
  )
}

/** Stops a build as its compute phase ends, leaving its chunks (and partial summary) committed. */
class ComputeEnd extends Error {}

/** Finalize alone, `runs` times, on copies of one file holding a build's committed chunks (see --finalize). */
async function finalizeRuns(dir: string, bundleDir: string, runs: number): Promise<void> {
  const bundle = await loadBundle(bundleDir)
  const key = cacheKeyOf(bundle)
  const chunks = join(dir, 'chunks.sqlite')
  const engine = await OrtEngine.create(bundle, { eagerSae: true })
  const db = openCacheDb(chunks)
  try {
    await runBuild({
      db,
      engine,
      key,
      corpus: bundle.tokens.data,
      vocabSize: bundle.config.model.d_vocab,
      onProgress: (p) => {
        if (p.phase !== 'compute') throw new ComputeEnd()
      },
    })
  } catch (e) {
    if (!(e instanceof ComputeEnd)) throw e
  } finally {
    db.close()
    await engine.dispose()
  }
  const { chunk_seqs: chunkSeqs } = readMetaOf(chunks)
  const walls: number[] = []
  const cpus: number[] = []
  for (let i = 0; i < runs; i++) {
    const path = join(dir, `finalize-${i}.sqlite`)
    copyFileSync(chunks, path)
    const copy = openCacheDb(path)
    const load = loadavg()[0]
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    finishBuild(copy, { corpus: bundle.tokens.data, seqLen: key.seqLen, chunkSeqs: Number(chunkSeqs), dSae: key.dSae, vocabSize: bundle.config.model.d_vocab, logitStep: true }, engine.provider)
    walls.push(performance.now() - t0)
    const cpu = process.cpuUsage(cpu0)
    cpus.push((cpu.user + cpu.system) / 1000)
    copy.close()
    for (const f of [path, `${path}-wal`, `${path}-shm`]) rmSync(f, { force: true })
    console.log(`    finalize alone: ${walls[i].toFixed(0)} ms wall, ${cpus[i].toFixed(0)} ms CPU (load ${load.toFixed(2)})`)
  }
  console.log(`  finalize alone, median of ${runs}: ${median(walls).toFixed(0)} ms wall, ${median(cpus).toFixed(0)} ms CPU; ${loadText()}`)
}

function readMetaOf(path: string): Record<string, string> {
  const db = openSqlite(path, { readonly: true, fileMustExist: true })
  try {
    return readMeta(db)
  } finally {
    db.close()
  }
}

async function abReal(dir: string, bundleDir: string): Promise<void> {
  const bundle = await loadBundle(bundleDir)
  const engine = await OrtEngine.create(bundle, { eagerSae: true })
  try {
    console.log(`${bundle.config.name}: d_sae ${bundle.config.sae.d_sae}, provider ${engine.provider}`)
    await abCompare(dir, engine, cacheKeyOf(bundle), bundle.tokens.data, bundle.config.model.d_vocab)
  } finally {
    await engine.dispose()
  }
}

const dir = mkdtempSync(join(tmpdir(), 'ft-bench-'))
try {
  if (args.synthetic) await synthetic(dir)
  else {
    const bundleDir = args.bundle ?? 'resources/demo'
    if (!args['ab-only']) await real(dir, bundleDir)
    if (Number(args.finalize) > 0) await finalizeRuns(dir, bundleDir, Number(args.finalize))
    if (Number(args.ab) > 0) await abReal(dir, bundleDir)
  }
} finally {
  if (args.keep) console.log(`  kept ${dir}`)
  else rmSync(dir, { recursive: true, force: true })
}
