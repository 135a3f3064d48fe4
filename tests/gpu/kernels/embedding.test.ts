import { describe, expect, test } from 'vitest';
import { EmbeddingKernel } from '../../../kernels/embedding/embedding';
import { embeddingReference } from '../../../kernels/embedding/embedding.reference';
import { readBuffer, runPass, storageBuffer, writeBuffer } from '../../../kernels/gpuUtil';
import { uploadLinear } from '../../../kernels/linearUpload';
import type { ReferenceLinear } from '../../../kernels/matmul/matmul.reference';
import { testGpu } from '../setup';
import { randomLinear, seededRandom, worstError } from './testUpload';

// A lookup only converts stored values to f32 (f16 -> f32 and (q - 7) * scale are exact), so the tolerance is tight.
const TOLERANCE = 1e-7;

const dtypes: ReferenceLinear['dtype'][] = ['f32', 'f16', 'q4f16', 'q4f32'];

describe('embedding lookup', () => {
  for (const dtype of dtypes) {
    for (const [vocab, hidden] of [
      [257, 96],
      [50, 160],
    ]) {
      test(`${dtype} table [${vocab}][${hidden}], 1/7/33 tokens, out-of-range id -> zeros`, async () => {
        const ctx = await testGpu();
        const rand = seededRandom(vocab * 31 + hidden);
        const host = randomLinear(dtype, vocab, hidden, rand);
        const table = uploadLinear(ctx, host);
        const maxTokens = 33;
        const ids = storageBuffer(ctx, maxTokens * 4);
        const out = storageBuffer(ctx, maxTokens * hidden * 4);
        const kernel = new EmbeddingKernel(ctx, { table, ids, out, maxTokens });
        for (const count of [1, 7, 33]) {
          const idValues = new Uint32Array(count);
          for (let t = 0; t < count; t++) idValues[t] = Math.floor(rand() * vocab);
          idValues[count - 1] = vocab - 1; // last row of the table
          if (count > 1) idValues[0] = vocab + 5; // outside the vocabulary
          writeBuffer(ctx, ids, idValues);
          runPass(ctx, (pass) => kernel.encode(pass, count));
          const got = new Float32Array(await readBuffer(ctx, out, count * hidden * 4));
          const want = embeddingReference(host, idValues);
          const worst = worstError(got, want, (i) => TOLERANCE * (1 + Math.abs(want[i])));
          expect(worst.ratio, `count ${count}: ${JSON.stringify(worst)}`).toBeLessThanOrEqual(1);
          if (count > 1) expect(got.subarray(0, hidden).every((v) => v === 0)).toBe(true);
          expect(got.some((v) => v !== 0)).toBe(true);
        }
      });
    }
  }

  test('rejects a count beyond maxTokens and undersized buffers', async () => {
    const ctx = await testGpu();
    const table = uploadLinear(ctx, randomLinear('f32', 10, 32, seededRandom(1)));
    const ids = storageBuffer(ctx, 4 * 4);
    const out = storageBuffer(ctx, 4 * 32 * 4);
    const kernel = new EmbeddingKernel(ctx, { table, ids, out, maxTokens: 4 });
    expect(() => runPass(ctx, (pass) => kernel.encode(pass, 5))).toThrow(/outside 1\.\.4/);
    expect(() => new EmbeddingKernel(ctx, { table, ids, out, maxTokens: 8 })).toThrow(/ids buffer/);
  });
});
