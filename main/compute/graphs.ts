// ONNX graphs of a TransformerLens-family model, built from a bundle's weights. The math follows
// tools/ftlib/model.py (and so TransformerLens) op for op: LayerNorm written out so eps sits where
// TransformerLens puts it, scores divided by sqrt(d_head), the causal mask as -inf before Softmax.
// Every hook value carries its TransformerLens name, so a requested hook is simply a graph output.
import type { Bundle } from '../bundle'
import { attnScale, type ModelConfig } from '../bundle/schema'
import type { HookName, Tensor } from './api'
import { DataType, GraphBuilder, int, ints, type BuiltGraph } from './onnx-builder'

export type GraphSource = Pick<Bundle, 'config' | 'model' | 'sae' | 'hookPoint'>

/** Hooks in the order the forward pass produces them within a block. */
const BLOCK_HOOKS = ['hook_resid_pre', 'attn.hook_v', 'attn.hook_pattern', 'attn.hook_z', 'hook_attn_out', 'hook_resid_mid', 'mlp.hook_pre', 'mlp.hook_post', 'hook_mlp_out', 'hook_resid_post'] as const

export interface ParsedHook {
  layer: number // n_layers for logits
  hook: string
}

export function parseHookName(cfg: ModelConfig, name: string): ParsedHook {
  if (name === 'logits') return { layer: cfg.n_layers, hook: 'logits' }
  const m = /^blocks\.(\d+)\.(.+)$/.exec(name)
  if (!m || !(BLOCK_HOOKS as readonly string[]).includes(m[2])) {
    throw new Error(`unknown hook ${name} (known: logits and blocks.L.{${BLOCK_HOOKS.join(',')}})`)
  }
  const layer = Number(m[1])
  if (layer >= cfg.n_layers) throw new Error(`hook ${name} names layer ${layer}, but the model has ${cfg.n_layers} layers`)
  if (m[2] === 'hook_resid_mid' && cfg.parallel_attn_mlp) throw new Error(`hook ${name} does not exist: attention and MLP run in parallel`)
  return { layer, hook: m[2] }
}

/** The dims of a hook value for a request of nSeq × seqLen tokens (TransformerLens's layouts). */
export function hookDims(cfg: ModelConfig, name: string, nSeq: number | string, seqLen: number | string): (number | string)[] {
  const { hook } = parseHookName(cfg, name)
  if (hook === 'logits') return [nSeq, seqLen, cfg.d_vocab]
  if (hook === 'attn.hook_pattern') return [nSeq, cfg.n_heads, seqLen, seqLen]
  if (hook === 'attn.hook_v') return [nSeq, seqLen, cfg.n_heads, cfg.d_head]
  if (hook === 'mlp.hook_pre' || hook === 'mlp.hook_post') return [nSeq, seqLen, cfg.d_mlp]
  // attn.hook_z as an SAE reads it: every head's z concatenated, head-major (TransformerLens's [.., head, d_head] flattened).
  if (hook === 'attn.hook_z') return [nSeq, seqLen, cfg.n_heads * cfg.d_head]
  return [nSeq, seqLen, cfg.d_model]
}

/**
 * Weights the graphs derive from the bundle's (rearranged heads, the causal mask), made once per bundle and
 * then fed to every session like the bundle's own: a process holds one copy of each.
 */
const derivedWeights = new WeakMap<GraphSource['model'], Map<string, Float32Array>>()

function derived(src: GraphSource, name: string, make: () => Float32Array): Float32Array {
  let known = derivedWeights.get(src.model)
  if (!known) derivedWeights.set(src.model, (known = new Map()))
  let data = known.get(name)
  if (!data) known.set(name, (data = make()))
  return data
}

/** [h, d, dh] (per head, as TransformerLens stores W_Q/W_K/W_V) → [d, h·dh], so all heads are one MatMul. */
function headsToColumns(w: Tensor): Float32Array {
  const [h, d, dh] = w.dims
  const out = new Float32Array(h * d * dh)
  for (let hh = 0; hh < h; hh++)
    for (let i = 0; i < d; i++) out.set(w.data.subarray((hh * d + i) * dh, (hh * d + i + 1) * dh), i * h * dh + hh * dh)
  return out
}

