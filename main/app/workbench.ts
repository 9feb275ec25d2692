// The state behind the handler table: the open bundle, its cache reader, the running build job, the
// label store and the event listeners. One Workbench serves every transport (Electron IPC, the HTTP
// bridge, the CLI) through `dispatch`.
import { randomUUID } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { loadBundle, DEFAULT_BUNDLE_DIR, type Bundle } from '../bundle'
import { corpusViewOf, type CorpusView } from '../bundle/corpus'
import { cacheKeyOf, defaultCachePath, logitWeightsOf } from '../cache/bundle-link'
import { userCacheDir } from '../files/dirs'
import { startCacheJob, type CacheJob } from '../cache/job'
import { startCorpusScoresJob, type CorpusScoresJob } from '../trace/corpus-scores-job'
import type { ComputeEngine, TraceCompute } from '../compute/api'
import { ComputeWorkerClient } from '../compute/worker-client'
import { CacheReader } from '../cache/query'
import { inspectCacheFile } from '../cache/schema'
import { moveAside } from '../files/safe-io'
import { pathText } from '../../common/text'
import { autosavePath, migrateLegacyAutosave } from '../session/file'
import { LabelStore } from '../session/labels'
import { isTraceInputError, pointSequence } from '../trace'
import type { CacheState, CorpusScoresJson, EventName, Events, ExecutionProviderName, Invoke, MovedAside, Notice, RequestOf } from '../../common/contract'
import type { FileDialog } from './dialog'
import { createDispatch, type RawDispatch } from './dispatch'
import { FtError, toIpcError } from '../../common/errors'
import { createHandlers } from './handlers'

export interface WorkbenchOptions {
  /** Bundle opened by the first call that needs one (default resources/demo). */
  bundleDir?: string
  /** An explicit cache file (the CLI's --cache); otherwise one per bundle in `cacheDir`. */
  cachePath?: string
  /** Default: $XDG_CACHE_HOME/feature-tracer or ~/.cache/feature-tracer. */
  cacheDir?: string
  /** Labels, notes and the autosave slot (Electron's userData; the CLI uses ~/.config/feature-tracer). */
  userDataDir: string
  /** The app's compute worker's execution provider, once it runs (bundle.info reports it). */
  provider?: () => ExecutionProviderName | null
  /**
   * Starts a compute engine for traces, once per open bundle and role, on first use. Default: a supervised
   * compute worker per role (ONNX Runtime's run() would block main's thread); the CLI, a one-shot process,
   * runs one OrtEngine in its own thread for both.
   */
  engine?: (bundle: Bundle, role: EngineRole) => Promise<WorkbenchEngine>
  /** Build tuning and test hooks, passed to the build worker. */
  build?: { chunkSeqs?: number; pauseMsPerChunk?: number }
  /** Corpus-scores tuning and test hooks, passed to its worker. */
  corpusScores?: { chunkSeqs?: number; pauseMsPerChunk?: number }
  /** Native file dialogs (the Electron shell's); without one, dialog.open/save answer 'unsupported'. */
  dialog?: FileDialog
}

export type WorkbenchEngine = ComputeEngine & TraceCompute

/**
 * What a compute engine is for. 'point': the point part of traces, prompts, compare (short runs). 'scope':
 * the batch forward passes of trace scopes and prefetches (a few hundred ms each), on an engine of their
 * own so a click is never queued behind one. The scope engine keeps the recent batches.
 */
export type EngineRole = 'point' | 'scope'

interface EngineSlot {
  open: OpenBundle
  engine: Promise<WorkbenchEngine>
  ready?: WorkbenchEngine
}

export type EventListener = <E extends EventName>(event: E, payload: Events[E]) => void

/** Everything about the open bundle that handlers need, computed once when it opens. */
export interface OpenBundle {
  bundle: Bundle
  reader: CacheReader
  view: CorpusView
  /** Occurrences of each token id in the corpus. */
  occurrences: Uint32Array
}

