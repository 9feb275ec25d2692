/** A float32 tensor, row-major: the bundle's weights and every array the compute engine returns. */
export interface Tensor {
  dims: number[]
  data: Float32Array
}
