// The in-thread compute engine: ONNX Runtime sessions over graphs built from a bundle. run() blocks the
// calling thread, so the app hosts this in a worker (worker.ts, supervised by worker-client.ts) and the
// cache build job constructs one inside its own worker; nothing here assumes which thread it is on.
import { Tensor as OrtTensor, type InferenceSession } from 'onnxruntime-node'
import type { BlockProjectionRequest, ComputeEngine, ExecutionProvider, HookName, SparseActs, Tensor, TraceCompute, VocabProducts, VocabProductsRequest } from './api'
import { buildForwardGraph, buildSaeGraph, hookDims, type GraphSource } from './graphs'
import { buildProjectGraph, buildVocabGraph } from './products'
import { candidateProviders, createSession, type CreatedSession, type SessionOptions } from './providers'
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
   * Build the SAE graph's session at start (default), so the first saeActs pays no start-up cost; false
   * defers it to the first saeActs (an engine for trace scopes never runs the SAE graph: less memory).
   */
  eagerSae?: boolean
  /** Forward sessions kept per distinct output set (each holds a copy of the weights). */
  maxForwardSessions?: number
  /**
   * Bytes of token-block hook values projectBlock keeps, most recently used first (default 256 MiB: three
   * 128-sequence batches of the demo bundle's resid_mid and mlp.hook_post). The newest block is always kept.
   */
  maxBlockBytes?: number
}

const DENSE_BUDGET_FLOATS = 32 * 1024 * 1024
const BLOCK_BUDGET_BYTES = 256 * 1024 * 1024

export class OrtEngine implements ComputeEngine, TraceCompute {
  readonly provider: ExecutionProvider
  /** Providers that were tried before `provider` and why they failed. */
  readonly skippedProviders: CreatedSession['skipped']
  private k: number
  private readonly maxBlockTokens: number
  private readonly forwardSessions = new Map<string, InferenceSession>()
  private readonly vocabSessions = new Map<number, InferenceSession>()
  private projectSession: InferenceSession | undefined
  /** Recent token blocks of projectBlock with their hook values, least recently used first (Map order). */
  private readonly blocks = new Map<string, { values: Record<string, Tensor>; bytes: number }>()
  private disposed = false

  private constructor(
    private readonly src: GraphSource,
    private saeSession: InferenceSession | undefined,
    created: CreatedSession,
    private readonly opts: OrtEngineOptions,
  ) {
    this.provider = created.provider
    this.skippedProviders = created.skipped
    const dSae = src.config.sae.d_sae
    this.k = Math.min(dSae, Math.max(1, opts.initialK ?? 64))
    this.maxBlockTokens = opts.maxBlockTokens ?? Math.max(1, Math.floor(DENSE_BUDGET_FLOATS / dSae))
  }

  /**
   * Picks the execution provider with the first session it builds: the SAE graph's (see eagerSae), or
   * else the small projection graph's.
   */
  static async create(src: GraphSource, opts: OrtEngineOptions = {}): Promise<OrtEngine> {
    const providers = opts.providers ?? candidateProviders()
    if (opts.eagerSae ?? true) {
      const created = await createSession(buildSaeGraph(src), providers, opts)
      return new OrtEngine(src, created.session, created, opts)
    }
    const created = await createSession(buildProjectGraph(), providers, opts)
    const engine = new OrtEngine(src, undefined, created, opts)
    engine.projectSession = created.session
    return engine
  }

