// Shapes and dtypes shared between kernel hosts. Kernels know these, not models.

/** A weight matrix [rows = out][cols = in] on the GPU, in the dtype it was stored in.
 * - f32 / f16: row-major values.
 * - q4f16 / q4f32: MLC q4*_1 layout: `weight` u32 [rows][cols/8] (8 nibbles, lowest first, value = (q - 7) * scale),
 *   `scales` f16 or f32 [rows][cols/32]. On an adapter without shader-f16, f16 data is widened to f32 at upload and
 *   the dtype says so (f16 -> f32, q4f16 -> q4f32). */
export interface GpuLinear {
  dtype: 'f32' | 'f16' | 'q4f16' | 'q4f32';
  rows: number;
  cols: number;
  weight: GPUBuffer;
  scales?: GPUBuffer;
}

/** One layer's KV cache: K and V buffers laid out [kvHeads][capacity][headDim], contiguous per head. Recycled
 * attention gathers positions by index from these same buffers. dtype f16 when the device has shader-f16. */
export interface LayerKv {
  k: GPUBuffer;
  v: GPUBuffer;
}

export interface KvCacheLayout {
  dtype: 'f16' | 'f32';
  kvHeads: number;
  headDim: number;
  capacity: number;
}

/** Activations are f32 in storage buffers everywhere (norms and residuals keep precision); kernels may compute in
 * f16 internally where the device allows it. */
export type ActivationDtype = 'f32';
