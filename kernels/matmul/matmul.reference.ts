// Plain-TS reference for Y[tokens][rows] = X[tokens][cols] · W^T (weights through kernels/dequantize.ts).
import { dequantizeLinear } from '../dequantize';
import type { HostLinear } from '../linearUpload';

/** Host weights [rows][cols] as the loader produces them (q4: MLC q4*_1 layout). */
export type ReferenceLinear = HostLinear;

/** Y = X · W^T in float64, plus the magnitude sum_k |x_k w_k| of each output (the scale of its rounding error). */
export function matmulReference(
  x: Float32Array,
  tokens: number,
  w: ReferenceLinear,
): { y: Float64Array; magnitude: Float64Array } {
  const { rows, cols } = w;
  const dense = dequantizeLinear(w);
  const y = new Float64Array(tokens * rows);
  const magnitude = new Float64Array(tokens * rows);
  for (let t = 0; t < tokens; t++) {
    for (let r = 0; r < rows; r++) {
      let sum = 0;
      let mag = 0;
      for (let c = 0; c < cols; c++) {
        const p = x[t * cols + c] * dense[r * cols + c];
        sum += p;
        mag += Math.abs(p);
      }
      y[t * rows + r] = sum;
      magnitude[t * rows + r] = mag;
    }
  }
  return { y, magnitude };
}
