import { describe, expect, test } from 'vitest';
import { readBuffer, runPass, storageBuffer, writeBuffer } from '../../../kernels/gpuUtil';
import { uploadLinear } from '../../../kernels/linearUpload';
import { MatmulKernel } from '../../../kernels/matmul/matmul';
import { matmulReference, type ReferenceLinear } from '../../../kernels/matmul/matmul.reference';
import { randomF32, randomLinear, seededRandom, worstError } from '../../../kernels/matmul/testUpload';
import { testGpu } from '../setup';

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
): Promise<void> {
  const ctx = await testGpu();
  const rand = seededRandom(seed);
  const host = randomLinear(dtype, rows, cols, rand, 0.5);
  const weight = uploadLinear(ctx, host);
  const maxTokens = Math.max(...tokenCounts);
  const xBuf = storageBuffer(ctx, maxTokens * cols * 4);
  const yBuf = storageBuffer(ctx, maxTokens * rows * 4);
  const kernel = new MatmulKernel(ctx, { weight, x: xBuf, y: yBuf, maxTokens });
  for (const tokens of tokenCounts) {
    const x = randomF32(tokens * cols, rand);
    writeBuffer(ctx, xBuf, x);
    // Poison y so rows the kernel forgets to write are caught.
    writeBuffer(ctx, yBuf, new Float32Array(maxTokens * rows).fill(Number.NaN));
    runPass(ctx, (pass) => kernel.encode(pass, tokens));
    const got = new Float32Array(await readBuffer(ctx, yBuf, tokens * rows * 4));
    const want = matmulReference(x, tokens, host);
    const worst = worstError(got, want.y, (i) => 1e-7 + REL_TO_MAGNITUDE * want.magnitude[i]);
    expect(worst.ratio, `${dtype} [${rows}][${cols}], tokens ${tokens}: ${JSON.stringify(worst)}`).toBeLessThanOrEqual(
      1,
    );
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
