// The compute engine: ONNX Runtime sessions over graphs built from a bundle. run() holds the calling
// thread, so the app runs this in a process of its own (main/app/compute-host.ts), and each long job
// (the cache build, corpus scores) builds one in its own process. All sessions of an engine share the
// bundle's weights (fed as inputs, see onnx-builder.ts); runs go through one RunGate (lanes, cancel).
import { Tensor as OrtTensor } from 'onnxruntime-node'
import type { BlockProjectionRequest, ComputeEngine, ExecutionProvider, HookName, SaeTop, SaeTopRequest, SparseActs, Tensor, TraceCompute, VocabProducts, VocabProductsRequest } from './api'
import { buildForwardGraph, buildSaeGraph, hookDims, type GraphSource } from './graphs'
import { Lru } from './lru'
import { buildProjectGraph, buildSaeTopGraph, buildVocabGraph } from './products'
import { candidateProviders, createSession, type CreatedSession, type GraphSession, type SessionOptions } from './providers'
import { RunGate, type RunContext } from './run-gate'
import { concatCsr, maxCount, topKToCsr } from './sparse'

export interface OrtEngineOptions extends SessionOptions {
  /** Providers to try, best first; defaults to candidateProviders() for this platform. */
  providers?: ExecutionProvider[]
  /** TopK's starting k. It only affects speed: k grows (and stays grown) whenever a token fires more. */
  initialK?: number
  /**
   * Tokens per ORT run in saeActs. The graph holds the dense pre-activations, nTokens × d_sae floats, so
   * this bounds memory; by default about 128 MiB of them.
   */
  maxBlockTokens?: number
  /**
   * Tokens per ORT run of a forward pass (default 2048): a 128-sequence batch runs as several runs, so a
   * click's run waits for one of them at most (RunGate), and the pass's intermediate values stay small.
   */
  forwardChunkTokens?: number
  /**
   * Build the SAE graph's session at start, so the first saeActs pays no start-up cost (the cache build);
   * by default it is built on first use (traces need it only for typed prompts).
   */
  eagerSae?: boolean
  /** Forward sessions kept per distinct output set (4; they share the weights, so each is small). */
  maxForwardSessions?: number
  /**
   * Bytes of token-block hook values projectBlock keeps, most recently used first (default 256 MiB: three
   * 128-sequence batches of the demo bundle's resid_mid and mlp.hook_post). The newest block is always kept.
   */
  maxBlockBytes?: number
  /** Test hook: wait this long before each ONNX run, inside the gate (a long run that a test can watch). */
  pauseMsPerRun?: number
}

const DENSE_BUDGET_FLOATS = 32 * 1024 * 1024
const BLOCK_BUDGET_BYTES = 256 * 1024 * 1024
const FORWARD_CHUNK_TOKENS = 2048

export class OrtEngine implements ComputeEngine, TraceCompute {
  readonly provider: ExecutionProvider
  /** Providers that were tried before `provider` and why they failed. */
  readonly skippedProviders: CreatedSession['skipped']
  private k: number
  private readonly maxBlockTokens: number
  private readonly gate = new RunGate()
  private readonly forwardSessions: Lru<string, GraphSession>
  private readonly vocabSessions = new Map<number, GraphSession>()
  /**
   * Sessions being built, by key: two requests that need the same new session (a warm-up and the first
   * click) wait for one build (seconds for a 12-layer model) instead of making two.
   */
  private readonly building = new Map<string, Promise<GraphSession>>()
  private saeSession: GraphSession | undefined
  private projectSession: GraphSession | undefined
  private saeTopSession: GraphSession | undefined
  /** Recent token blocks of projectBlock with their hook values. */
  private readonly blocks: Lru<string, Record<string, Tensor>>
  private disposed = false
  /** ONNX runs made so far (diagnostics; tests see a cancelled request stop). */
  runs = 0
  /** Sessions built after the first (diagnostics; tests see concurrent requests share a build). */
  sessionsBuilt = 0