class TransformerGraph {
  readonly b = new GraphBuilder()
  private readonly cfg: ModelConfig
  private readonly remaining: Set<string>
  private seqLen!: string // [seqLen] as a 1-D int64, for the position-embedding and mask slices
  private rotaryTables?: { cos: string; sin: string; rot: string }

  constructor(
    private readonly src: GraphSource,
    wanted: Iterable<string>,
  ) {
    this.cfg = src.config.model
    this.remaining = new Set(wanted)
  }

  private w(name: string): string {
    const t = this.src.model.get(name)
    if (!t) throw new Error(`the bundle has no tensor ${name}`)
    return this.b.weight(name, t.dims, t.data)
  }

  /** Computes a value under its hook's name and ticks it off the wanted list. */
  private hook(name: string, op: string, inputs: string[]): string {
    const out = this.b.op(op, inputs, {}, name)
    this.remaining.delete(name)
    return out
  }

  /** Every wanted hook exists: the rest of the model is not built (ORT would run it all otherwise). */
  done(): boolean {
    return this.remaining.size === 0
  }

  private layerNorm(x: string, prefix: string): string {
    const b = this.b
    const mean = b.op('ReduceMean', [x], { axes: ints([-1]), keepdims: int(1) })
    const xc = b.op('Sub', [x, mean])
    const variance = b.op('ReduceMean', [b.op('Mul', [xc, xc])], { axes: ints([-1]), keepdims: int(1) })
    const scale = b.op('Sqrt', [b.op('Add', [variance, b.f32(this.cfg.eps)])])
    const normed = b.op('Div', [xc, scale])
    if (this.cfg.normalization_type === 'LNPre') return normed
    return b.op('Add', [b.op('Mul', [normed, this.w(`${prefix}.w`)]), this.w(`${prefix}.b`)])
  }

  private activation(x: string): string {
    const b = this.b
    switch (this.cfg.act_fn) {
      case 'relu':
        return b.op('Relu', [x])
      case 'gelu': {
        const erf = b.op('Erf', [b.op('Div', [x, b.f32(Math.SQRT2)])])
        return b.op('Mul', [b.op('Mul', [x, b.f32(0.5)]), b.op('Add', [erf, b.f32(1)])])
      }
      case 'gelu_new':
      case 'gelu_fast': {
        const cube = b.op('Mul', [b.op('Mul', [x, x]), x])
        const inner = b.op('Mul', [b.op('Add', [x, b.op('Mul', [cube, b.f32(0.044715)])]), b.f32(Math.sqrt(2 / Math.PI))])
        return b.op('Mul', [b.op('Mul', [x, b.f32(0.5)]), b.op('Add', [b.op('Tanh', [inner]), b.f32(1)])])
      }
    }
  }

