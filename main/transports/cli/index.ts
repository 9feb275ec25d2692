// `feature-tracer`: the engine from a terminal. Every command goes through the same handler table
// (Workbench.dispatch) as the app, so what the CLI prints is exactly what the UI receives.
import { randomUUID } from 'node:crypto'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import type { AtlasJson, Channel, JobProgress, RequestIn, ResponseOf } from '../../../common/contract'
import { cutTree } from '../../../common/atlas'
import { FtError } from '../../../common/errors'
import { createWorkbench, type Workbench } from '../../app/workbench'
import { loadBundle } from '../../bundle'
import { parseShard, shardText, type Shard } from '../../cache/build'
import { cacheKeyOf, SHIPPED_CACHE } from '../../cache/bundle-link'
import { mergeShardsOf } from '../../cache/merge'
import { shipSummary } from '../../cache/ship'
import { ablationFields, bosText, formatAblations, formatFeature, formatFeatures, formatProgress, formatTrace } from './format'

const USAGE = `usage: feature-tracer <command> [options]

commands:
  cache build   [--bundle DIR] [--cache FILE] [--rebuild] [--full] [--shard k/N]
                                                            build (or resume) the activation cache: the
                                                            summary the feature views read, and with
                                                            --full every activation too (5x the size);
                                                            --shard k/N computes only the k-th of N
                                                            slices of the corpus (k = 0…N-1), into a
                                                            file of its own, for cache merge
  cache merge OUT SHARD… [--bundle DIR] [--full]            join the shard files of one bundle into the
                                                            cache OUT, the same as a single build
                                                            (docs/SCALE.md)
  cache status  [--bundle DIR] [--cache FILE] [--json]      the cache's state
  cache ship    [--bundle DIR] [--cache FILE]               copy the built cache's summary into the bundle
                                                            folder (summary.sqlite.br): whoever opens the
                                                            bundle sees its features with no build
  features      [--bundle DIR] [--cache FILE] [--include-bos] [--json]
                                                            stats of every feature
  feature --id F [--bundle DIR] [--cache FILE] [--top K] [--include-bos] [--json]
                                                            one feature: stats, histogram, intervals,
                                                            logit effects, top activations; without
                                                            --include-bos the firings on BOS (position
                                                            0 of a sequence starting with it) are left
                                                            out, as sae_vis
  by-token (--token-id T | --text S) [--limit N] [--json]   which features fire on a token
  trace --feature F (--sample S --pos P | --prompt TEXT --token I) [--bundle DIR]
        [--source-pos P] [--head H] [--top K] [--json]      trace a feature at a corpus token or a
        [--ablate [--terms N]]                              prompt token: v and u, decompositions,
                                                            circuit tables (of --head H, default the
                                                            strongest head), activation scores;
                                                            --ablate adds the causal checks (the N
                                                            largest head × source terms, default 20,
                                                            and every head removed and run again)
  atlas --feature F [--top N] [--quantile-samples M] [--threshold T] [--bundle DIR] [--json]
                                                            the feature's mechanism atlas: linearized at
                                                            its top N firings (64) and M of its quantile
                                                            groups' examples (32, at most 30 exist),
                                                            cosines, average-linkage clusters cut at
                                                            1 − cos ≤ T (0.5), cross-fidelity
  serve         [--bundle DIR] [--port N] …                 the workbench in a browser (127.0.0.1);
                                                            see feature-tracer serve --help

--bundle defaults to resources/demo; without --cache the cache lives in
$XDG_CACHE_HOME/feature-tracer (or ~/.cache/feature-tracer) under the bundle's hash.
Environment: FEATURE_TRACER_CHUNK_SEQS (sequences per chunk; every shard of one build needs the same),
FEATURE_TRACER_FINALIZE_ENTRIES (firings finalize holds at once, 8 bytes each; default 16000000).
See docs/CLI.md for the JSON shapes and docs/SCALE.md for sharded builds.`

/** Exit codes: 0 done, 1 the request failed (error printed), 2 bad usage, 130 interrupted. */
class UsageError extends Error {}

function userDataDir(env: NodeJS.ProcessEnv): string {
  if (env.FEATURE_TRACER_USER_DATA) return env.FEATURE_TRACER_USER_DATA
  const base = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME.length > 0 ? env.XDG_CONFIG_HOME : join(homedir(), '.config')
  // Electron's app.getPath('userData') for an app named feature-tracer: labels typed in the app show here.
  return join(base, 'feature-tracer')
}

