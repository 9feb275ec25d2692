// The state behind the handler table: the open bundle, its cache reader, the compute process, the job
// slots, the label store and the event listeners. One Workbench serves every transport (Electron IPC, the
// HTTP bridge, the CLI) through `dispatch`. ONNX Runtime never runs here: traces go to the compute process
// (compute.ts) and long jobs to processes of their own (jobs.ts), which may crash without taking this one.
import { randomUUID } from 'node:crypto'
import { existsSync, mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { loadBundle, DEFAULT_BUNDLE_DIR, type BundleMeta } from '../bundle'
import { corpusViewOf, type CorpusView } from '../bundle/corpus'
import { cacheKeyOf, defaultCachePath, SHIPPED_CACHE, unpackedShippedPath } from '../cache/bundle-link'
import { unpackShipped } from '../cache/ship'
import { userCacheDir } from '../files/dirs'
import { CacheReader } from '../cache/query'
import { inspectCacheFile } from '../cache/schema'
import type { BuildJobData } from '../cache/job'
import { moveAside } from '../files/safe-io'
import { pathText } from '../../common/text'
import { autosavePath, migrateLegacyAutosave } from '../session/file'
import { LabelStore } from '../session/labels'
import { isTraceInputError, pointSequence } from '../trace'
import type { CacheState, CorpusScoresJson, EventName, Events, ExecutionProviderName, FeatureDetail, Invoke, MovedAside, Notice, RequestOf } from '../../common/contract'
import type { FileDialog } from './dialog'
import { createDispatch, type RawDispatch } from './dispatch'
import { FtError, toIpcError } from '../../common/errors'
import { createHandlers } from './handlers'
import { shippedState } from './serving'
import { Compute, type ComputeOptions } from './compute'
import { JobSlots, type Job } from './jobs'

export interface WorkbenchOptions {
  /** Bundle opened by the first call that needs one (default resources/demo). */
  bundleDir?: string
  /** An explicit cache file (the CLI's --cache); otherwise one per bundle in `cacheDir`. */
  cachePath?: string
  /** Default: $XDG_CACHE_HOME/feature-tracer or ~/.cache/feature-tracer. */
  cacheDir?: string
  /** Labels, notes and the autosave slot (Electron's userData; the CLI uses ~/.config/feature-tracer). */
  userDataDir: string
  /**
   * How the compute process and the jobs' processes start: Electron's utilityProcess in the app (main/index.ts
   * injects it), child_process.fork by default (serve, the CLI, tests); and the compute process's engine options.
   */
  compute?: ComputeOptions
  /**
   * Start the compute process as soon as a bundle opens (the app and serve), so that its provider is known
   * (pushed as 'bundle.provider') and the first trace finds the weights loaded and the engine made. Off by
   * default: the CLI and tests start one only for a trace, as a cache build needs none.
   */
  startComputeOnOpen?: boolean
  /** Build tuning and test hooks, passed to the build job. */
  build?: Pick<BuildJobData, 'chunkSeqs' | 'pauseMsPerChunk' | 'shard' | 'maxEntriesPerPass' | 'partialEveryMs'>
  /** Corpus-scores tuning and test hooks, passed to its job. */
  corpusScores?: { chunkSeqs?: number; pauseMsPerChunk?: number }
  /** Native file dialogs (the Electron shell's); without one, dialog.open/save answer 'unsupported'. */
  dialog?: FileDialog
}

export type EventListener = <E extends EventName>(event: E, payload: Events[E]) => void

/**
 * Everything about the open bundle that handlers need, computed once when it opens. Main checks the
 * weights (shapes, values, hashes) but does not keep them: only the processes that compute hold them.
 */
export interface OpenBundle {
  bundle: BundleMeta
  /** The cache this app builds (in the user's cache folder, or --cache). */
  reader: CacheReader
  /** The summary cache shipped in the bundle folder (SHIPPED_CACHE), read-only; null when there is none. */
  shipped: CacheReader | null
  view: CorpusView
  /** Occurrences of each token id in the corpus. */
  occurrences: Uint32Array
}

export class Workbench {
  readonly labels: LabelStore
  private current: OpenBundle | null = null
  private opening: Promise<OpenBundle> | null = null
  private firstOpening: Promise<OpenBundle> | null = null
  readonly jobs: JobSlots
  /** The last finished corpus-scores result, for trace.corpusScores.result. */
  private lastScores: CorpusScoresJson | null = null
  private listeners = new Set<EventListener>()
  private closed = false
  /** The execution provider the last build in this process ran on. */
  private lastBuildProvider: ExecutionProviderName | null = null
  /** The compute process of the open bundle (started on the first trace), and the bundle it serves. */
  private computeOf: { open: OpenBundle; compute: Compute } | null = null
  /** What the researcher must be told (files moved aside); kept for pages that connect later. */
  private readonly noticeList: Notice[] = []
  readonly dispatch: RawDispatch
  readonly invoke: Invoke

  constructor(readonly options: WorkbenchOptions) {
    mkdirSync(options.userDataDir, { recursive: true })
    this.labels = new LabelStore(join(options.userDataDir, 'labels.sqlite'))
    if (this.labels.movedAside) this.notice('Your labels file could not be opened; it was moved aside and a new one started.', this.labels.movedAside)
    const legacy = migrateLegacyAutosave(options.userDataDir)
    if (legacy) this.notice('An old autosaved session could not be kept in its place; it was moved aside.', legacy)
    this.jobs = new JobSlots((p) => this.emit('job.progress', p), options.compute?.launcher)
    const { dispatch, invoke } = createDispatch(createHandlers(this))
    this.dispatch = dispatch
    this.invoke = invoke
  }

  /** Records and pushes a notice; `movedAside` names the file and where it went. */
  notice(message: string, movedAside?: MovedAside): Notice {
    const text = movedAside ? `${message} It is now ${pathText(movedAside.to)} (${movedAside.reason.slice(0, 300)}).` : message
    const n: Notice = { id: randomUUID(), at: new Date().toISOString(), message: text, ...(movedAside ? { movedAside } : {}) }
    this.noticeList.push(n)
    if (this.noticeList.length > 100) this.noticeList.shift()
    this.emit('workbench.notice', n)
    return n
  }

  get notices(): Notice[] {
    return [...this.noticeList]
  }

  /** The open bundle's autosave slot: one per bundle, so one bundle's autosave never replaces another's. */
  async autosavePath(): Promise<string> {
    const { bundle } = await this.bundle()
    return autosavePath(this.options.userDataDir, bundle.hashes.bundle)
  }

  subscribe(listener: EventListener): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  emit<E extends EventName>(event: E, payload: Events[E]): void {
    for (const l of this.listeners) {
      try {
        l(event, payload)
      } catch (e) {
        console.error(`listener for ${event} failed:`, e)
      }
    }
  }

  /** The open bundle, opening the default one on first use. */
  async bundle(): Promise<OpenBundle> {
    if (this.current) return this.current
    // Concurrent first requests share one opening (two would each load the bundle, and the loser's
    // OpenBundle would not be the current one).
    this.firstOpening ??= this.open(this.options.bundleDir ?? DEFAULT_BUNDLE_DIR).finally(() => (this.firstOpening = null))
    return this.firstOpening
  }

  async open(dir: string): Promise<OpenBundle> {
    const build = this.jobs.running('cache.build')
    if (build) throw new FtError('busy', `a cache build is running (job ${build.id}); cancel it or wait before opening another bundle`)
    // Corpus scores belong to the bundle that is being replaced.
    const scores = this.jobs.running('trace.corpusScores')
    if (scores) await this.jobs.cancel(scores.id)
    const atlas = this.jobs.running('trace.atlas')
    if (atlas) await this.jobs.cancel(atlas.id)
    // The compute process starts with main's check, not after it: both read the weights (main to check and
    // hash them, the compute process to keep them), on cores of their own, so the first trace no longer waits
    // for the two one after the other. It is adopted if the bundle opens, and ended if it does not.
    const early = this.options.startComputeOnOpen ? this.newCompute(dir, true) : null
    const pending = (async () => {
      const bundle = await loadBundle(dir, { weights: 'check' })
      const cachePath = this.options.cachePath ?? defaultCachePath(bundle, this.options.cacheDir ?? userCacheDir())
      const view = corpusViewOf(bundle)
      const occurrences = new Uint32Array(view.display.length)
      for (const t of bundle.tokens.data) occurrences[t]++
      // No logit effects from the weights here: main holds no weights. Every build stores them (its logit
      // step); until then feature.get has the compute process compute them (featureLogits).
      // BOS for the degenerate flags: the bundle's when it prepends one, else whatever every sequence starts with.
      const { prepend_bos, bos_token_id } = bundle.config.dataset
      const bosTokenId = prepend_bos ? (bos_token_id ?? 0) : undefined
      const reader = new CacheReader({ path: cachePath, key: cacheKeyOf(bundle), view, logitWeights: null, bosTokenId })
      const shippedGz = join(bundle.dir, SHIPPED_CACHE)
      const unpacked = existsSync(shippedGz) ? this.unpackShipped(shippedGz, unpackedShippedPath(bundle, cachePath)) : null
      const shipped = unpacked ? new CacheReader({ path: unpacked, key: cacheKeyOf(bundle), view, logitWeights: null, bosTokenId }) : null
      return { bundle, reader, shipped, view, occurrences }
    })()
    this.opening = pending
    let adopted = false
    try {
      const opened = await pending
      if (this.opening === pending) {
        this.current?.reader.close()
        this.current?.shipped?.close()
        this.stopCompute()
        this.current = opened
        if (early && !this.closed) {
          this.adoptCompute(opened, early)
          adopted = true
        }
      }
      return opened
    } finally {
      if (this.opening === pending) this.opening = null
      // A bundle that did not open (or was superseded by another open meanwhile) needs no compute process.
      if (early && !adopted) early.dispose('the bundle did not open')
    }
  }

  /** The shipped summary unpacked beside the cache (once), or null with a notice when it cannot be. */
  private unpackShipped(gz: string, to: string): string | null {
    mkdirSync(dirname(to), { recursive: true })
    return unpackShipped(gz, to, (message, movedAside) => this.notice(message, movedAside))
  }

  async cacheState(): Promise<CacheState> {
    const open = await this.bundle()
    const s = open.reader.status()
    const shipped = s.state === 'ready' ? null : shippedState(open)
    const withShipped = shipped ? { ...s, shipped } : s
    const job = this.jobs.running('cache.build')
    if (job) {
      const progress = job.progress
      return { ...withShipped, state: 'building', doneTokens: progress?.doneTokens ?? s.doneTokens, ...(progress ? { job: progress } : {}) }
    }
    return withShipped
  }

  /**
   * Starts (or resumes) a build as job `jobId`. A file at the cache path that cannot be read is moved aside
   * first (and named in the result); another program's SQLite file is refused, never wiped.
   */
  async startBuild(jobId: string, rebuild: boolean, full: boolean): Promise<{ jobId: string; movedAside?: MovedAside }> {
    const running = this.jobs.running('cache.build')
    if (running) throw new FtError('busy', `a cache build is already running (job ${running.id})`)
    const { bundle, reader } = await this.bundle()
    mkdirSync(join(reader.path, '..'), { recursive: true })
    const file = inspectCacheFile(reader.path)
    if (file.kind === 'foreign') {
      throw new FtError(
        'cache_foreign',
        `${pathText(reader.path)} is not a Feature Tracer cache: ${file.reason}. It was left as it is; choose another cache file (--cache) or move that one away`,
      )
    }
    let movedAside: MovedAside | undefined
    if (file.kind === 'corrupt') {
      reader.close()
      movedAside = { from: reader.path, to: moveAside(reader.path, 'unreadable', ['-wal', '-shm']), reason: file.reason }
      this.notice('The activation cache could not be read; it was moved aside and a new one is being built.', movedAside)
    } else if (reader.status().state === 'corrupt') {
      // Ours and readable, but claims a completeness it lacks: start over in place.
      rebuild = true
    }
    const job = this.jobs.start('cache.build', jobId, { jobId, bundleDir: bundle.dir, cachePath: reader.path, rebuild, full, ...this.options.build })
    void job.ended.then(async (end) => {
      if (end.outcome === 'done') this.lastBuildProvider = end.value.provider
      // A job cancelled by close() reports to no one: the listeners and the reader are gone.
      if (this.closed) return
      let cache: CacheState
      try {
        cache = await this.cacheState()
      } catch (e) {
        cache = { state: 'missing', path: reader.path, doneTokens: 0, totalTokens: 0, sizeBytes: 0, reason: toIpcError(e).message }
      }
      this.emit('job.done', { kind: 'cache.build', jobId, outcome: end.outcome, ...(end.outcome === 'failed' ? { error: end.error } : {}), cache })
    })
    return { jobId, ...(movedAside ? { movedAside } : {}) }
  }

  /**
   * Starts the whole-corpus activation scores of a trace point as a job of its own. The point is checked
   * here, so a bad one is refused at once instead of failing the job.
   */
  async startCorpusScores(req: RequestOf<'trace.corpusScores'>): Promise<string> {
    const running = this.jobs.running('trace.corpusScores')
    if (running) throw new FtError('busy', `corpus scores are already being computed (job ${running.id}); cancel them or wait`)
    const { bundle } = await this.bundle()
    try {
      pointSequence(bundle, req.point)
    } catch (e) {
      throw isTraceInputError(e) ? new FtError('invalid_request', e.message) : e
    }
    const { jobId, ...rest } = req
    const job = this.jobs.start('trace.corpusScores', jobId, { jobId, bundleDir: bundle.dir, ...rest, ...this.options.corpusScores })
    void job.ended.then((end) => {
      if (this.closed) return
      if (end.outcome === 'done') this.lastScores = end.value
      this.emit('job.done', {
        kind: 'trace.corpusScores',
        jobId,
        outcome: end.outcome,
        ...(end.outcome === 'failed' ? { error: end.error } : {}),
        ...(end.outcome === 'done' ? { result: end.value } : {}),
      })
    })
    return jobId
  }

  /** The result of the last finished corpus-scores job, if it has this id. */
  corpusScoresResult(jobId: string): CorpusScoresJson | null {
    return this.lastScores?.jobId === jobId ? this.lastScores : null
  }

  /** The provider compute runs on: the compute process's, this process's last build's, or the cache's. */
  async provider(): Promise<ExecutionProviderName | null> {
    return this.computeOf?.compute.provider ?? this.lastBuildProvider ?? (await this.bundle()).reader.builtWith()
  }

  /**
   * A feature's logit effects from the weights, computed in the compute process (main holds no weights):
   * for a cache that has none stored yet. None when that process cannot answer: the rest of the feature
   * view is worth showing all the same.
   */
  async featureLogits(id: number): Promise<FeatureDetail['logits']> {
    try {
      return await (await this.compute()).compute.logits(id)
    } catch {
      return { top: [], bottom: [] }
    }
  }

  /** The open bundle with its compute process (one per open bundle, started on first use). */
  async compute(): Promise<{ open: OpenBundle; compute: Compute }> {
    const open = await this.bundle()
    if (this.closed) throw new FtError('busy', 'the workbench is closing')
    if (this.computeOf?.open !== open) {
      // None yet, or one of a bundle that has since been replaced (a request that raced open()).
      this.stopCompute()
      return this.startComputeFor(open)
    }
    return this.computeOf
  }

  /** Starts `open`'s compute process at once (it is about to be used) and adopts it. */
  private startComputeFor(open: OpenBundle): { open: OpenBundle; compute: Compute } {
    return this.adoptCompute(open, this.newCompute(open.bundle.dir, false))
  }

  /**
   * A compute process for the bundle in `dir`, starting now (its start failing is reported when it is adopted).
   * One that starts with the bundle warms up before the first click; one started for a request need not.
   */
  private newCompute(dir: string, withBundle: boolean): Compute {
    const compute = new Compute(dir, { ...this.options.compute, warmUp: withBundle })
    compute.ready().catch(() => undefined)
    return compute
  }

  /**
   * Makes `compute` (started for a request, or with the bundle's opening under startComputeOnOpen) the open
   * bundle's compute process, and pushes its provider when it is ready, or why it could not start (its traces
   * then fail with the same message). Nothing is pushed for a process that a newer bundle or close() has
   * stopped meanwhile.
   */
  private adoptCompute(open: OpenBundle, compute: Compute): { open: OpenBundle; compute: Compute } {
    this.computeOf = { open, compute }
    const push = (provider: ExecutionProviderName | null, error?: string): void => {
      if (this.closed || this.computeOf?.compute !== compute) return
      this.emit('bundle.provider', { hash: open.bundle.hashes.bundle, provider, ...(error === undefined ? {} : { error }) })
    }
    compute.ready().then(
      () => push(compute.provider),
      (e: unknown) => push(null, toIpcError(e).message),
    )
    return this.computeOf
  }

  /** Stops `caller`'s running trace requests (without starting a compute process); how many there were. */
  cancelTraces(caller: string): number {
    return this.computeOf?.compute.cancel(caller) ?? 0
  }

  private stopCompute(reason?: string): void {
    this.computeOf?.compute.dispose(reason)
    this.computeOf = null
  }

  /** The running job with this id, if any. */
  runningJob(jobId: string): Job | null {
    return this.jobs.byId(jobId)
  }

  /** Resolves when the running build (if any) has ended. */
  async idle(): Promise<void> {
    for (let job = this.jobs.running('cache.build'); job; job = this.jobs.running('cache.build')) await job.ended.then(() => new Promise((r) => setImmediate(r)))
  }

  async close(): Promise<void> {
    this.closed = true
    await this.jobs.cancelAll()
    this.stopCompute('the workbench is closing')
    this.current?.reader.close()
    this.current?.shipped?.close()
    this.labels.close()
  }
}

export function createWorkbench(options: WorkbenchOptions): Workbench {
  return new Workbench(options)
}