  /**
   * GPT-NeoX's rotary embedding of queries or keys y [nSeq, seqLen, h, dh] (TransformerLens's rotary with
   * rotary_adjacent_pairs false): the first R = rotary_dim of each head's dims become y·cos + rotateHalf(y)·sin,
   * rotateHalf(y) = [−y[R/2:R], y[:R/2]], angle(p, i) = p / rotary_base^((i mod R/2)/(R/2)); the rest pass through
   * (cos 1, sin 0 there). Standard models: y unchanged.
   */
  private rotary(y: string): string {
    if (this.cfg.positional_embedding_type !== 'rotary') return y
    const b = this.b
    const { d_head: dh, n_ctx: n, rotary_dim: R = dh, rotary_base: base = 10000 } = this.cfg
    const half = R / 2
    const table = (fn: (a: number) => number, pass: number) => () => {
      const out = new Float32Array(n * dh)
      for (let p = 0; p < n; p++)
        for (let i = 0; i < dh; i++) out[p * dh + i] = i < R ? fn(p / Math.pow(base, (i % half) / half)) : pass
      return out
    }
    const slice = (name: string, data: () => Float32Array): string =>
      b.op('Slice', [b.weight(name, [n, 1, dh], derived(this.src, name, data)), b.i64([0]), this.seqLen, b.i64([0])])
    // One set of tables per graph, shared by every layer's queries and keys.
    this.rotaryTables ??= {
      cos: slice('rotary_cos', table(Math.cos, 1)),
      sin: slice('rotary_sin', table(Math.sin, 0)),
      // rotateHalf as a signed permutation matrix [dh, dh]: y·M puts −y[j + R/2] at j < R/2 and y[j − R/2] at R/2 ≤ j < R.
      rot: b.weight('rotary_rotate_half', [dh, dh], derived(this.src, 'rotary_rotate_half', () => {
        const m = new Float32Array(dh * dh)
        for (let j = 0; j < half; j++) {
          m[(j + half) * dh + j] = -1
          m[j * dh + j + half] = 1
        }
        return m
      })),
    }
    const { cos, sin, rot } = this.rotaryTables
    return b.op('Add', [b.op('Mul', [y, cos]), b.op('Mul', [b.op('MatMul', [y, rot]), sin])])
  }

  /** tokens [nSeq, seqLen] int64 → resid_pre of block 0. */
  private embed(tokens: string): string {
    const b = this.b
    this.seqLen = b.op('Shape', [tokens], { start: int(1), end: int(2) })
    const tok = b.op('Gather', [this.w('embed.W_E'), tokens], { axis: int(0) })
    if (this.cfg.positional_embedding_type === 'rotary') return this.hook('blocks.0.hook_resid_pre', 'Identity', [tok])
    const pos = b.op('Slice', [this.w('pos_embed.W_pos'), b.i64([0]), this.seqLen, b.i64([0])])
    return this.hook('blocks.0.hook_resid_pre', 'Add', [tok, pos])
  }

  private causalMask(): string {
    const n = this.cfg.n_ctx
    const mask = derived(this.src, 'causal_mask', () => {
      const m = new Float32Array(n * n)
      for (let q = 0; q < n; q++) m.fill(-Infinity, q * n + q + 1, (q + 1) * n)
      return m
    })
    const b = this.b
    const full = b.weight('causal_mask', [n, n], mask)
    const bounds = b.op('Concat', [this.seqLen, this.seqLen], { axis: int(0) })
    return b.op('Slice', [full, b.i64([0, 0]), bounds, b.i64([0, 1])])
  }