async function call<C extends Channel>(wb: Workbench, channel: C, payload: RequestIn<C>): Promise<ResponseOf<C>> {
  const result = await wb.invoke(channel, payload)
  if (!result.ok) throw new FtError(result.error.code, result.error.message)
  return result.value
}

function int(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!Number.isInteger(n)) throw new UsageError(`--${name} must be an integer, got ${JSON.stringify(value)}`)
  return n
}

/** trace.run's payload from the command line; --json asks for every vocabulary row of every table. */
function tracePayload(values: Record<string, string | boolean | undefined>, allRows: boolean): RequestIn<'trace.run'> {
  const opt = (name: string): string | undefined => values[name] as string | undefined
  const feature = int(opt('feature'), 'feature')
  if (feature === undefined) throw new UsageError('trace needs --feature F')
  const corpus = opt('sample') !== undefined || opt('pos') !== undefined
  const prompt = opt('prompt')
  if (corpus === (prompt !== undefined || opt('token') !== undefined)) {
    throw new UsageError('trace needs either --sample S --pos P (a corpus token) or --prompt TEXT --token I (a prompt token)')
  }
  const need = (name: string): number => {
    const n = int(opt(name), name)
    if (n === undefined) throw new UsageError(`trace needs --${name} with ${corpus ? '--sample/--pos' : '--prompt/--token'}`)
    return n
  }
  let point: RequestIn<'trace.run'>['point']
  if (corpus) point = { feature, sample: need('sample'), pos: need('pos') }
  else if (prompt === undefined) throw new UsageError('trace needs --prompt TEXT with --token')
  else point = { feature, prompt, token: need('token') }
  return {
    point,
    options: { sourcePos: int(opt('source-pos'), 'source-pos'), head: int(opt('head'), 'head'), topK: int(opt('top'), 'top'), vocabRows: allRows ? 'all' : 'top' },
  }
}

/** --shard k/N: integers with 0 ≤ k < N. */
function shardOption(value: string | undefined): Shard | undefined {
  if (value === undefined) return undefined
  const shard = parseShard(value)
  if (!shard) throw new UsageError(`--shard must be k/N with whole numbers 0 ≤ k < N (shard k of N, counted from 0), got ${JSON.stringify(value.slice(0, 40))}`)
  return shard
}

async function buildCache(wb: Workbench, rebuild: boolean, full: boolean, shard: Shard | undefined, out: NodeJS.WriteStream): Promise<number> {
  const tty = out.isTTY === true
  let lastLine = 0
  let lastPhase = ''
  const print = (p: JobProgress): void => {
    const now = Date.now()
    // A log file gets a line a second, plus the first and last of each phase.
    const edge = p.phase !== lastPhase || p.doneTokens === p.totalTokens
    if (!tty && !edge && now - lastLine < 1000) return
    lastLine = now
    lastPhase = p.phase
    // A shard's counts are its own slice's tokens.
    const line = shard ? formatProgress(p).replace(/^cache build:/, `cache build (shard ${shardText(shard)}):`) : formatProgress(p)
    out.write(tty ? `\r${line}\x1b[K` : `${line}\n`)
  }
  const jobId = randomUUID()
  const ended = new Promise<{ outcome: string; message?: string }>((resolve) => {
    wb.subscribe((event, payload) => {
      if (event === 'job.progress' && (payload as JobProgress).jobId === jobId) print(payload as JobProgress)
      if (event === 'job.done') {
        const done = payload as { jobId: string; outcome: string; error?: { message: string } }
        if (done.jobId === jobId) resolve({ outcome: done.outcome, message: done.error?.message })
      }
    })
  })
  await call(wb, 'cache.build', { jobId, rebuild, full })
  const interrupt = (): void => {
    void wb.invoke('job.cancel', { jobId })
  }
  process.once('SIGINT', interrupt)
  const end = await ended
  process.off('SIGINT', interrupt)
  if (tty) out.write('\n')
  if (end.outcome === 'failed') throw new FtError('internal', end.message ?? 'the cache build failed')
  if (end.outcome === 'cancelled') {
    out.write('cancelled; run the same command again to resume\n')
    return 130
  }
  const state = await call(wb, 'cache.status', {})
  if (shard) {
    out.write(
      `shard ${shardText(shard)} built: ${state.path} (${state.doneTokens} of the corpus's ${state.totalTokens} tokens, ${(state.sizeBytes / 2 ** 20).toFixed(1)} MiB); ` +
        `when all ${shard.n} shards are built, join them: feature-tracer cache merge OUT SHARD…\n`,
    )
    return 0
  }
  out.write(`cache ready: ${state.path} (${(state.sizeBytes / 2 ** 20).toFixed(1)} MiB, ${state.fullTable ? 'summary and full table' : 'summary'})\n`)
  return 0
}