export class Workbench {
  readonly labels: LabelStore
  private current: OpenBundle | null = null
  private opening: Promise<OpenBundle> | null = null
  private firstOpening: Promise<OpenBundle> | null = null
  private job: CacheJob | null = null
  private scoresJob: CorpusScoresJob | null = null
  /** The last finished corpus-scores result, for trace.corpusScores.result. */
  private lastScores: CorpusScoresJson | null = null
  private listeners = new Set<EventListener>()
  private closed = false
  /** The execution provider the last build in this process ran on. */
  private lastBuildProvider: ExecutionProviderName | null = null
  /** The open bundle's compute engines (each started on first use), and the bundle they belong to. */
  private readonly engines = new Map<EngineRole, EngineSlot>()
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
    if (this.job) throw new FtError('busy', 'a cache build is running; cancel it or wait before opening another bundle')
    // Corpus scores belong to the bundle that is being replaced.
    await this.cancelCorpusScores()
    const pending = (async () => {
      const bundle = await loadBundle(dir)
      const cachePath = this.options.cachePath ?? defaultCachePath(bundle, this.options.cacheDir ?? userCacheDir())
      const view = corpusViewOf(bundle)
      const occurrences = new Uint32Array(view.display.length)
      for (const t of bundle.tokens.data) occurrences[t]++
      const reader = new CacheReader({ path: cachePath, key: cacheKeyOf(bundle), view, logitWeights: logitWeightsOf(bundle) })
      return { bundle, reader, view, occurrences }
    })()
    this.opening = pending
    try {
      const opened = await pending
      if (this.opening === pending) {
        this.current?.reader.close()
        void this.disposeEngines()
        this.current = opened
      }
      return opened
    } finally {
      if (this.opening === pending) this.opening = null
    }
  }

  async cacheState(): Promise<CacheState> {
    const { reader } = await this.bundle()
    const job = this.job
    if (job) {
      const s = reader.status()
      const progress = job.progress
      return { ...s, state: 'building', doneTokens: progress?.doneTokens ?? s.doneTokens, ...(progress ? { job: progress } : {}) }
    }
    return reader.status()
  }

  /**
   * Starts (or resumes) a build. A file at the cache path that cannot be read is moved aside first (and
   * named in the result); another program's SQLite file is refused, never wiped.
   */
  async startBuild(rebuild: boolean): Promise<{ jobId: string; movedAside?: MovedAside }> {
    if (this.job) throw new FtError('busy', `a cache build is already running (job ${this.job.id})`)
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
    const job = startCacheJob(
      { bundleDir: bundle.dir, cachePath: reader.path, rebuild, ...this.options.build },
      (progress) => this.emit('cache.progress', progress),
    )
    this.job = job
    void job.ended.then(async (end) => {
      if (end.outcome === 'done') this.lastBuildProvider = end.value.provider
      this.job = null
      // A job cancelled by close() reports to no one: the listeners and the reader are gone.
      if (this.closed) return
      let cache: CacheState
      try {
        cache = await this.cacheState()
      } catch (e) {
        cache = { state: 'missing', path: reader.path, doneTokens: 0, totalTokens: 0, sizeBytes: 0, reason: toIpcError(e).message }
      }
      this.emit('cache.done', { jobId: job.id, outcome: end.outcome, ...(end.outcome === 'failed' ? { error: end.error } : {}), cache })
    })
    return { jobId: job.id, ...(movedAside ? { movedAside } : {}) }
  }

  /**
   * Starts the whole-corpus activation scores of a trace point in a worker of its own. The point is checked
   * here, so a bad one is refused at once instead of failing the job.
   */
  async startCorpusScores(req: RequestOf<'trace.corpusScores'>): Promise<string> {
    if (this.scoresJob) throw new FtError('busy', `corpus scores are already being computed (job ${this.scoresJob.id}); cancel them or wait`)
    const { bundle } = await this.bundle()
    try {
      pointSequence(bundle, req.point)
    } catch (e) {
      throw isTraceInputError(e) ? new FtError('invalid_request', e.message) : e
    }
    const job = startCorpusScoresJob({ bundleDir: bundle.dir, ...req, ...this.options.corpusScores }, (p) => this.emit('trace.corpusScores.progress', p))
    this.scoresJob = job
    void job.ended.then((end) => {
      if (this.scoresJob === job) this.scoresJob = null
      if (this.closed) return
      if (end.outcome === 'done') this.lastScores = end.value
      this.emit('trace.corpusScores.done', {
        jobId: job.id,
        outcome: end.outcome,
        ...(end.outcome === 'failed' ? { error: end.error } : {}),
        ...(end.outcome === 'done' ? { result: end.value } : {}),
      })
    })
    return job.id
  }

  /** The running corpus-scores job with this id, if any. */
  runningCorpusScores(jobId: string): CorpusScoresJob | null {
    return this.scoresJob?.id === jobId ? this.scoresJob : null
  }

  private async cancelCorpusScores(): Promise<void> {
    const job = this.scoresJob
    if (!job) return
    await job.cancel() // resolves once the job has ended
  }

  /** The result of the last finished corpus-scores job, if it has this id. */
  corpusScoresResult(jobId: string): CorpusScoresJson | null {
    return this.lastScores?.jobId === jobId ? this.lastScores : null
  }

  /** The provider compute runs on: the app's compute worker's, this process's last build's, or the cache's. */
  async provider(): Promise<ExecutionProviderName | null> {
    const engine = this.engines.get('point')?.ready?.provider ?? null
    return this.options.provider?.() ?? engine ?? this.lastBuildProvider ?? (await this.bundle()).reader.builtWith()
  }


  /** The open bundle with its compute engine for `role`, started on first use (one per open bundle and role). */
  async engine(role: EngineRole = 'point'): Promise<{ open: OpenBundle; engine: WorkbenchEngine }> {
    const open = await this.bundle()
    if (this.closed) throw new FtError('internal', 'the workbench is closed')
    let slot = this.engines.get(role)
    if (slot && slot.open !== open) {
      // Of a bundle that has since been replaced (open() disposes them; this is a request that raced it).
      this.engines.delete(role)
      void Workbench.disposeSlots([slot])
      slot = undefined
    }
    if (!slot) {
      const start = this.options.engine ?? ((bundle: Bundle, r: EngineRole) => ComputeWorkerClient.start({ bundleDir: bundle.dir, engine: r === 'scope' ? { eagerSae: false } : {} }))
      const started: EngineSlot = { open, engine: start(open.bundle, role) }
      this.engines.set(role, started)
      slot = started
      started.engine.then(
        (engine) => (started.ready = engine),
        () => {
          // A failed start is not kept: the next trace tries again.
          if (this.engines.get(role) === started) this.engines.delete(role)
        },
      )
    }
    return { open, engine: await slot.engine }
  }

  private async disposeEngines(): Promise<void> {
    const slots = [...this.engines.values()]
    this.engines.clear()
    await Workbench.disposeSlots(slots)
  }

  /** Disposes each distinct engine of `slots` once (the CLI's roles share one). */
  private static async disposeSlots(slots: EngineSlot[]): Promise<void> {
    const engines = new Set<WorkbenchEngine>()
    for (const slot of slots) {
      try {
        engines.add(await slot.engine)
      } catch {
        // An engine that never started has nothing to dispose.
      }
    }
    for (const engine of engines) await engine.dispose()
  }

  /** The running job with this id, if any. */
  runningJob(jobId: string): CacheJob | null {
    return this.job?.id === jobId ? this.job : null
  }

  /** Resolves when the running build (if any) has ended. */
  async idle(): Promise<void> {
    while (this.job) await this.job.ended.then(() => new Promise((r) => setImmediate(r)))
  }

  async close(): Promise<void> {
    this.closed = true
    await this.job?.cancel()
    await this.cancelCorpusScores()
    await this.idle()
    await this.disposeEngines()
    this.current?.reader.close()
    this.labels.close()
  }
}

export function createWorkbench(options: WorkbenchOptions): Workbench {
  return new Workbench(options)
}
