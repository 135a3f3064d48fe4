// Plain-TS reference for the matvec kernel: dequantize, then multiply row by row (accumulating in f64).
import { f16ArrayToF32 } from '../../core/util/half';
import { siluMulReference } from '../elementwise/elementwise.reference';
import { checkHostLinear, type HostLinear, Q4_GROUP_SIZE } from '../linearUpload';
import { rmsNormReference } from '../rmsnorm/rmsnorm.reference';

/** MLC q4*_1 -> f32 [rows][cols]: element c of a row is nibble (c % 8) of word c / 8, value (q - 7) * scale. */
export function dequantizeQ4(
  qweight: Uint32Array,
  scales: Uint16Array | Float32Array,
  rows: number,
  cols: number,
): Float32Array {
  const scale32 = scales instanceof Uint16Array ? f16ArrayToF32(scales) : scales;
  const groupsPerRow = cols / Q4_GROUP_SIZE;
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const word = qweight[(r * cols + c) >>> 3];
      const q = (word >>> (4 * (c & 7))) & 0xf;
      out[r * cols + c] = (q - 7) * scale32[r * groupsPerRow + Math.floor(c / Q4_GROUP_SIZE)];
    }
  }
  return out;
}

/** The weights of a HostLinear as f32 [rows][cols]. */
export function dequantizeLinear(host: HostLinear): Float32Array {
  switch (host.dtype) {
    case 'f32':
      return host.data;
    case 'f16':
      return f16ArrayToF32(host.data);
    default:
      return dequantizeQ4(host.qweight, host.scales, host.rows, host.cols);
  }
}

/** y = W x for x of length cols; y has length rows. */
export function matvecReference(host: HostLinear, x: Float32Array): Float32Array {
  checkHostLinear(host);
  if (x.length !== host.cols) throw new Error(`matvecReference: x has ${x.length} elements, expected ${host.cols}`);
  const w = dequantizeLinear(host);
  const y = new Float32Array(host.rows);
  for (let r = 0; r < host.rows; r++) {
    let sum = 0;
    const base = r * host.cols;
    for (let c = 0; c < host.cols; c++) sum += w[base + c] * x[c];
    y[r] = sum;
  }
  return y;
}

/** The fused variants of createMatvec, composed from the plain references: y = W rmsnorm(x) (when rmsNorm),
 * silu(gate . x) * (up . x) over a [gate rows; up rows] weight (when siluMul), plus the prior y (when accumulate). */
export function matvecFusedReference(
  host: HostLinear,
  x: Float32Array,
  opts: { rmsNorm?: { gamma: ArrayLike<number>; eps: number }; siluMul?: boolean; accumulate?: Float32Array },
): { y: Float64Array; xn: Float32Array; preEpilogue: Float32Array } {
  const xn = opts.rmsNorm
    ? rmsNormReference(x, opts.rmsNorm.gamma, { n: x.length, rows: 1, eps: opts.rmsNorm.eps })
    : x;
  const preEpilogue = matvecReference(host, xn);
  const outRows = opts.siluMul ? host.rows / 2 : host.rows;
  const y = opts.siluMul ? siluMulReference(preEpilogue, 1, outRows) : Float64Array.from(preEpilogue);
  if (opts.accumulate) for (let r = 0; r < outRows; r++) y[r] += opts.accumulate[r];
  return { y, xn, preEpilogue };
}