/** Runs job `start` starts and waits for its job.done; Ctrl-C cancels it. */
async function runJob<T>(wb: Workbench, start: (jobId: string) => Promise<unknown>, onProgress?: (p: JobProgress) => void): Promise<{ outcome: string; message?: string; result?: T }> {
  const jobId = randomUUID()
  const ended = new Promise<{ outcome: string; message?: string; result?: T }>((resolve) => {
    wb.subscribe((event, payload) => {
      if (event === 'job.progress' && (payload as JobProgress).jobId === jobId) onProgress?.(payload as JobProgress)
      if (event === 'job.done') {
        const done = payload as { jobId: string; outcome: string; error?: { message: string }; result?: T }
        if (done.jobId === jobId) resolve({ outcome: done.outcome, message: done.error?.message, result: done.result })
      }
    })
  })
  await start(jobId)
  const interrupt = (): void => void wb.invoke('job.cancel', { jobId })
  process.once('SIGINT', interrupt)
  try {
    return await ended
  } finally {
    process.off('SIGINT', interrupt)
  }
}

/** `atlas`: the trace.atlas job, then its result; --json in the issue's names (docs/CLI.md). */
async function atlasCommand(wb: Workbench, values: Record<string, string | boolean | undefined>, stdout: (text: string) => void): Promise<number> {
  const feature = int(values.feature as string | undefined, 'feature')
  if (feature === undefined) throw new UsageError('atlas needs --feature F')
  const threshold = values.threshold === undefined ? 0.5 : Number(values.threshold)
  if (!Number.isFinite(threshold) || threshold < 0 || threshold > 2) throw new UsageError('--threshold is a distance 1 − cos in [0, 2]')
  const payload = { feature, top: int(values.top as string | undefined, 'top'), quantileSamples: int(values['quantile-samples'] as string | undefined, 'quantile-samples') }
  const end = await runJob<AtlasJson>(wb, (jobId) => call(wb, 'trace.atlas', { jobId, ...payload }), (p) => {
    if (process.stderr.isTTY) process.stderr.write(`\ratlas: ${p.doneTokens}/${p.totalTokens} tokens run\x1b[K`)
  })
  if (process.stderr.isTTY) process.stderr.write('\n')
  if (end.outcome === 'cancelled') return 130
  if (end.outcome !== 'done' || !end.result) throw new FtError('internal', end.message ?? 'the atlas failed')
  const a = end.result
  const clusters = cutTree(a.points.length, a.linkage, threshold)
  if (values.json) {
    const { feature: _f, points, cosineU, cosineV, crossFidelity, crossPredicted, explainedShare, bestPoint, bestShare, jobId: _, ...rest } = a
    stdout(
      JSON.stringify({
        feature: a.feature,
        threshold,
        points: points.map((p) => ({ sample: p.batch, pos: p.pos, activation: p.activation, pre_activation: p.preActivation, source: p.source, str_tokens: p.str_tokens, context: p.context })),
        cosine_u: cosineU,
        cosine_v: cosineV,
        clusters: clusters.map((c) => c.members),
        cluster_nodes: clusters.map((c) => c.node),
        cross_fidelity: crossFidelity,
        cross_predicted: crossPredicted,
        explained_share: explainedShare,
        best_point: bestPoint,
        best_share: bestShare,
        ...rest,
      }),
    )
    return 0
  }
  const sizes = clusters.map((c) => c.members.length)
  stdout(`feature ${a.feature}: ${a.points.length} points at ${a.resid} (${a.elapsedSec.toFixed(1)} s)`)
  stdout(`clusters at 1 − cos ≤ ${threshold}: ${clusters.length} (sizes ${sizes.join(', ')})`)
  for (const c of clusters.filter((x) => x.members.length > 1)) {
    const node = a.nodes[c.node]
    stdout(`  ${c.members.length} points, mean activation ${node.meanActivation.toFixed(3)}; W_E·u top: ${node.tokens.top.slice(0, 6).map((t) => JSON.stringify(t.str_tokens)).join(' ')}`)
  }
  stdout(`one direction explains ${(a.bestShare * 100).toFixed(0)} % of the points to within ${a.tolerance * 100} % (point ${a.bestPoint}: ${a.points[a.bestPoint].label})`)
  return 0
}

