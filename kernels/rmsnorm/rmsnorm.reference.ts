// Plain-TS reference for RMSNorm (HF LlamaRMSNorm on f32 activations), plain and per-segment (Qwen3 q/k norm).

/** Normalises, in a copy of `x`, each segment x[t*rowStride + rowOffset + s*n .. +n) for t < rows, s < segments;
 * elements outside the segments are copied unchanged. Sums in float64. */
export function rmsNormReference(
  x: Float32Array,
  weight: ArrayLike<number>,
  opts: { n: number; rows: number; eps: number; segments?: number; rowStride?: number; rowOffset?: number },
): Float32Array {
  const { n, rows, eps } = opts;
  const segments = opts.segments ?? 1;
  const rowStride = opts.rowStride ?? n * segments;
  const rowOffset = opts.rowOffset ?? 0;
  const y = Float32Array.from(x);
  for (let t = 0; t < rows; t++) {
    for (let s = 0; s < segments; s++) {
      const base = t * rowStride + rowOffset + s * n;
      let sumSquares = 0;
      for (let c = 0; c < n; c++) sumSquares += x[base + c] * x[base + c];
      const scale = 1 / Math.sqrt(sumSquares / n + eps);
      for (let c = 0; c < n; c++) y[base + c] = x[base + c] * scale * weight[c];
    }
  }
  return y;
}
