// Plain-TS reference for the matvec kernel: dequantize (kernels/dequantize.ts), then multiply row by row
// (accumulating in f64).
import { dequantizeLinear } from '../dequantize';
import { siluMulReference } from '../elementwise/elementwise.reference';
import { checkHostLinear, type HostLinear } from '../linearUpload';
import { rmsNormReference } from '../rmsnorm/rmsnorm.reference';

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
