// A small helper for writing ONNX graphs by hand: unique value names, weights, typed attributes, and
// encoding to the bytes InferenceSession.create takes. We build graphs in memory from the bundle's weights
// instead of shipping .onnx files, so any TransformerLens-family bundle runs.
//
// Weights never go into the protobuf itself (it cannot exceed 2 GiB), and on the CPU they are graph
// inputs, fed at every run from the process's one copy (the bundle's Float32Arrays): onnxruntime-node
// wraps a fed typed array without copying it, whereas an initializer is copied into every session
// (measured: +1× the tensor per session, in-memory external data included). So all sessions of a process
// share the weights. A GPU provider gets them as initializers in external data instead, uploaded once per
// session (feeding them would copy every weight to the device on every run), except a tensor of 2 GiB or
// more, which ORT refuses as in-memory data: that one is still fed. Small constants (shapes, axes,
// scalars) are ordinary initializers.
import onnxProto from 'onnx-proto'
import type { Tensor } from '../bundle/tensor'

const { onnx } = onnxProto

/** ONNX element types we use (onnx.TensorProto.DataType). */
export const DataType = { FLOAT: 1, INT32: 6, INT64: 7, BOOL: 9 } as const
type DataTypeCode = (typeof DataType)[keyof typeof DataType]

export type Attr = { i: number } | { f: number } | { ints: number[] } | { s: string }
export const int = (i: number): Attr => ({ i })
export const float = (f: number): Attr => ({ f })
export const ints = (v: number[]): Attr => ({ ints: v })

/** Opset 17: ReduceMean still takes its axes as an attribute, TopK and ReduceSum take theirs as inputs. */
export const OPSET = 17

function attribute(name: string, a: Attr): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType
  if ('i' in a) return { name, type: T.INT, i: a.i }
  if ('f' in a) return { name, type: T.FLOAT, f: a.f }
  if ('ints' in a) return { name, type: T.INTS, ints: a.ints }
  return { name, type: T.STRING, s: new TextEncoder().encode(a.s) }
}

function valueInfo(name: string, elemType: DataTypeCode, dims: (number | string)[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  }
}

/** How a model carries its weights: as inputs fed at each run (CPU) or as initializers (GPU); see the top. */
export type WeightsAs = 'inputs' | 'initializers'

/** A graph, encodable either way, and its weights by name. */
export interface BuiltGraph {
  readonly name: string
  readonly weights: ReadonlyMap<string, Tensor>
  /** The model, the external data it names, and the weights each run must feed (by input name). */
  encode(weightsAs: WeightsAs): { model: Uint8Array; externalData: { path: string; data: Uint8Array }[]; fed: string[] }
}

/** ORT's limit for an initializer held in memory (its external data included). */
const MAX_INITIALIZER_BYTES = 2 ** 31

export class GraphBuilder {
  private readonly weights = new Map<string, Tensor>()
  private readonly weightInputs: onnxProto.onnx.IValueInfoProto[] = []
  private readonly nodes: onnxProto.onnx.INodeProto[] = []
  private readonly initializers: onnxProto.onnx.ITensorProto[] = []
  private readonly inputs: onnxProto.onnx.IValueInfoProto[] = []
  private readonly outputs: onnxProto.onnx.IValueInfoProto[] = []
  private readonly constants = new Map<string, string>()
  private readonly used = new Set<string>()
  private counter = 0

  /** A fresh value name; readable prefixes make ORT's error messages point at the right part of the model. */
  fresh(prefix: string): string {
    let name: string
    do name = `${prefix}_${this.counter++}`
    while (this.used.has(name))
    this.used.add(name)
    return name
  }

  /** Claims an exact name (hook values are named as TransformerLens names them). */
  claim(name: string): string {
    if (this.used.has(name)) throw new Error(`ONNX value name ${name} used twice`)
    this.used.add(name)
    return name
  }

  input(name: string, elemType: DataTypeCode, dims: (number | string)[]): string {
    this.inputs.push(valueInfo(this.claim(name), elemType, dims))
    return name
  }