  private constructor(
    private readonly src: GraphSource,
    created: CreatedSession,
    private readonly opts: OrtEngineOptions,
  ) {
    this.provider = created.provider
    this.skippedProviders = created.skipped
    const dSae = src.config.sae.d_sae
    // A TopK SAE fires at most k features a token: k + 1 kept values never all fire, so no block reruns.
    const sae = src.config.sae
    this.k = Math.min(dSae, Math.max(1, opts.initialK ?? (sae.kind === 'topk' ? sae.k + 1 : 64)))
    this.maxBlockTokens = opts.maxBlockTokens ?? Math.max(1, Math.floor(DENSE_BUDGET_FLOATS / dSae))
    this.forwardSessions = new Lru(opts.maxForwardSessions ?? 4, (s) => void s.release())
    this.blocks = new Lru(opts.maxBlockBytes ?? BLOCK_BUDGET_BYTES)
  }

  /**
   * Picks the execution provider with the first session it builds: the SAE graph's (see eagerSae), or
   * else the small projection graph's.
   */
  static async create(src: GraphSource, opts: OrtEngineOptions = {}): Promise<OrtEngine> {
    const providers = opts.providers ?? candidateProviders()
    const created = await createSession(opts.eagerSae ? buildSaeGraph(src) : buildProjectGraph(), providers, opts)
    const engine = new OrtEngine(src, created, opts)
    if (opts.eagerSae) engine.saeSession = created.session
    else engine.projectSession = created.session
    return engine
  }

  /** The current TopK k (grows to the largest number of features seen firing on one token). */
  get topK(): number {
    return this.k
  }

  /**
   * A new session, which `keep` stores where dispose() will find it, in the same step as the check that the
   * engine is not disposed: one disposed while the session was being built releases it here instead.
   */
  private async session(build: () => Parameters<typeof createSession>[0], keep: (s: GraphSession) => void): Promise<GraphSession> {
    this.sessionsBuilt++
    const { session } = await createSession(build(), [this.provider], this.opts)
    if (this.disposed) {
      await session.release()
      throw new Error('the compute engine has been disposed')
    }
    keep(session)
    return session
  }

  /** The session under `key` from `kept`, else the one being built, else a new build that `keep` stores. */
  private shared(key: string, kept: () => GraphSession | undefined, build: () => Parameters<typeof createSession>[0], keep: (s: GraphSession) => void): Promise<GraphSession> {
    const known = kept()
    if (known) return Promise.resolve(known)
    let pending = this.building.get(key)
    if (!pending) {
      pending = this.session(build, keep)
      this.building.set(key, pending)
      void pending.then(
        () => this.building.delete(key),
        () => this.building.delete(key),
      )
    }
    return pending
  }

  /**
   * Runs a whole request (all its engine calls) as one of its lane: a point request keeps the scope lane's
   * runs waiting until it ends (RunGate).
   */
  during<T>(ctx: RunContext, work: () => Promise<T>): Promise<T> {
    return this.gate.request(ctx.lane ?? 'point', work)
  }

  /** One ORT run, through the gate: in lane order, and never for a cancelled request. */
  private run(session: GraphSession, feeds: Record<string, OrtTensor>, ctx: RunContext, fetches?: string[]) {
    return this.gate.through(ctx, async () => {
      if (this.opts.pauseMsPerRun) await new Promise((r) => setTimeout(r, this.opts.pauseMsPerRun))
      if (this.disposed) throw new Error('the compute engine has been disposed')
      this.runs++
      return session.run(feeds, fetches)
    })
  }

