// Plain-TS reference for Y[tokens][rows] = X[tokens][cols] · W^T, and the dequantisation of every stored dtype.
import { f16BitsToF32 } from '../../core/util/half';
import type { HostLinear } from '../linearUpload';

/** Host weights [rows][cols] as the loader produces them (q4: MLC q4*_1 layout). */
export type ReferenceLinear = HostLinear;

/** One weight value as the file defines it: q4 value = (nibble - 7) * scale of its group of 32 along cols. */
export function referenceWeight(w: ReferenceLinear, row: number, col: number): number {
  if (w.dtype === 'f32') return w.data[row * w.cols + col];
  if (w.dtype === 'f16') return f16BitsToF32(w.data[row * w.cols + col]);
  const word = w.qweight[row * (w.cols / 8) + Math.floor(col / 8)];
  const nibble = (word >>> ((col % 8) * 4)) & 0xf;
  const s = w.scales[row * (w.cols / 32) + Math.floor(col / 32)];
  const scale = w.dtype === 'q4f16' ? f16BitsToF32(s) : s;
  return (nibble - 7) * scale;
}

/** The whole weight as f32 [rows][cols]. */
export function dequantizeReference(w: ReferenceLinear): Float32Array {
  const out = new Float32Array(w.rows * w.cols);
  for (let r = 0; r < w.rows; r++) for (let c = 0; c < w.cols; c++) out[r * w.cols + c] = referenceWeight(w, r, c);
  return out;
}

/** Y = X · W^T in float64, plus the magnitude sum_k |x_k w_k| of each output (the scale of its rounding error). */
export function matmulReference(
  x: Float32Array,
  tokens: number,
  w: ReferenceLinear,
): { y: Float64Array; magnitude: Float64Array } {
  const { rows, cols } = w;
  const dense = dequantizeReference(w);
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
