import { describe, expect, test } from 'vitest';
import { AddBiasKernel, AddInPlaceKernel, SiluMulKernel } from '../../../kernels/elementwise/elementwise';
import { addBiasReference, addReference, siluMulReference } from '../../../kernels/elementwise/elementwise.reference';
import { uploadVector } from '../../../kernels/elementwise/gpuVector';
import { readBuffer, runPass, storageBuffer, writeBuffer } from '../../../kernels/gpuUtil';
import { f16ArrayToF32, f32ArrayToF16 } from '../../../kernels/half';
import { testGpu } from '../setup';
import { randomF32, seededRandom, worstError } from './testUpload';

// f32 arithmetic; exp() on GPUs is a few ulp, so silu gets a slightly looser bound than the adds.
const SILU_TOL = { abs: 1e-7, rel: 1e-5 };
const ADD_TOL = { abs: 1e-7, rel: 1e-6 };
const MAX_TOKENS = 33;

describe('elementwise', () => {
  for (const intermediate of [96, 160, 257]) {
    test(`siluMul, I ${intermediate}, tokens 1/7/33, including saturated gates`, async () => {
      const ctx = await testGpu();
      const rand = seededRandom(intermediate);
      const gateUpBuf = storageBuffer(ctx, MAX_TOKENS * 2 * intermediate * 4);
      const outBuf = storageBuffer(ctx, MAX_TOKENS * intermediate * 4);
      const kernel = new SiluMulKernel(ctx, { intermediate, gateUp: gateUpBuf, out: outBuf, maxTokens: MAX_TOKENS });
      for (const tokens of [1, 7, 33]) {
        const gateUp = randomF32(tokens * 2 * intermediate, rand, 6);
        gateUp[0] = -120; // exp(120) overflows f32: silu must still be ~0, not NaN
        gateUp[1] = 90;
        writeBuffer(ctx, gateUpBuf, gateUp);
        runPass(ctx, (pass) => kernel.encode(pass, tokens));
        const got = new Float32Array(await readBuffer(ctx, outBuf, tokens * intermediate * 4));
        const want = siluMulReference(gateUp, tokens, intermediate);
        const worst = worstError(got, want, (i) => SILU_TOL.abs + SILU_TOL.rel * Math.abs(want[i]));
        expect(worst.ratio, `tokens ${tokens}: ${JSON.stringify(worst)}`).toBeLessThanOrEqual(1);
      }
    });
  }

  for (const width of [96, 160]) {
    test(`addInPlace, width ${width}, tokens 1/7/33; rows past tokens untouched`, async () => {
      const ctx = await testGpu();
      const rand = seededRandom(width + 1);
      const xBuf = storageBuffer(ctx, MAX_TOKENS * width * 4);
      const yBuf = storageBuffer(ctx, MAX_TOKENS * width * 4);
      const kernel = new AddInPlaceKernel(ctx, { width, x: xBuf, y: yBuf, maxTokens: MAX_TOKENS });
      for (const tokens of [1, 7, 33]) {
        const x = randomF32(MAX_TOKENS * width, rand, 4);
        const y = randomF32(MAX_TOKENS * width, rand, 4);
        writeBuffer(ctx, xBuf, x);
        writeBuffer(ctx, yBuf, y);
        runPass(ctx, (pass) => kernel.encode(pass, tokens));
        const got = new Float32Array(await readBuffer(ctx, xBuf));
        const want = addReference(x, y, tokens * width);
        const worst = worstError(got, want, (i) => ADD_TOL.abs + ADD_TOL.rel * Math.abs(want[i]));
        expect(worst.ratio, `tokens ${tokens}: ${JSON.stringify(worst)}`).toBeLessThanOrEqual(1);
      }
    });
  }

  for (const biasDtype of ['f32', 'f16'] as const) {
    for (const width of [80, 257]) {
      test(`addBias ${biasDtype}, width ${width}, tokens 1/7/33`, async () => {
        const ctx = await testGpu();
        const rand = seededRandom(width * 7);
        const values = randomF32(width, rand, 2);
        const bits = f32ArrayToF16(values);
        const exactBias = biasDtype === 'f16' ? f16ArrayToF32(bits) : values;
        const bias = uploadVector(
          ctx,
          biasDtype === 'f16' ? { dtype: 'f16', data: bits } : { dtype: 'f32', data: values },
        );
        expect(bias.dtype).toBe(biasDtype === 'f16' && ctx.f16 ? 'f16' : 'f32');
        const xBuf = storageBuffer(ctx, MAX_TOKENS * width * 4);
        const kernel = new AddBiasKernel(ctx, { bias, x: xBuf, maxTokens: MAX_TOKENS });
        for (const tokens of [1, 7, 33]) {
          const x = randomF32(MAX_TOKENS * width, rand, 4);
          writeBuffer(ctx, xBuf, x);
          runPass(ctx, (pass) => kernel.encode(pass, tokens));
          const got = new Float32Array(await readBuffer(ctx, xBuf));
          const want = addBiasReference(x, exactBias, tokens);
          const worst = worstError(got, want, (i) => ADD_TOL.abs + ADD_TOL.rel * Math.abs(want[i]));
          expect(worst.ratio, `tokens ${tokens}: ${JSON.stringify(worst)}`).toBeLessThanOrEqual(1);
        }
      });
    }
  }

  test('rejects bad shapes and token counts', async () => {
    const ctx = await testGpu();
    const small = storageBuffer(ctx, 16 * 4);
    const other = storageBuffer(ctx, 16 * 4);
    expect(() => new SiluMulKernel(ctx, { intermediate: 8, gateUp: small, out: other, maxTokens: 2 })).toThrow(
      /gateUp buffer/,
    );
    expect(() => new AddInPlaceKernel(ctx, { width: 8, x: small, y: small, maxTokens: 2 })).toThrow(/different/);
    const add = new AddInPlaceKernel(ctx, { width: 8, x: small, y: other, maxTokens: 2 });
    expect(() => runPass(ctx, (pass) => add.encode(pass, 3))).toThrow(/outside 1\.\.2/);
  });
});