  private checkTokens(tokens: Int32Array, nSeq: number, seqLen: number): void {
    if (this.disposed) throw new Error('the compute engine has been disposed')
    const { n_ctx: nCtx, d_vocab: dVocab } = this.src.config.model
    if (!Number.isInteger(nSeq) || !Number.isInteger(seqLen) || nSeq < 1 || seqLen < 1) throw new RangeError(`bad token block shape [${nSeq}, ${seqLen}]`)
    if (tokens.length !== nSeq * seqLen) throw new RangeError(`${tokens.length} tokens given for a [${nSeq}, ${seqLen}] block`)
    if (seqLen > nCtx) throw new RangeError(`sequences of ${seqLen} tokens exceed the model's n_ctx of ${nCtx}`)
    for (let i = 0; i < tokens.length; i++) {
      if (tokens[i] < 0 || tokens[i] >= dVocab) throw new RangeError(`token id ${tokens[i]} at index ${i} lies outside [0, ${dVocab})`)
    }
  }

  private static tokensTensor(tokens: Int32Array, nSeq: number, seqLen: number): OrtTensor {
    const ids = new BigInt64Array(tokens.length)
    for (let i = 0; i < tokens.length; i++) ids[i] = BigInt(tokens[i])
    return new OrtTensor('int64', ids, [nSeq, seqLen])
  }

  async saeActs(tokens: Int32Array, nSeq: number, seqLen: number, ctx: RunContext = {}): Promise<SparseActs> {
    this.checkTokens(tokens, nSeq, seqLen)
    const dSae = this.src.config.sae.d_sae
    const seqPerBlock = Math.max(1, Math.floor(this.maxBlockTokens / seqLen))
    const parts: SparseActs[] = []
    const session = this.saeSession ?? (await this.session(() => buildSaeGraph(this.src), (s) => (this.saeSession = s)))
    for (let s0 = 0; s0 < nSeq; s0 += seqPerBlock) {
      const n = Math.min(seqPerBlock, nSeq - s0)
      const feed = OrtEngine.tokensTensor(tokens.subarray(s0 * seqLen, (s0 + n) * seqLen), n, seqLen)
      for (;;) {
        const out = await this.run(session, { tokens: feed, k: new OrtTensor('int64', BigInt64Array.of(BigInt(this.k)), [1]) }, ctx)
        const counts = out.nonzero_counts.data as Int32Array
        // A token with all k kept values non-zero may have more (buildSaeGraph): unless k is every feature.
        if (maxCount(counts) < this.k || this.k === dSae) {
          parts.push(topKToCsr({ nTokens: n * seqLen, k: this.k, values: out.topk_values.data as Float32Array, indices: out.topk_indices.data as Int32Array, counts }))
          break
        }
        // A token may have fired more features than TopK kept: rerun this block with twice the room.
        this.k = Math.min(dSae, 2 * this.k)
      }
    }
    return concatCsr(parts)
  }

  private forwardSession(outputs: readonly HookName[]): Promise<GraphSession> {
    const key = [...new Set(outputs)].sort().join('|')
    return this.shared(
      `forward:${key}`,
      () => this.forwardSessions.get(key),
      () => buildForwardGraph(this.src, [...new Set(outputs)]),
      (s) => this.forwardSessions.set(key, s),
    )
  }

  /** Hook values of tokens [nSeq, seqLen], in runs of at most forwardChunkTokens tokens (whole sequences). */
  async forward(tokens: Int32Array, nSeq: number, seqLen: number, outputs: HookName[], ctx: RunContext = {}): Promise<Record<string, Tensor>> {
    this.checkTokens(tokens, nSeq, seqLen)
    if (outputs.length === 0) return {}
    // Held for all of its runs: the LRU may evict it meanwhile (another request's output set).
    return (await this.forwardSession(outputs)).use((session) => this.forwardOn(session, tokens, nSeq, seqLen, [...new Set(outputs)], ctx))
  }