  /** One block; returns its resid_post, or undefined once every wanted hook exists. */
  private block(l: number, x: string, mask: string): string | undefined {
    const b = this.b
    const { n_heads: h, d_head: dh } = this.cfg
    const pre = `blocks.${l}.`
    const xn = this.layerNorm(x, `${pre}ln1`)
    const project = (m: 'Q' | 'K' | 'V', out?: string): string => {
      const W = this.src.model.get(`${pre}attn.W_${m}`)!
      const bias = this.src.model.get(`${pre}attn.b_${m}`)!
      const cols = b.weight(`${pre}attn.W_${m}.columns`, [W.dims[1], h * dh], derived(this.src, `${pre}attn.W_${m}.columns`, () => headsToColumns(W)))
      const biasFlat = b.weight(`${pre}attn.b_${m}.flat`, [h * dh], bias.data)
      const y = b.op('Add', [b.op('MatMul', [xn, cols]), biasFlat])
      return b.op('Reshape', [y, b.i64([0, 0, h, dh])], {}, out) // [nSeq, seqLen, h, dh]
    }
    const v = project('V', `${pre}attn.hook_v`)
    this.remaining.delete(v)
    if (this.done()) return undefined
    const q = b.op('Transpose', [this.rotary(project('Q'))], { perm: ints([0, 2, 1, 3]) })
    const kT = b.op('Transpose', [this.rotary(project('K'))], { perm: ints([0, 2, 3, 1]) })
    const scores = b.op('Div', [b.op('MatMul', [q, kT]), b.f32(attnScale(this.cfg, l))])
    const pattern = b.op('Softmax', [b.op('Add', [scores, mask])], { axis: int(-1) }, `${pre}attn.hook_pattern`)
    this.remaining.delete(pattern)
    if (this.done()) return undefined
    const z = b.op('MatMul', [pattern, b.op('Transpose', [v], { perm: ints([0, 2, 1, 3]) })]) // [nSeq, h, seqLen, dh]
    const zFlat = this.hook(`${pre}attn.hook_z`, 'Reshape', [b.op('Transpose', [z], { perm: ints([0, 2, 1, 3]) }), b.i64([0, 0, h * dh])])
    if (this.done()) return undefined
    const W_O = this.src.model.get(`${pre}attn.W_O`)!
    const wO = b.weight(`${pre}attn.W_O.rows`, [h * dh, W_O.dims[2]], W_O.data) // [h, dh, d] is already [h·dh, d] row-major
    const attnOut = this.hook(`${pre}hook_attn_out`, 'Add', [b.op('MatMul', [zFlat, wO]), this.w(`${pre}attn.b_O`)])
    // Parallel blocks (GPT-NeoX): the MLP reads resid_pre too, and there is no resid_mid.
    const parallel = this.cfg.parallel_attn_mlp === true
    const mid = parallel ? x : this.hook(`${pre}hook_resid_mid`, 'Add', [x, attnOut])
    if (this.done()) return undefined
    const hPre = this.hook(`${pre}mlp.hook_pre`, 'Add', [b.op('MatMul', [this.layerNorm(mid, `${pre}ln2`), this.w(`${pre}mlp.W_in`)]), this.w(`${pre}mlp.b_in`)])
    if (this.done()) return undefined
    const post = this.hook(`${pre}mlp.hook_post`, 'Identity', [this.activation(hPre)])
    if (this.done()) return undefined
    const mlpOut = this.hook(`${pre}hook_mlp_out`, 'Add', [b.op('MatMul', [post, this.w(`${pre}mlp.W_out`)]), this.w(`${pre}mlp.b_out`)])
    const postResid = this.hook(`${pre}hook_resid_post`, 'Add', [parallel ? b.op('Add', [x, mlpOut]) : mid, parallel ? attnOut : mlpOut])
    return this.done() ? undefined : postResid
  }

  /** Builds the model up to the last wanted hook; returns the tokens input's name. */
  build(): string {
    const tokens = this.b.input('tokens', DataType.INT64, ['n_seq', 'seq_len'])
    let x: string | undefined = this.embed(tokens)
    if (this.done()) return tokens
    const mask = this.causalMask()
    for (let l = 0; l < this.cfg.n_layers && x; l++) {
      if (l > 0) x = this.hook(`blocks.${l}.hook_resid_pre`, 'Identity', [x])
      if (this.done()) return tokens
      x = this.block(l, x, mask)
    }
    if (x) this.hook('logits', 'Add', [this.b.op('MatMul', [this.layerNorm(x, 'ln_final'), this.w('unembed.W_U')]), this.w('unembed.b_U')])
    return tokens
  }
}

/** A graph tokens → the requested hook values, truncated after the last one it needs. */
export function buildForwardGraph(src: GraphSource, outputs: readonly HookName[]): BuiltGraph {
  const cfg = src.config.model
  for (const o of outputs) parseHookName(cfg, o)
  const g = new TransformerGraph(src, outputs)
  g.build()
  for (const o of outputs) g.b.output(o, DataType.FLOAT, hookDims(cfg, o, 'n_seq', 'seq_len'))
  return g.b.build('forward')
}

/**
 * The SAE's pre-activations (x − b_dec)·W_enc + b_enc of hook values x [..., d_in] (without − b_dec where
 * apply_b_dec_to_input is false), as [n_tokens, d_sae].
 */
