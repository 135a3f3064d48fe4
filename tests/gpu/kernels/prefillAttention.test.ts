import { describe, expect, test } from 'vitest';
import type { GpuContext } from '../../../kernels/gpuContext';
import { readBuffer, runPass, storageBuffer } from '../../../kernels/gpuUtil';
import { f32ArrayToF16, roundToF16 } from '../../../kernels/half';
import { createPrefillAttention, prefillTilingCandidates } from '../../../kernels/prefillAttention/prefillAttention';
import { prefillAttentionReference } from '../../../kernels/prefillAttention/prefillAttention.reference';
import type { PrefillAttentionTiling } from '../../../kernels/prefillAttention/prefillAttention.wgsl';
import type { KvCacheLayout } from '../../../kernels/types';
import { testGpu } from '../setup';

/** Deterministic uniform values in [-range, range). */
function randomArray(n: number, seed: number, range = 1): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    out[i] = ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1) * range;
  }
  return out;
}

interface Case {
  numHeads: number;
  kvHeads: number;
  headDim: number;
  capacity: number;
  /** (tokens, startPos) chunks, each run against the same cache and one kernel instance. */
  chunks: [number, number][];
  /** Fills q, k, v; defaults to uniform [-1, 1). */
  fill?: (q: Float32Array, k: Float32Array, v: Float32Array) => void;
  tiling?: PrefillAttentionTiling;
}

const dtypes = (ctx: GpuContext): KvCacheLayout['dtype'][] => (ctx.f16 ? ['f16', 'f32'] : ['f32']);

/** Runs the kernel and the reference on the same (dtype-rounded) data; returns the max abs difference per chunk. */
async function runCase(ctx: GpuContext, c: Case, dtype: KvCacheLayout['dtype']): Promise<number[]> {
  const { numHeads, kvHeads, headDim, capacity } = c;
  const maxTokens = Math.max(...c.chunks.map(([tokens]) => tokens));
  const q = randomArray(maxTokens * numHeads * headDim, 1 + maxTokens + 7 * headDim);
  const k = randomArray(kvHeads * capacity * headDim, 2 + capacity);
  const v = randomArray(kvHeads * capacity * headDim, 3 + numHeads);
  c.fill?.(q, k, v);
  if (dtype === 'f16') {
    for (let i = 0; i < k.length; i++) k[i] = roundToF16(k[i]);
    for (let i = 0; i < v.length; i++) v[i] = roundToF16(v[i]);
  }
  const upload = (a: Float32Array) => storageBuffer(ctx, dtype === 'f16' ? f32ArrayToF16(a) : a);
  const qBuf = storageBuffer(ctx, q);
  const outBuf = storageBuffer(ctx, q.byteLength);
  const kBuf = upload(k);
  const vBuf = upload(v);
  const layout: KvCacheLayout = { dtype, kvHeads, headDim, capacity };
  const attention = createPrefillAttention(ctx, {
    q: qBuf,
    out: outBuf,
    k: kBuf,
    v: vBuf,
    layout,
    numHeads,
    maxTokens,
    tiling: c.tiling,
  });
  if (c.tiling) expect(attention.tiling).toEqual(c.tiling);
  const diffs: number[] = [];
  for (const [tokens, startPos] of c.chunks) {
    runPass(ctx, (pass) => attention.encode(pass, { tokens, startPos }));
    const size = tokens * numHeads * headDim;
    const got = new Float32Array(await readBuffer(ctx, outBuf, size * 4));
    const want = prefillAttentionReference({ q, k, v, tokens, startPos, numHeads, kvHeads, headDim, capacity });
    let maxDiff = 0;
    for (let i = 0; i < size; i++) {
      const diff = Math.abs(got[i] - want[i]);
      if (!(diff <= maxDiff)) maxDiff = Number.isNaN(diff) ? Number.POSITIVE_INFINITY : diff;
    }
    diffs.push(maxDiff);
  }
  for (const b of [qBuf, outBuf, kBuf, vBuf]) b.destroy();
  return diffs;
}

/** Every chunk on every cache dtype the adapter offers is within tol of the reference. */
async function expectClose(c: Case, tol = 1e-4): Promise<void> {
  const ctx = await testGpu();
  for (const dtype of dtypes(ctx)) {
    const diffs = await runCase(ctx, c, dtype);
    diffs.forEach((d, i) => {
      expect(d, `${dtype} chunk tokens=${c.chunks[i][0]} startPos=${c.chunks[i][1]}`).toBeLessThan(tol);
    });
  }
}

