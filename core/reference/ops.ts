// Plain-TS building blocks of the reference forward pass: matvec, RMSNorm, RoPE, SiLU. Independent of the WGSL
// kernels (weights are dequantised by kernels/dequantize.ts, the one CPU dequantiser); written for clarity first, then
// for plain-loop speed over Float32Array.

import { f16ArrayToF32 } from '../../kernels/half';
import type { HostVector } from '../model/weights';

export function vectorToF32(v: HostVector): Float32Array {
  return v.dtype === 'f32' ? v.data : f16ArrayToF32(v.data);
}

/** out[r] = sum_c w[r][c] * x[c] (+ bias[r]). Accumulates in double. */
export function matvec(
  w: Float32Array,
  rows: number,
  cols: number,
  x: Float32Array,
  out: Float32Array,
  bias?: Float32Array,
): void {
  const cols4 = cols - (cols % 4);
  for (let r = 0; r < rows; r++) {
    // Four partial sums: independent dependency chains run ~2x faster in V8.
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    const base = r * cols;
    let c = 0;
    for (; c < cols4; c += 4) {
      s0 += w[base + c] * x[c];
      s1 += w[base + c + 1] * x[c + 1];
      s2 += w[base + c + 2] * x[c + 2];
      s3 += w[base + c + 3] * x[c + 3];
    }
    for (; c < cols; c++) s0 += w[base + c] * x[c];
    const sum = s0 + s1 + s2 + s3;
    out[r] = bias ? sum + bias[r] : sum;
  }
}

/** out = x / sqrt(mean(x^2) + eps) * weight, over `n` elements starting at `offset` (in place allowed). */
export function rmsNorm(
  x: Float32Array,
  weight: Float32Array,
  eps: number,
  out: Float32Array,
  offset = 0,
  n = weight.length,
): void {
  let ss = 0;
  for (let i = 0; i < n; i++) ss += x[offset + i] * x[offset + i];
  const inv = 1 / Math.sqrt(ss / n + eps);
  for (let i = 0; i < n; i++) out[offset + i] = x[offset + i] * inv * weight[i];
}

/** HF rotate-half RoPE on one head in place: element i pairs with i + headDim/2; angle = pos * invFreq[i] (f32). */
export function applyRope(x: Float32Array, offset: number, headDim: number, pos: number, invFreq: Float32Array): void {
  const half = headDim / 2;
  for (let i = 0; i < half; i++) {
    const angle = Math.fround(pos * invFreq[i]);
    const cos = Math.fround(Math.cos(angle));
    const sin = Math.fround(Math.sin(angle));
    const a = x[offset + i];
    const b = x[offset + i + half];
    x[offset + i] = a * cos - b * sin;
    x[offset + i + half] = b * cos + a * sin;
  }
}

export function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}