  /** The current TopK k (grows to the largest number of features seen firing on one token). */
  get topK(): number {
    return this.k
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

  async saeActs(tokens: Int32Array, nSeq: number, seqLen: number): Promise<SparseActs> {
    this.checkTokens(tokens, nSeq, seqLen)
    const dSae = this.src.config.sae.d_sae
    const seqPerBlock = Math.max(1, Math.floor(this.maxBlockTokens / seqLen))
    const parts: SparseActs[] = []
    const session = (this.saeSession ??= (await createSession(buildSaeGraph(this.src), [this.provider], this.opts)).session)
    for (let s0 = 0; s0 < nSeq; s0 += seqPerBlock) {
      const n = Math.min(seqPerBlock, nSeq - s0)
      const feed = OrtEngine.tokensTensor(tokens.subarray(s0 * seqLen, (s0 + n) * seqLen), n, seqLen)
      for (;;) {
        const out = await session.run({ tokens: feed, k: new OrtTensor('int64', BigInt64Array.of(BigInt(this.k)), [1]) })
        const counts = out.nonzero_counts.data as Int32Array
        const needed = maxCount(counts)
        if (needed <= this.k) {
          parts.push(topKToCsr({ nTokens: n * seqLen, k: this.k, values: out.topk_values.data as Float32Array, indices: out.topk_indices.data as Int32Array, counts }))
          break
        }
        // A token fired more features than TopK kept: rerun this block with room for all of them.
        this.k = Math.min(dSae, 2 ** Math.ceil(Math.log2(needed)))
      }
    }
    return concatCsr(parts)
  }

  private async forwardSession(outputs: readonly HookName[]): Promise<InferenceSession> {
    const key = [...new Set(outputs)].sort().join('|')
    const known = this.forwardSessions.get(key)
    if (known) {
      this.forwardSessions.delete(key) // re-insert: Map order is our LRU order
      this.forwardSessions.set(key, known)
      return known
    }
    const { session } = await createSession(buildForwardGraph(this.src, [...new Set(outputs)]), [this.provider], this.opts)
    this.forwardSessions.set(key, session)
    const max = this.opts.maxForwardSessions ?? 4
    for (const [oldKey, old] of this.forwardSessions) {
      if (this.forwardSessions.size <= max) break
      this.forwardSessions.delete(oldKey)
      await old.release()
    }
    return session
  }

  async forward(tokens: Int32Array, nSeq: number, seqLen: number, outputs: HookName[]): Promise<Record<string, Tensor>> {
    this.checkTokens(tokens, nSeq, seqLen)
    if (outputs.length === 0) return {}
    const session = await this.forwardSession(outputs)
    const names = [...new Set(outputs)]
    const out = await session.run({ tokens: OrtEngine.tokensTensor(tokens, nSeq, seqLen) }, names)
    const result: Record<string, Tensor> = {}
    for (const name of names) result[name] = { dims: out[name].dims.map(Number), data: out[name].data as Float32Array }
    return result
  }

  async vocabProducts(req: VocabProductsRequest): Promise<VocabProducts> {
    if (this.disposed) throw new Error('the compute engine has been disposed')
    const { d_model: d, n_layers: nLayers, n_ctx: nCtx, d_vocab: vocab } = this.src.config.model
    if (!Number.isInteger(req.layer) || req.layer < 0 || req.layer >= nLayers) throw new RangeError(`layer ${req.layer} outside [0, ${nLayers})`)
    if (!Number.isInteger(req.keyPos) || req.keyPos < 0 || req.keyPos >= nCtx) throw new RangeError(`key position ${req.keyPos} outside [0, ${nCtx})`)
    let session = this.vocabSessions.get(req.layer)
    if (!session) {
      session = (await createSession(buildVocabGraph(this.src, req.layer), [this.provider], this.opts)).session
      this.vocabSessions.set(req.layer, session)
    }
    const W_pos = this.src.model.get('pos_embed.W_pos')!.data
    const feed = {
      embed: OrtEngine.rows(req.embed, d, 'embed'),
      keys: OrtEngine.rows(req.keys, d, 'keys'),
      unembed: OrtEngine.rows(req.unembed, d, 'unembed'),
      pos_row: new OrtTensor('float32', W_pos.slice(req.keyPos * d, (req.keyPos + 1) * d), [d]),
    }
    const out = await session.run(feed)
    // An empty request ran as one zero row (zero-sized dims are not portable across providers): drop it.
    const take = (name: string, rows: Float32Array): Float32Array => (rows.length === 0 ? new Float32Array(0) : (out[name].data as Float32Array).subarray(0, (rows.length / d) * vocab))
    return { embed: take('embed_scores', req.embed), keys: take('key_scores', req.keys), unembed: take('unembed_scores', req.unembed) }
  }

  /** A [k, width] float tensor of row vectors; an empty list becomes one zero row. */
  private static rows(data: Float32Array, width: number, what: string): OrtTensor {
    if (data.length % width !== 0) throw new RangeError(`${what}: ${data.length} values are not rows of ${width}`)
    return data.length === 0 ? new OrtTensor('float32', new Float32Array(width), [1, width]) : new OrtTensor('float32', data, [data.length / width, width])
  }

  async projectBlock(req: BlockProjectionRequest): Promise<Float32Array[]> {
    this.checkTokens(req.tokens, req.nSeq, req.seqLen)
    const cfg = this.src.config.model
    const hooks = [...new Set(req.projections.map((p) => p.hook))]
    const values = await this.blockValues(req, hooks)
    if (!this.projectSession) this.projectSession = (await createSession(buildProjectGraph(), [this.provider], this.opts)).session
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
      const out = await this.projectSession.run({ values: new OrtTensor('float32', values[p.hook].data, [nTok, width]), vectors: OrtEngine.rows(p.vectors, width, p.hook) })
      results.push(out.projections.data as Float32Array)
    }
    return results
  }

  /** Keys of the blocks kept now, least recently used first (tests, diagnostics). */
  get keptBlocks(): string[] {
    return [...this.blocks.keys()]
  }

  /** A block's hook values: kept ones are reused (and become the most recent); others run the forward pass. */
  private async blockValues(req: BlockProjectionRequest, hooks: HookName[]): Promise<Record<string, Tensor>> {
    const kept = this.blocks.get(req.key)
    if (kept && hooks.every((h) => h in kept.values)) {
      this.blocks.delete(req.key)
      this.blocks.set(req.key, kept)
      return kept.values
    }
    this.blocks.delete(req.key)
    const cfg = this.src.config.model
    const bytes = hooks.reduce((sum, h) => sum + 4 * (hookDims(cfg, h, req.nSeq, req.seqLen) as number[]).reduce((a, b) => a * b, 1), 0)
    // Make room before the forward pass allocates the new block (kept even when it alone exceeds the budget).
    const budget = this.opts.maxBlockBytes ?? BLOCK_BUDGET_BYTES
    let used = [...this.blocks.values()].reduce((sum, b) => sum + b.bytes, 0)
    for (const [key, b] of this.blocks) {
      if (used + bytes <= budget) break
      this.blocks.delete(key)
      used -= b.bytes
    }
    const values = await this.forward(req.tokens, req.nSeq, req.seqLen, hooks)
    this.blocks.set(req.key, { values, bytes })
    return values
  }

  async dispose(): Promise<void> {
    if (this.disposed) return
    this.disposed = true
    this.blocks.clear()
    await this.saeSession?.release()
    for (const s of this.forwardSessions.values()) await s.release()
    this.forwardSessions.clear()
    for (const s of this.vocabSessions.values()) await s.release()
    this.vocabSessions.clear()
    await this.projectSession?.release()
  }
}