describe('prefill attention matches the plain-TS reference', () => {
  // Single tokens, odd chunks, chunks starting at 0 and chunks continuing a cache (chunked prefill).
  const chunks: [number, number][] = [
    [1, 0],
    [5, 0],
    [37, 0],
    [1, 63],
    [5, 19],
    [37, 50],
  ];
  const shapes: Case[] = [];
  for (const headDim of [8, 32, 64, 128]) {
    for (const [numHeads, kvHeads] of [
      [8, 2],
      [6, 3],
      [4, 4],
    ]) {
      shapes.push({ numHeads, kvHeads, headDim, capacity: 90, chunks });
    }
  }
  test.each(shapes)('heads $numHeads/$kvHeads headDim $headDim', (c) => expectClose(c));

  // Every tiling the bench may choose (headDim 64 fits all of them in 32 KiB of workgroup memory), on a shape with
  // a partial last block and chunks continuing a cache.
  test('every tiling candidate: GQA 8/2, headDim 64, chunks at 0 and continuing a cache', async () => {
    const ctx = await testGpu();
    const candidates = prefillTilingCandidates(ctx, 64);
    // Both drivers have fixed subgroups (SwiftShader 4, lavapipe 8), so the rows variants are among them.
    expect(candidates.filter((t) => t.variant === 'rows').length).toBeGreaterThan(0);
    expect(candidates.filter((t) => t.variant === undefined).length).toBeGreaterThan(3);
    for (const tiling of candidates) {
      await expectClose({
        numHeads: 8,
        kvHeads: 2,
        headDim: 64,
        capacity: 90,
        chunks: [
          [37, 0],
          [29, 50],
          [1, 89],
        ],
        tiling,
      });
    }
  });

  test('long: 4133 keys, GQA 8/2, headDim 64, chunk continuing a cache', () =>
    expectClose({ numHeads: 8, kvHeads: 2, headDim: 64, capacity: 4140, chunks: [[37, 4096]] }));

  test('32K keys: one head, headDim 8, 3 queries at the end of the cache', () =>
    expectClose({
      numHeads: 1,
      kvHeads: 1,
      headDim: 8,
      capacity: 32768,
      chunks: [[3, 32768 - 3]],
      // One key far back holds much of the mass, so a lost tile would show.
      fill: (q, k) => {
        for (let i = 0; i < 8; i++) k[1000 * 8 + i] = q[i] < 0 ? -3 : 3;
      },
    }));

  test('numerically hard: logits around ±50 and a block of keys whose logits exceed 88 (exp overflows f32)', () => {
    const headDim = 32;
    const capacity = 70;
    return expectClose({
      numHeads: 4,
      kvHeads: 2,
      headDim,
      capacity,
      chunks: [
        [37, 30],
        [5, 0],
      ],
      // Keys up to ±10 against queries near ±6 give logits of tens. Keys 2..3 align with every query (logit ~92,
      // past exp's f32 range) and keys 40..47, in a later tile, align better (~102): the running max must jump.
      fill: (q, k) => {
        for (let i = 0; i < q.length; i++) q[i] = (i % 2 ? 6 : -6) + q[i];
        for (let i = 0; i < k.length; i++) k[i] = k[i] * 10;
        for (let h = 0; h < 2; h++) {
          for (const j of [2, 3, 40, 41, 42, 43, 44, 45, 46, 47]) {
            const size = j < 10 ? 2.7 : 3 + (j % 5) * 0.01;
            for (let d = 0; d < headDim; d++) k[(h * capacity + j) * headDim + d] = d % 2 ? size : -size;
          }
        }
      },
    });
  });
});

test('prefill attention rejects bad shapes and arguments', async () => {
  const ctx = await testGpu();
  const buf = storageBuffer(ctx, 4096 * 4);
  const layout: KvCacheLayout = { dtype: 'f32', kvHeads: 2, headDim: 8, capacity: 64 };
  const base = { q: buf, out: buf, k: buf, v: buf, layout, numHeads: 4, maxTokens: 8 };
  expect(() => createPrefillAttention(ctx, { ...base, numHeads: 5 })).toThrow(/multiple of kvHeads/);
  expect(() => createPrefillAttention(ctx, { ...base, maxTokens: 1000 })).toThrow(/buffer q/);
  const attention = createPrefillAttention(ctx, base);
  expect(() => runPass(ctx, (pass) => attention.encode(pass, { tokens: 9, startPos: 0 }))).toThrow(/tokens/);
  expect(() => runPass(ctx, (pass) => attention.encode(pass, { tokens: 8, startPos: 60 }))).toThrow(/capacity/);
  buf.destroy();
});