/** `cache merge OUT SHARD…`: in this process (SQLite and one ORT product for the logit table), no Workbench. */
async function mergeCommand(operands: string[], bundleDir: string | undefined, full: boolean, maxEntriesPerPass: number | undefined, out: NodeJS.WriteStream): Promise<number> {
  if (operands.length < 2) throw new UsageError('cache merge needs OUT and at least one SHARD file')
  const [to, ...shards] = operands
  const started = performance.now()
  const bundle = await loadBundle(bundleDir)
  const result = await mergeShardsOf(bundle, to, shards, { full, maxEntriesPerPass, onStep: (text) => void out.write(`${text}\n`) })
  const secs = (performance.now() - started) / 1000
  out.write(
    `cache ready: ${resolve(to)} (${(result.sizeBytes / 2 ** 20).toFixed(1)} MiB, ${full ? 'summary and full table' : 'summary'}; ` +
      `${shards.length} shard(s), ${result.nChunks} chunks, computed on ${result.provider ?? 'more than one execution provider, or unknown'}; merged in ${secs.toFixed(1)} s)\n`,
  )
  return 0
}

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      bundle: { type: 'string' },
      cache: { type: 'string' },
      id: { type: 'string' },
      top: { type: 'string' },
      'token-id': { type: 'string' },
      text: { type: 'string' },
      limit: { type: 'string' },
      feature: { type: 'string' },
      sample: { type: 'string' },
      pos: { type: 'string' },
      prompt: { type: 'string' },
      token: { type: 'string' },
      'source-pos': { type: 'string' },
      head: { type: 'string' },
      ablate: { type: 'boolean', default: false },
      terms: { type: 'string' },
      json: { type: 'boolean', default: false },
      rebuild: { type: 'boolean', default: false },
      full: { type: 'boolean', default: false },
      'include-bos': { type: 'boolean', default: false },
      shard: { type: 'string' },
      'quantile-samples': { type: 'string' },
      threshold: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  // `cache merge` is the one command with operands (OUT SHARD…).
  const merge = positionals[0] === 'cache' && positionals[1] === 'merge'
  const command = merge ? 'cache merge' : positionals.join(' ')
  if (values.help || command === '' || command === 'help') {
    process.stdout.write(`${USAGE}\n`)
    return values.help || command === 'help' ? 0 : 2
  }
  const known = ['cache build', 'cache status', 'cache ship', 'features', 'feature', 'by-token', 'trace', 'atlas']
  // Finalize's memory: firings transposed per pass, 8 bytes each (FinalizeInput.maxEntriesPerPass).
  const maxEntriesPerPass = int(env.FEATURE_TRACER_FINALIZE_ENTRIES, 'FEATURE_TRACER_FINALIZE_ENTRIES')
  if (maxEntriesPerPass !== undefined && maxEntriesPerPass < 1) throw new UsageError('FEATURE_TRACER_FINALIZE_ENTRIES must be at least 1')
  if (merge) return mergeCommand(positionals.slice(2), values.bundle, values.full, maxEntriesPerPass, process.stderr)
  if (!known.includes(command)) throw new UsageError(`unknown command "${command}"`)
  const shard = shardOption(values.shard)
  if (shard && command !== 'cache build') throw new UsageError('--shard belongs to cache build')
  if (shard && values.full) throw new UsageError('a shard keeps every activation until the merge: pass --full to cache merge, not to the shards')

  const wb = createWorkbench({
    bundleDir: values.bundle,
    cachePath: values.cache,
    userDataDir: userDataDir(env),
    build: { chunkSeqs: int(env.FEATURE_TRACER_CHUNK_SEQS, 'FEATURE_TRACER_CHUNK_SEQS'), pauseMsPerChunk: int(env.FEATURE_TRACER_TEST_PAUSE_MS, 'FEATURE_TRACER_TEST_PAUSE_MS'), shard, maxEntriesPerPass },
  })
  const stdout = (text: string): void => void process.stdout.write(text.endsWith('\n') ? text : `${text}\n`)
  const json = (value: unknown): void => stdout(JSON.stringify(value, null, 2))
  try {
    switch (command) {
      case 'cache build':
        return await buildCache(wb, values.rebuild, values.full, shard, process.stderr)
      case 'cache status': {
        const state = await call(wb, 'cache.status', {})
        if (values.json) json(state)
        else {
          const kind = state.state === 'ready' ? (state.fullTable ? ', summary and full table' : ', summary') : ''
          stdout(`${state.state}: ${state.path} (${state.doneTokens}/${state.totalTokens} tokens${kind})${state.reason ? ` — ${state.reason}` : ''}`)
          if (state.shipped) stdout(`until it is built, the features come from the summary shipped with the bundle: ${state.shipped.path}`)
        }
        return 0
      }
      case 'cache ship': {
        const open = await wb.bundle()
        const to = join(open.bundle.dir, SHIPPED_CACHE)
        const size = shipSummary(open.reader.path, to, cacheKeyOf(open.bundle))
        const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`
        stdout(`shipped the summary: ${to} (${mib(size.compressedBytes)}; ${mib(size.bytes)} unpacked)`)
        return 0
      }
      case 'features': {
        const list = await call(wb, 'features.list', { includeBos: values['include-bos'] })
        if (values.json) json(list)
        else {
          // The table stays on stdout alone; which firings it counts goes beside it.
          process.stderr.write(`statistics: ${bosText(list.bos)}\n`)
          stdout(formatFeatures(list.features))
        }
        return 0
      }
      case 'feature': {
        const id = int(values.id, 'id')
        if (id === undefined) throw new UsageError('feature needs --id F')
        const detail = await call(wb, 'feature.get', { id, topK: int(values.top, 'top'), includeBos: values['include-bos'] })
        if (values.json) json(detail)
        else stdout(formatFeature(detail))
        return 0
      }
      case 'by-token': {
        const limit = int(values.limit, 'limit')
        const tokenId = int(values['token-id'], 'token-id')
        if (tokenId === undefined && values.text === undefined) throw new UsageError('by-token needs --token-id T or --text S')
        const res = await call(wb, 'features.byToken', tokenId !== undefined ? { tokenId, limit } : { text: values.text as string, limit })
        if (values.json) json(res)
        else stdout(res.features.map((f) => `${f.id}\t${f.count}\t${f.fraction.toFixed(3)}\t${f.max.toFixed(3)}\t${f.label}`).join('\n'))
        return 0
      }
      case 'trace': {
        const payload = tracePayload(values, values.json)
        if (values.terms !== undefined && !values.ablate) throw new UsageError('--terms belongs to --ablate')
        const trace = await call(wb, 'trace.run', payload)
        const checks = values.ablate ? await call(wb, 'trace.ablate', { point: payload.point, terms: int(values.terms, 'terms') }) : null
        // Compact: with every vocabulary row of every table, indentation would multiply the size.
        if (values.json) stdout(JSON.stringify(checks ? { ...trace, ...ablationFields(checks) } : trace))
        else stdout(checks ? `${formatTrace(trace)}\n${formatAblations(checks)}` : formatTrace(trace))
        return 0
      }
      case 'atlas':
        return await atlasCommand(wb, values, stdout)
    }
    return 2
  } finally {
    await wb.close()
  }
}

/** Runs the CLI and exits with its code; errors become one line on stderr, never a stack trace. */
export function run(argv: string[] = process.argv.slice(2)): void {
  if (argv[0] === 'serve') {
    // The loopback server (main/transports/serve/cli.ts) owns its options and runs until Ctrl-C.
    void import('../serve/cli').then((serve) =>
      serve.main(argv.slice(1)).catch((error: unknown) => {
        process.stderr.write(`feature-tracer serve: ${(error as Error).message ?? error}\n`)
        process.exit(1)
      }),
    )
    return
  }
  main(argv).then(
    // Output to a pipe is written asynchronously: exit once it has all gone (a trace's JSON is megabytes).
    (code) => void process.stdout.write('', () => process.exit(code)),
    (error: unknown) => {
      const code = (error as { code?: string }).code ?? ''
      if (error instanceof UsageError || code.startsWith('ERR_PARSE_ARGS')) {
        process.stderr.write(`feature-tracer: ${(error as Error).message}\n\n${USAGE}\n`)
        process.exit(2)
      }
      const message = error instanceof FtError ? `${error.message} [${error.code}]` : String((error as Error)?.stack ?? error)
      process.stderr.write(`feature-tracer: ${message}\n`)
      process.exit(1)
    },
  )
}

// `tsx main/transports/cli/index.ts …` (npm run cli) runs it directly; bin/feature-tracer.mjs imports and calls run().
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) run()