export function saePreActivations(b: GraphBuilder, src: Pick<GraphSource, 'config' | 'sae'>, x: string): string {
  const { sae } = src
  const { d_sae: dSae, apply_b_dec_to_input: applyBDec } = src.config.sae
  const centred = applyBDec === false ? x : b.op('Sub', [x, b.weight('sae.b_dec', sae.b_dec.dims, sae.b_dec.data)])
  const pre = b.op('Add', [b.op('MatMul', [centred, b.weight('sae.W_enc', sae.W_enc.dims, sae.W_enc.data)]), b.weight('sae.b_enc', sae.b_enc.dims, sae.b_enc.data)])
  return b.op('Reshape', [pre, b.i64([-1, dSae])])
}

/**
 * The SAE's activations [n_tokens, d_sae] from its pre-activations, by kind (docs/BUNDLE.md):
 * relu ReLU(pre); jumprelu ReLU(pre) where pre > threshold, else 0; topk ReLU of each token's k largest
 * pre-activations (ONNX TopK: equal values, lower feature id first), 0 elsewhere.
 */
export function saeActivations(b: GraphBuilder, src: Pick<GraphSource, 'config' | 'sae'>, pre: string): string {
  const c = src.config.sae
  const relu = b.op('Relu', [pre])
  if (c.kind === 'relu') return relu
  if (c.kind === 'jumprelu') {
    const t = src.sae.threshold
    if (!t) throw new Error('the JumpReLU SAE has no threshold tensor')
    return b.op('Where', [b.op('Greater', [pre, b.weight('sae.threshold', t.dims, t.data)]), relu, b.f32(0)])
  }
  const [values, indices] = b.opN('TopK', [pre, b.i64([c.k])], 2, { axis: int(-1), largest: int(1), sorted: int(1) })
  const zeros = b.op('Mul', [pre, b.f32(0)])
  return b.op('ScatterElements', [zeros, indices, b.op('Relu', [values])], { axis: int(-1) })
}

/**
 * tokens → the SAE's activations at its hook point, kept sparse inside the graph: TopK(k) values and
 * feature ids per token, plus how many of each token's k kept values are non-zero. A token whose k values
 * are all non-zero may have more: the caller then reruns with a larger k instead of silently dropping
 * activations (a count of k is the signal). k is an input, so growing it needs no new session.
 * Only TopK and the one matrix product touch all [n_tokens, d_sae] values: a ReLU SAE takes the k largest
 * pre-activations and ReLUs those (ReLU is monotone, so the kept features and their values are the same),
 * and the count is taken over the k kept values, not over every feature (three passes fewer over the
 * largest tensor of the build; ~10 % of a gelu-1l-shaped build's CPU time).
 */
export function buildSaeGraph(src: GraphSource): BuiltGraph {
  const hookName = src.config.sae.hook_point
  const g = new TransformerGraph(src, [hookName])
  g.build()
  const b = g.b
  const k = b.input('k', DataType.INT64, [1])
  const pre = saePreActivations(b, src, hookName) // [nTokens, d_sae]
  const acts = src.config.sae.kind === 'relu' ? pre : saeActivations(b, src, pre)
  const [top, indices64] = b.opN('TopK', [acts, k], 2, { axis: int(-1), largest: int(1), sorted: int(1) })
  b.op('Relu', [top], {}, 'topk_values')
  b.op('Cast', [indices64], { to: int(DataType.INT32) }, 'topk_indices')
  const firing = b.op('Cast', [b.op('Greater', [top, b.f32(0)])], { to: int(DataType.INT32) })
  b.op('ReduceSum', [firing, b.i64([-1])], { keepdims: int(0) }, 'nonzero_counts')
  b.output('topk_values', DataType.FLOAT, ['n_tokens', 'k'])
  b.output('topk_indices', DataType.INT32, ['n_tokens', 'k'])
  b.output('nonzero_counts', DataType.INT32, ['n_tokens'])
  return b.build('sae_acts')
}
