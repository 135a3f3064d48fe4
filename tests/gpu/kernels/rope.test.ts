import { describe, expect, test } from 'vitest';
import { ropeInverseFrequencies } from '../../../core/model/rope';
import { readBuffer, runPass, storageBuffer, writeBuffer } from '../../../kernels/gpuUtil';
import { f16ArrayToF32 } from '../../../kernels/half';
import { RopeKernel, uploadInverseFrequencies } from '../../../kernels/rope/rope';
import { ropeReference } from '../../../kernels/rope/rope.reference';
import type { KvCacheLayout } from '../../../kernels/types';
import { testGpu } from '../setup';
import { randomF32, seededRandom, throughF16, worstError } from './testUpload';

// f32: the angle is the same f32 value on both sides; GPU cos/sin after range reduction are accurate to ~1e-6.
const F32_TOL = { abs: 2e-6, rel: 2e-5 };
// f16 cache: one f16 rounding (rel 2^-11, or 2^-10 if the driver truncates) on top of the f32 result.
const F16_TOL = { abs: 1e-4, rel: 2e-3 };

const LLAMA_3_2 = {
  type: 'llama3' as const,
  factor: 32,
  lowFreqFactor: 1,
  highFreqFactor: 4,
  originalMaxPositionEmbeddings: 8192,
};