  private async forwardOn(session: GraphSession, tokens: Int32Array, nSeq: number, seqLen: number, names: HookName[], ctx: RunContext): Promise<Record<string, Tensor>> {
    const seqPerRun = Math.max(1, Math.floor((this.opts.forwardChunkTokens ?? FORWARD_CHUNK_TOKENS) / seqLen))
    const runOn = async (s0: number, n: number) => this.run(session, { tokens: OrtEngine.tokensTensor(tokens.subarray(s0 * seqLen, (s0 + n) * seqLen), n, seqLen) }, ctx, names)
    if (nSeq <= seqPerRun) {
      const out = await runOn(0, nSeq)
      return Object.fromEntries(names.map((name) => [name, { dims: out[name].dims.map(Number), data: out[name].data as Float32Array }]))
    }
    // Every hook value is [nSeq, ...]: each run's sequences are one contiguous slice of the whole.
    const result: Record<string, Tensor> = {}
    for (const name of names) {
      const dims = hookDims(this.src.config.model, name, nSeq, seqLen) as number[]
      result[name] = { dims, data: new Float32Array(dims.reduce((a, b) => a * b, 1)) }
    }
    for (let s0 = 0; s0 < nSeq; s0 += seqPerRun) {
      const out = await runOn(s0, Math.min(seqPerRun, nSeq - s0))
      for (const name of names) {
        const perSeq = result[name].data.length / nSeq
        result[name].data.set(out[name].data as Float32Array, s0 * perSeq)
      }
    }
    return result
  }

  async vocabProducts(req: VocabProductsRequest, ctx: RunContext = {}): Promise<VocabProducts> {
    if (this.disposed) throw new Error('the compute engine has been disposed')
    const { d_model: d, n_layers: nLayers, n_ctx: nCtx, d_vocab: vocab } = this.src.config.model
    if (!Number.isInteger(req.layer) || req.layer < 0 || req.layer >= nLayers) throw new RangeError(`layer ${req.layer} outside [0, ${nLayers})`)
    if (!Number.isInteger(req.keyPos) || req.keyPos < 0 || req.keyPos >= nCtx) throw new RangeError(`key position ${req.keyPos} outside [0, ${nCtx})`)
    const session = await this.shared(
      `vocab:${req.layer}`,
      () => this.vocabSessions.get(req.layer),
      () => buildVocabGraph(this.src, req.layer),
      (s) => this.vocabSessions.set(req.layer, s),
    )
    // A rotary model has no W_pos: its key rows are LN1(W_E[x]) at every position (zeros added).
    const W_pos = this.src.model.get('pos_embed.W_pos')?.data
    const feed = {
      embed: OrtEngine.rows(req.embed, d, 'embed'),
      keys: OrtEngine.rows(req.keys, d, 'keys'),
      unembed: OrtEngine.rows(req.unembed, d, 'unembed'),
      pos_row: new OrtTensor('float32', W_pos ? W_pos.slice(req.keyPos * d, (req.keyPos + 1) * d) : new Float32Array(d), [d]),
    }
    const out = await this.run(session, feed, ctx)
    // An empty request ran as one zero row (zero-sized dims are not portable across providers): drop it.
    const take = (name: string, rows: Float32Array): Float32Array => (rows.length === 0 ? new Float32Array(0) : (out[name].data as Float32Array).subarray(0, (rows.length / d) * vocab))
    return { embed: take('embed_scores', req.embed), keys: take('key_scores', req.keys), unembed: take('unembed_scores', req.unembed) }
  }

  /** A [k, width] float tensor of row vectors; an empty list becomes one zero row. */
  private static rows(data: Float32Array, width: number, what: string): OrtTensor {
    if (data.length % width !== 0) throw new RangeError(`${what}: ${data.length} values are not rows of ${width}`)
    return data.length === 0 ? new OrtTensor('float32', new Float32Array(width), [1, width]) : new OrtTensor('float32', data, [data.length / width, width])
  }

