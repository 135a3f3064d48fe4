import { describe, expect, test } from 'vitest';
import { type HostVector, uploadVector } from '../../../kernels/elementwise/gpuVector';
import type { GpuContext } from '../../../kernels/gpuContext';
import { readBuffer, runPass, storageBuffer } from '../../../kernels/gpuUtil';
import { f16ArrayToF32, f32ArrayToF16 } from '../../../kernels/half';
import { RmsNormKernel } from '../../../kernels/rmsnorm/rmsnorm';
import { rmsNormReference } from '../../../kernels/rmsnorm/rmsnorm.reference';
import { testGpu } from '../setup';
import { randomF32, seededRandom, worstError } from './testUpload';

// f32 arithmetic on f32 activations; the reference sums in f64. The weight is the same f16-rounded value on both sides.
const REL_TOL = 1e-5;
const ABS_TOL = 1e-6;

function hostWeight(dtype: 'f32' | 'f16', values: Float32Array): { host: HostVector; exact: Float32Array } {
  if (dtype === 'f32') return { host: { dtype, data: values }, exact: values };
  const bits = f32ArrayToF16(values);
  return { host: { dtype, data: bits }, exact: f16ArrayToF32(bits) };
}

async function runNorm(
  ctx: GpuContext,
  opts: { n: number; rows: number; segments?: number; rowStride?: number; rowOffset?: number; inPlace: boolean },
  weightDtype: 'f32' | 'f16',
  seed: number,
): Promise<void> {
  const rand = seededRandom(seed);
  const segments = opts.segments ?? 1;
  const rowStride = opts.rowStride ?? opts.n * segments;
  const maxRows = 33;
  // Rows carry an offset so a norm that ignores the mean would be caught; one row is all zeros (eps only).
  const x = randomF32(maxRows * rowStride, rand, 3);
  for (let i = 0; i < x.length; i++) x[i] += 0.5;
  const weight = hostWeight(weightDtype, randomF32(opts.n, rand, 2));
  const input = storageBuffer(ctx, x);
  const output = opts.inPlace ? input : storageBuffer(ctx, x.byteLength);
  const eps = 1e-5;
  const kernel = new RmsNormKernel(ctx, {
    n: opts.n,
    weight: uploadVector(ctx, weight.host),
    eps,
    input,
    output,
    maxRows,
    segments,
    rowStride,
    rowOffset: opts.rowOffset,
  });
  runPass(ctx, (pass) => kernel.encode(pass, opts.rows));
  const got = new Float32Array(await readBuffer(ctx, output, opts.rows * rowStride * 4));
  const want = rmsNormReference(x, weight.exact, { ...opts, eps }).subarray(0, opts.rows * rowStride);
  // In place, elements outside the segments must be untouched; out of place only the segments are written.
  const from = opts.rowOffset ?? 0;
  const inSegment = (i: number) => i % rowStride >= from && i % rowStride < from + opts.n * segments;
  const worst = worstError(got, want, (i) =>
    opts.inPlace || inSegment(i) ? ABS_TOL + REL_TOL * Math.abs(want[i]) : Number.POSITIVE_INFINITY,
  );
  expect(worst.ratio, JSON.stringify(worst)).toBeLessThanOrEqual(1);
  // The reference really normalised: some output differs from its input by far more than the tolerance.
  expect(want.some((v, i) => Math.abs(v - x[i]) > 0.1)).toBe(true);
}