describe('rope + kv store', () => {
  const cases: { nq: number; nkv: number; headDim: number; capacity: number; chunks: [number, number][] }[] = [
    {
      nq: 6,
      nkv: 2,
      headDim: 8,
      capacity: 40,
      chunks: [
        [0, 1],
        [1, 7],
        [8, 32],
      ],
    },
    {
      nq: 6,
      nkv: 2,
      headDim: 32,
      capacity: 64,
      chunks: [
        [0, 33],
        [33, 1],
      ],
    },
    {
      nq: 6,
      nkv: 2,
      headDim: 64,
      capacity: 50,
      chunks: [
        [3, 7],
        [10, 33],
      ],
    },
    {
      nq: 4,
      nkv: 4,
      headDim: 128,
      capacity: 16,
      chunks: [
        [0, 7],
        [7, 1],
      ],
    },
    // Long positions: the angle reduction must hold far from zero (Llama-3 scaling, 32K window).
    { nq: 2, nkv: 1, headDim: 64, capacity: 32768, chunks: [[32735, 33]] },
  ];
  for (const c of cases) {
    for (const cacheDtype of ['f32', 'f16'] as const) {
      const name = `nq ${c.nq} / nkv ${c.nkv}, head_dim ${c.headDim}, chunks ${JSON.stringify(c.chunks)}, ${cacheDtype} cache`;
      test(name, async () => {
        const ctx = await testGpu();
        if (cacheDtype === 'f16' && !ctx.f16) {
          // Without shader-f16 the f16 cache is refused with a clear error (and the f32 case covers the kernel).
          const layout: KvCacheLayout = { dtype: 'f16', kvHeads: c.nkv, headDim: c.headDim, capacity: c.capacity };
          const buf = storageBuffer(ctx, 1 << 20);
          const make = () =>
            new RopeKernel(ctx, {
              numHeads: c.nq,
              numKvHeads: c.nkv,
              headDim: c.headDim,
              invFreq: buf,
              qkv: buf,
              q: buf,
              kv: { k: buf, v: buf },
              layout,
              maxTokens: 1,
            });
          expect(make).toThrow(/shader-f16/);
          return;
        }
        const rand = seededRandom(c.headDim * 100 + c.nq);
        const maxTokens = Math.max(...c.chunks.map(([, n]) => n));
        const row = (c.nq + 2 * c.nkv) * c.headDim;
        const invFreqHost = ropeInverseFrequencies({ headDim: c.headDim, ropeTheta: 500000, ropeScaling: LLAMA_3_2 });
        const layout: KvCacheLayout = { dtype: cacheDtype, kvHeads: c.nkv, headDim: c.headDim, capacity: c.capacity };
        const cacheFloats = c.nkv * c.capacity * c.headDim;
        const bytesPer = cacheDtype === 'f16' ? 2 : 4;
        // Fill the caches with a sentinel so writes outside the chunk's positions show up.
        const SENTINEL = 7;
        const sentinel =
          cacheDtype === 'f16' ? new Uint16Array(cacheFloats).fill(0x4700) : new Float32Array(cacheFloats).fill(7);
        const kv = { k: storageBuffer(ctx, sentinel), v: storageBuffer(ctx, sentinel) };
        const qkvBuf = storageBuffer(ctx, maxTokens * row * 4);
        const qBuf = storageBuffer(ctx, maxTokens * c.nq * c.headDim * 4);
        const kernel = new RopeKernel(ctx, {
          numHeads: c.nq,
          numKvHeads: c.nkv,
          headDim: c.headDim,
          invFreq: uploadInverseFrequencies(ctx, invFreqHost),
          qkv: qkvBuf,
          q: qBuf,
          kv,
          layout,
          maxTokens,
        });
        const wantK = new Float32Array(cacheFloats).fill(SENTINEL);
        const wantV = new Float32Array(cacheFloats).fill(SENTINEL);
        for (const [startPos, tokens] of c.chunks) {
          const qkv = randomF32(tokens * row, rand);
          writeBuffer(ctx, qkvBuf, qkv);
          runPass(ctx, (pass) => kernel.encode(pass, tokens, startPos));
          const want = ropeReference(qkv, {
            tokens,
            startPos,
            numHeads: c.nq,
            numKvHeads: c.nkv,
            headDim: c.headDim,
            invFreq: invFreqHost,
          });
          const gotQ = new Float32Array(await readBuffer(ctx, qBuf, tokens * c.nq * c.headDim * 4));
          const worstQ = worstError(gotQ, want.q, (i) => F32_TOL.abs + F32_TOL.rel * Math.abs(want.q[i]));
          expect(worstQ.ratio, `q at start ${startPos}: ${JSON.stringify(worstQ)}`).toBeLessThanOrEqual(1);
          for (let h = 0; h < c.nkv; h++) {
            const at = (h * c.capacity + startPos) * c.headDim;
            wantK.set(want.k.subarray(h * tokens * c.headDim, (h + 1) * tokens * c.headDim), at);
            wantV.set(want.v.subarray(h * tokens * c.headDim, (h + 1) * tokens * c.headDim), at);
          }
        }
        const readCache = async (b: GPUBuffer) => {
          const bytes = await readBuffer(ctx, b, cacheFloats * bytesPer);
          return cacheDtype === 'f16' ? f16ArrayToF32(new Uint16Array(bytes)) : new Float32Array(bytes);
        };
        const tol = cacheDtype === 'f16' ? F16_TOL : F32_TOL;
        for (const [name, buf, want] of [
          ['k', kv.k, cacheDtype === 'f16' ? throughF16(wantK) : wantK],
          ['v', kv.v, cacheDtype === 'f16' ? throughF16(wantV) : wantV],
        ] as const) {
          const got = await readCache(buf);
          const worst = worstError(got, want, (i) => tol.abs + tol.rel * Math.abs(want[i]));
          expect(worst.ratio, `${name} cache: ${JSON.stringify(worst)}`).toBeLessThanOrEqual(1);
        }
      });
    }
  }

  test('positions past the KV capacity are refused', async () => {
    const ctx = await testGpu();
    const layout: KvCacheLayout = { dtype: 'f32', kvHeads: 1, headDim: 8, capacity: 10 };
    const buf = storageBuffer(ctx, 4096);
    const kernel = new RopeKernel(ctx, {
      numHeads: 2,
      numKvHeads: 1,
      headDim: 8,
      invFreq: buf,
      qkv: buf,
      q: buf,
      kv: { k: buf, v: storageBuffer(ctx, 4096) },
      layout,
      maxTokens: 4,
    });
    expect(() => runPass(ctx, (pass) => kernel.encode(pass, 4, 7))).toThrow(/capacity 10/);
    expect(() => runPass(ctx, (pass) => kernel.encode(pass, 5, 0))).toThrow(/outside 1\.\.4/);
  });
});