  async projectBlock(req: BlockProjectionRequest, ctx: RunContext = {}): Promise<Float32Array[]> {
    this.checkTokens(req.tokens, req.nSeq, req.seqLen)
    const cfg = this.src.config.model
    const hooks = [...new Set(req.projections.map((p) => p.hook))]
    const values = await this.blockValues(req, hooks, ctx)
    const project = this.projectSession ?? (await this.session(() => buildProjectGraph(), (s) => (this.projectSession = s)))
    const nTok = req.nSeq * req.seqLen
    const results: Float32Array[] = []
    for (const p of req.projections) {
      const dims = hookDims(cfg, p.hook, req.nSeq, req.seqLen) as number[]
      const width = dims[dims.length - 1]
      if (dims.length !== 3) throw new RangeError(`projectBlock takes per-token hooks of [n_seq, seq_len, width]; ${p.hook} is not one`)
      if (p.vectors.length === 0) {
        results.push(new Float32Array(0)) // a prefetch: the block is kept, nothing to project
        continue
      }
      const out = await this.run(project, { values: new OrtTensor('float32', values[p.hook].data, [nTok, width]), vectors: OrtEngine.rows(p.vectors, width, p.hook) }, ctx)
      results.push(out.projections.data as Float32Array)
    }
    return results
  }

  async saeTopPre(req: SaeTopRequest, ctx: RunContext = {}): Promise<SaeTop> {
    this.checkTokens(req.tokens, req.nSeq, req.seqLen)
    const { d_sae: dSae, d_in: dIn, hook_point: hook } = this.src.config.sae
    if (!Number.isInteger(req.width) || req.width < 1 || req.width > dSae) throw new RangeError(`width ${req.width} outside [1, ${dSae}] (d_sae)`)
    const values = await this.blockValues(req, [hook as HookName], ctx)
    const saeTop = this.saeTopSession ?? (await this.session(() => buildSaeTopGraph(this.src), (s) => (this.saeTopSession = s)))
    const nTok = req.nSeq * req.seqLen
    const out = await this.run(saeTop, { values: new OrtTensor('float32', values[hook].data, [nTok, dIn]), width: new OrtTensor('int64', BigInt64Array.of(BigInt(req.width)), [1]) }, ctx)
    return { width: req.width, values: out.top_values.data as Float32Array, indices: out.top_indices.data as Int32Array }
  }

  /** Keys of the blocks kept now, least recently used first (tests, diagnostics). */
  get keptBlocks(): string[] {
    return this.blocks.keys()
  }

  /**
   * A block's hook values: kept ones are reused (and become the most recent); others run the forward pass,
   * and are kept unless the request says `keep: false`.
   */
  private async blockValues(req: Pick<BlockProjectionRequest, 'key' | 'tokens' | 'nSeq' | 'seqLen' | 'keep'>, hooks: HookName[], ctx: RunContext): Promise<Record<string, Tensor>> {
    const kept = this.blocks.get(req.key)
    if (kept && hooks.every((h) => h in kept)) return kept
    if (req.keep === false) return this.forward(req.tokens, req.nSeq, req.seqLen, hooks, ctx)
    this.blocks.delete(req.key)
    const cfg = this.src.config.model
    const bytes = hooks.reduce((sum, h) => sum + 4 * (hookDims(cfg, h, req.nSeq, req.seqLen) as number[]).reduce((a, b) => a * b, 1), 0)
    // Make room before the forward pass allocates the new block (kept even when it alone exceeds the budget).
    this.blocks.makeRoom(bytes)
    const values = await this.forward(req.tokens, req.nSeq, req.seqLen, hooks, ctx)
    this.blocks.set(req.key, values, bytes)
    return values
  }

  async dispose(): Promise<void> {
    if (this.disposed) return
    this.disposed = true
    this.blocks.clear()
    const sessions = [this.saeSession, this.projectSession, this.saeTopSession, ...this.forwardSessions.clear(), ...this.vocabSessions.values()]
    this.vocabSessions.clear()
    for (const s of sessions) await s?.release()
  }
}