/** The fused residual form: x += r (written back), y = norm(x). Checked against f32 adds and the reference norm. */
async function runResidualNorm(ctx: GpuContext, n: number, rows: number, seed: number): Promise<void> {
  const rand = seededRandom(seed);
  const maxRows = 9;
  const x = randomF32(maxRows * n, rand, 3);
  const r = randomF32(maxRows * n, rand, 3);
  const weight = hostWeight('f32', randomF32(n, rand, 2));
  const input = storageBuffer(ctx, x);
  const output = storageBuffer(ctx, x.byteLength);
  const residual = storageBuffer(ctx, r);
  const eps = 1e-5;
  const kernel = new RmsNormKernel(ctx, {
    n,
    weight: uploadVector(ctx, weight.host),
    eps,
    input,
    output,
    residual,
    maxRows,
  });
  runPass(ctx, (pass) => kernel.encode(pass, rows));
  const sum = x.map((v, i) => (i < rows * n ? Math.fround(v + r[i]) : v));
  // x now holds x + r (exactly the f32 sums) in the rows normalised, and is untouched after them.
  expect(Array.from(new Float32Array(await readBuffer(ctx, input)))).toEqual(Array.from(sum));
  const got = new Float32Array(await readBuffer(ctx, output, rows * n * 4));
  const want = rmsNormReference(sum, weight.exact, { n, rows, eps }).subarray(0, rows * n);
  const worst = worstError(got, want, (i) => ABS_TOL + REL_TOL * Math.abs(want[i]));
  expect(worst.ratio, JSON.stringify(worst)).toBeLessThanOrEqual(1);
}

describe('rmsnorm', () => {
  for (const [n, rows] of [
    [96, 1],
    [1000, 7],
  ] as const) {
    test(`fused residual add, n ${n}, ${rows} rows`, async () => {
      await runResidualNorm(await testGpu(), n, rows, n + rows);
    });
  }

  for (const weightDtype of ['f32', 'f16'] as const) {
    for (const n of [96, 160, 1000]) {
      for (const rows of [1, 7, 33]) {
        test(`${weightDtype} weight, n ${n}, ${rows} rows, out of place`, async () => {
          await runNorm(await testGpu(), { n, rows, inPlace: false }, weightDtype, n + rows);
        });
      }
      test(`${weightDtype} weight, n ${n}, 7 rows, in place`, async () => {
        await runNorm(await testGpu(), { n, rows: 7, inPlace: true }, weightDtype, n * 3);
      });
    }
  }

  // Qwen3 q/k norm: each head_dim slice of q (nq heads) and of k (nkv heads) inside the qkv row, in place.
  for (const headDim of [8, 32, 64, 128]) {
    for (const weightDtype of ['f32', 'f16'] as const) {
      test(`per-head q and k norm, head_dim ${headDim}, nq 6 / nkv 2, ${weightDtype}`, async () => {
        const ctx = await testGpu();
        const nq = 6;
        const nkv = 2;
        const rowStride = (nq + 2 * nkv) * headDim;
        await runNorm(ctx, { n: headDim, rows: 7, segments: nq, rowStride, inPlace: true }, weightDtype, headDim);
        await runNorm(
          ctx,
          { n: headDim, rows: 33, segments: nkv, rowStride, rowOffset: nq * headDim, inPlace: true },
          weightDtype,
          headDim + 1,
        );
      });
    }
  }

  test('rejects bad shapes', async () => {
    const ctx = await testGpu();
    const weight = uploadVector(ctx, { dtype: 'f32', data: new Float32Array(8) });
    const input = storageBuffer(ctx, 8 * 4 * 4);
    expect(() => new RmsNormKernel(ctx, { n: 16, weight, eps: 1e-6, input, maxRows: 2 })).toThrow(/weight has 8/);
    expect(() => new RmsNormKernel(ctx, { n: 8, weight, eps: 0, input, maxRows: 2 })).toThrow(/eps/);
    expect(() => new RmsNormKernel(ctx, { n: 8, weight, eps: 1e-6, input, maxRows: 5 })).toThrow(/smaller/);
    const ok = new RmsNormKernel(ctx, { n: 8, weight, eps: 1e-6, input, maxRows: 4 });
    expect(() => runPass(ctx, (pass) => ok.encode(pass, 0))).toThrow(/outside 1\.\.4/);
  });
});
