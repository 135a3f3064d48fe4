import { describe, expect, test } from 'vitest';
import { fixedSubgroupSize } from '../../../kernels/gpuContext';
import { readBuffer, runPass, storageBuffer, writeBuffer } from '../../../kernels/gpuUtil';
import { uploadLinear } from '../../../kernels/linearUpload';
import { MatmulKernel } from '../../../kernels/matmul/matmul';
import { matmulReference, type ReferenceLinear } from '../../../kernels/matmul/matmul.reference';
import { matmulRowsKStep } from '../../../kernels/matmul/matmulRows.wgsl';
import { describeMatmulTuning, type MatmulTuning, matmulTuningCandidates } from '../../../kernels/matmul/tuning';
import { testGpu } from '../setup';
import { randomF32, randomLinear, seededRandom, worstError } from './testUpload';

// Weights are dequantised exactly on both sides; what differs is f32 accumulation order on the GPU vs f64 here, so
// the error bound scales with sum_k |x_k w_k| (not with |y|, which can cancel to ~0).
const REL_TO_MAGNITUDE = 2e-5;

const dtypes: ReferenceLinear['dtype'][] = ['f32', 'f16', 'q4f16', 'q4f32'];

async function checkMatmul(
  dtype: ReferenceLinear['dtype'],
  rows: number,
  cols: number,
  tokenCounts: number[],
  seed: number,
  tuning: MatmulTuning = { variant: 'tiled' },
): Promise<void> {
  const ctx = await testGpu();
  const rand = seededRandom(seed);
  const host = randomLinear(dtype, rows, cols, rand, 0.5);
  const weight = uploadLinear(ctx, host);
  const maxTokens = Math.max(...tokenCounts);
  const xBuf = storageBuffer(ctx, maxTokens * cols * 4);
  const yBuf = storageBuffer(ctx, maxTokens * rows * 4);
  const kernel = new MatmulKernel(ctx, { weight, x: xBuf, y: yBuf, maxTokens, tuning });
  expect(kernel.tuning).toEqual(tuning);
  // f16 arithmetic: x and each product rounded to f16 (unit roundoff 2^-11), partial sums over one step of kStep
  // columns in f16, so the error is at most (kStep + 2) · 2^-11 · sum_k |x_k w_k|. f32: REL_TO_MAGNITUDE.
  const rel =
    tuning.variant === 'rows' && tuning.f16
      ? (matmulRowsKStep(fixedSubgroupSize(ctx) ?? 0) + 2) * 2 ** -11
      : REL_TO_MAGNITUDE;
  for (const tokens of tokenCounts) {
    const x = randomF32(tokens * cols, rand);
    writeBuffer(ctx, xBuf, x);
    // Poison y so rows the kernel forgets to write are caught.
    writeBuffer(ctx, yBuf, new Float32Array(maxTokens * rows).fill(Number.NaN));
    runPass(ctx, (pass) => kernel.encode(pass, tokens));
    const got = new Float32Array(await readBuffer(ctx, yBuf, tokens * rows * 4));
    const want = matmulReference(x, tokens, host);
    const worst = worstError(got, want.y, (i) => 1e-7 + rel * want.magnitude[i]);
    const what = `${describeMatmulTuning(tuning)} ${dtype} [${rows}][${cols}], tokens ${tokens}`;
    expect(worst.ratio, `${what}: ${JSON.stringify(worst)}`).toBeLessThanOrEqual(1);
  }
}

describe('prefill matmul', () => {
  for (const dtype of dtypes) {
    test(`${dtype}: rows 257, cols 96, tokens 1/7/33/65`, async () => {
      await checkMatmul(dtype, 257, 96, [1, 7, 33, 65], 1);
    });
    test(`${dtype}: rows 64, cols 160, tokens 130 (several token tiles)`, async () => {
      await checkMatmul(dtype, 64, 160, [130, 64], 2);
    });
    test(`${dtype}: rows 100, cols 1024, tokens 7`, async () => {
      await checkMatmul(dtype, 100, 1024, [7], 3);
    });
  }

  for (const dtype of ['f32', 'f16'] as const) {
    test(`${dtype}: cols not a multiple of the k step (cols 100, 45)`, async () => {
      await checkMatmul(dtype, 33, 100, [1, 33], 4);
      await checkMatmul(dtype, 70, 45, [5], 5);
    });
  }

  // The register-blocked subgroup variant: every candidate the bench may choose on this adapter (SwiftShader:
  // subgroups of 4; lavapipe: 8, with and without f16 arithmetic). Rows, tokens: not multiples of the blocks.
  test('the adapter offers the rows variant (fixed subgroup size)', async () => {
    const ctx = await testGpu();
    expect(fixedSubgroupSize(ctx), JSON.stringify(ctx.adapterInfo)).toBeGreaterThan(0);
  });
  for (const dtype of ['q4f16', 'q4f32'] as const) {
    test(`${dtype}: every rows candidate, rows 257/100, cols 96/1024, tokens 1/7/33/65`, async () => {
      const ctx = await testGpu();
      const rows = matmulTuningCandidates(ctx).filter((t) => t.variant === 'rows');
      expect(rows.length).toBeGreaterThan(0);
      for (const tuning of rows) {
        await checkMatmul(dtype, 257, 96, [1, 7, 33, 65], 6, tuning);
        await checkMatmul(dtype, 100, 1024, [9], 7, tuning);
      }
    });
  }

  test('q4 needs cols divisible by 32; token counts are checked', async () => {
    const ctx = await testGpu();
    const buf = storageBuffer(ctx, 4096);
    const y = storageBuffer(ctx, 4096);
    const q4 = { dtype: 'q4f32' as const, rows: 4, cols: 48, weight: buf, scales: buf };
    expect(() => new MatmulKernel(ctx, { weight: q4, x: buf, y, maxTokens: 1 })).toThrow(/multiple of 32/);
    const f32 = { dtype: 'f32' as const, rows: 4, cols: 8, weight: buf };
    const kernel = new MatmulKernel(ctx, { weight: f32, x: buf, y, maxTokens: 2 });
    expect(() => runPass(ctx, (pass) => kernel.encode(pass, 3))).toThrow(/outside 1\.\.2/);
    expect(() => new MatmulKernel(ctx, { weight: f32, x: buf, y, maxTokens: 1000 })).toThrow(/x is smaller/);
  });
});