  output(name: string, elemType: DataTypeCode, dims: (number | string)[]): void {
    this.outputs.push(valueInfo(name, elemType, dims))
  }

  /** A float32 weight (an input or an initializer, see the top); `data` is never copied. */
  weight(name: string, dims: number[], data: Float32Array): string {
    if (data.length !== dims.reduce((a, b) => a * b, 1)) throw new Error(`weight ${name}: ${data.length} values for dims [${dims}]`)
    this.weightInputs.push(valueInfo(this.claim(name), DataType.FLOAT, dims))
    this.weights.set(name, { dims, data })
    return name
  }

  /** A shared int64 constant (shapes, axes, slice bounds). */
  i64(values: number[]): string {
    const key = `i64:${values.join(',')}`
    const known = this.constants.get(key)
    if (known) return known
    const name = this.fresh('const_i64')
    const data = BigInt64Array.from(values.map(BigInt))
    this.initializers.push({ name, dataType: DataType.INT64, dims: [values.length], rawData: new Uint8Array(data.buffer) })
    this.constants.set(key, name)
    return name
  }

  /** A shared float32 scalar constant. */
  f32(value: number): string {
    const key = `f32:${Object.is(value, -0) ? '-0' : value}`
    const known = this.constants.get(key)
    if (known) return known
    const name = this.fresh('const_f32')
    this.initializers.push({ name, dataType: DataType.FLOAT, dims: [], rawData: new Uint8Array(new Float32Array([value]).buffer) })
    this.constants.set(key, name)
    return name
  }

  /** Adds a node with one output (named `out` if given) and returns the output's name. */
  op(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, out?: string): string {
    return this.opN(opType, inputs, 1, attrs, out ? [out] : undefined)[0]
  }

  opN(opType: string, inputs: string[], nOut: number, attrs: Record<string, Attr> = {}, outs?: string[]): string[] {
    const outputs = outs ? outs.map((o) => this.claim(o)) : Array.from({ length: nOut }, () => this.fresh(opType.toLowerCase()))
    this.nodes.push({
      opType,
      input: inputs,
      output: outputs,
      name: this.fresh(`node_${opType}`),
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    })
    return outputs
  }

  /** The graph so far, to encode for a session. */
  build(graphName: string): BuiltGraph {
    const weights = new Map(this.weights)
    const weightInputs = [...this.weightInputs]
    const base = { nodes: [...this.nodes], initializers: [...this.initializers], inputs: [...this.inputs], outputs: [...this.outputs] }
    return {
      name: graphName,
      weights,
      encode(weightsAs) {
        const asInput = (t: Tensor): boolean => weightsAs === 'inputs' || t.data.byteLength >= MAX_INITIALIZER_BYTES
        const externalData: { path: string; data: Uint8Array }[] = []
        const external: onnxProto.onnx.ITensorProto[] = []
        ;[...weights].forEach(([name, t], i) => {
          if (asInput(t)) return
          const data = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)
          const path = `w${i}.bin`
          externalData.push({ path, data })
          external.push({
            name,
            dataType: DataType.FLOAT,
            dims: t.dims,
            dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
            externalData: [
              { key: 'location', value: path },
              { key: 'offset', value: '0' },
              { key: 'length', value: String(data.byteLength) },
            ],
          })
        })
        const fed = [...weights].filter(([, t]) => asInput(t)).map(([name]) => name)
        const inputs = [...base.inputs, ...weightInputs.filter((v) => fed.includes(v.name!))]
        const model = onnx.ModelProto.create({
          irVersion: 8,
          producerName: 'feature-tracer',
          opsetImport: [{ domain: '', version: OPSET }],
          graph: { name: graphName, node: base.nodes, initializer: [...base.initializers, ...external], input: inputs, output: base.outputs },
        })
        return { model: onnx.ModelProto.encode(model).finish(), externalData, fed }
      },
    }
  }
}
