// Top-K per KV head on the GPU vs sort-based references: radix select (ties, K=1, K=L-1, K=L, odd L),
// GQA max-aggregation + max-pool, and the chain fed by the full decode attention's scores.
import { describe, expect, test } from 'vitest';
import {
  createDecodeAttentionScratch,
  createSplitAttention,
  emptyIndexBuffer,
  fullAttentionState,
} from '../../../kernels/decodeAttention/decodeAttention';
import { STATE } from '../../../kernels/decodeAttention/decodeAttention.wgsl';
import type { GpuContext } from '../../../kernels/gpuContext';
import { runPass, storageBuffer } from '../../../kernels/gpuUtil';
import { createAggregatePool, createRadixSelect, createTopK } from '../../../kernels/topk/topk';
import { referenceGroupMax, referenceMaxPool, referenceTopK } from '../../../kernels/topk/topk.reference';
import { testGpu } from '../setup';
import { makeKv, randomArray, readF32, readU32, rng } from './recycledHelpers';

function stateBuffer(ctx: GpuContext, flag: number): GPUBuffer {
  const words = new Uint32Array(STATE.words);
  words[STATE.flag] = flag;
  return storageBuffer(ctx, words);
}

/** Runs the radix select on host-made values [kvHeads][capacity] and returns the rows of idx. */
async function gpuSelect(ctx: GpuContext, rows: Float32Array[], capacity: number, k: number, flag = 1) {
  const kvHeads = rows.length;
  const L = rows[0].length;
  const values = new Float32Array(kvHeads * capacity);
  rows.forEach((r, h) => {
    values.set(r, h * capacity);
  });
  const idxStride = Math.min(k, L) + 3;
  const idx = storageBuffer(ctx, new Uint32Array(kvHeads * idxStride).fill(0xdeadbeef));
  const select = createRadixSelect(ctx, {
    kvHeads,
    capacity,
    values: storageBuffer(ctx, values),
    state: stateBuffer(ctx, flag),
    idx,
    idxStride,
  });
  runPass(ctx, (pass) => select.encode(pass, { kvLen: L, k }));
  const all = await readU32(ctx, idx);
  return rows.map((_, h) => Array.from(all.subarray(h * idxStride, h * idxStride + idxStride)));
}

function tiedRow(L: number, seed: number, levels: number): Float32Array {
  const rand = rng(seed);
  return Float32Array.from({ length: L }, () => Math.floor(rand() * levels) / levels);
}

describe('radix select', async () => {
  const ctx = await testGpu();
  const lengths = [1, 7, 300, 1000, 4099];
  for (const L of lengths) {
    const ks = [...new Set([1, Math.max(1, L - 1), L, Math.max(1, Math.floor(L / 8)), L + 5])];
    for (const k of ks) {
      test(`L ${L}, K ${k}: ties (few levels) and distinct values, 3 heads`, async () => {
        const rows = [tiedRow(L, L + k, 5), tiedRow(L, L * 3 + k, 1000), randomArray(L, rng(k)).map(Math.abs)];
        const got = await gpuSelect(ctx, rows, L + 2, k);
        const kept = Math.min(k, L);
        rows.forEach((r, h) => {
          expect(got[h].slice(0, kept)).toEqual(referenceTopK(r, k));
          expect(got[h].slice(kept)).toEqual([0xdeadbeef, 0xdeadbeef, 0xdeadbeef]); // nothing past K written
        });
      });
    }
  }

  test('all equal values: the lowest positions win; tiny and huge magnitudes', async () => {
    const L = 777;
    const flat = new Float32Array(L).fill(0.25);
    const spread = Float32Array.from({ length: L }, (_, i) => (i % 3 === 0 ? 1e-30 * (i + 1) : 2 ** ((i % 40) - 20)));
    const zeros = new Float32Array(L);
    const got = await gpuSelect(ctx, [flat, spread, zeros], L, 100);
    expect(got[0].slice(0, 100)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(got[1].slice(0, 100)).toEqual(referenceTopK(spread, 100));
    expect(got[2].slice(0, 100)).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });

  test('a recycled-step flag leaves the index buffer untouched', async () => {
    const got = await gpuSelect(ctx, [tiedRow(50, 1, 7)], 50, 10, 0);
    expect(got[0]).toEqual(new Array(13).fill(0xdeadbeef));
  });

  test('bad k gets a clear error', async () => {
    await expect(gpuSelect(ctx, [tiedRow(50, 1, 7)], 50, 0)).rejects.toThrow(/positive integer/);
  });
});

describe('GQA max-aggregation + max-pool (kernel 7)', async () => {
  const ctx = await testGpu();
  for (const [numHeads, kvHeads, L] of [
    [8, 2, 300],
    [4, 4, 5],
    [6, 2, 513],
    [2, 1, 1],
  ]) {
    test(`${numHeads}q/${kvHeads}kv L ${L}`, async () => {
      const capacity = L + 9;
      const rand = rng(L + numHeads);
      const scores = new Float32Array(numHeads * capacity);
      const stats = new Float32Array(numHeads * 2);
      const probs: Float64Array[] = [];
      for (let h = 0; h < numHeads; h++) {
        const row = Float32Array.from({ length: L }, () => rand() * 8 - 4);
        scores.set(row, h * capacity);
        const m = Math.max(...row);
        const sum = row.reduce((acc, x) => acc + Math.exp(x - m), 0);
        stats[h * 2] = m;
        stats[h * 2 + 1] = sum;
        probs.push(Float64Array.from(row, (x) => Math.exp(x - m) / Math.fround(sum)));
      }
      const pooled = storageBuffer(ctx, kvHeads * capacity * 4);
      const pool = createAggregatePool(ctx, {
        numHeads,
        kvHeads,
        capacity,
        scores: storageBuffer(ctx, scores),
        headStats: storageBuffer(ctx, stats),
        state: stateBuffer(ctx, 1),
        pooled,
      });
      runPass(ctx, (pass) => pool.encode(pass, { kvLen: L, k: 1 }));
      const got = await readF32(ctx, pooled);
      const agg = referenceGroupMax(probs, kvHeads);
      for (let kvh = 0; kvh < kvHeads; kvh++) {
        const want = referenceMaxPool(agg[kvh]);
        for (let p = 0; p < L; p++) {
          expect(Math.abs(got[kvh * capacity + p] - want[p])).toBeLessThanOrEqual(2e-6 * want[p] + 1e-12);
        }
      }
    });
  }
});

describe('top-K chain from the full decode attention scores', async () => {
  const ctx = await testGpu();
  for (const dtype of ctx.f16 ? (['f32', 'f16'] as const) : (['f32'] as const)) {
    test(`${dtype} 8q/2kv d64, L 1031, K 129`, async () => {
      const numHeads = 8;
      const layout = { dtype, kvHeads: 2, headDim: 64, capacity: 1040 };
      const L = 1031;
      const K = 129;
      const kv = makeKv(ctx, layout, L, 3, 3);
      const q = storageBuffer(ctx, randomArray(numHeads * 64, rng(4), 2));
      const scratch = createDecodeAttentionScratch(ctx, { numHeads, capacity: layout.capacity, headDim: 64 });
      const state = fullAttentionState(ctx);
      const idx = storageBuffer(ctx, 2 * K * 4);
      const pooled = storageBuffer(ctx, 2 * layout.capacity * 4);
      const attn = createSplitAttention(ctx, {
        layout,
        numHeads,
        k: kv.k,
        v: kv.v,
        q,
        out: storageBuffer(ctx, numHeads * 64 * 4),
        idx: emptyIndexBuffer(ctx),
        idxStride: 1,
        state,
        scratch,
      });
      const topk = createTopK(ctx, {
        numHeads,
        kvHeads: 2,
        capacity: layout.capacity,
        scores: scratch.scores,
        headStats: scratch.headStats,
        state,
        pooled,
        idx,
        idxStride: K,
      });
      runPass(ctx, (pass) => {
        attn.encode(pass, { kvLen: L });
        topk.encode(pass, { kvLen: L, k: K });
      });
      const scores = await readF32(ctx, scratch.scores);
      const stats = await readF32(ctx, scratch.headStats);
      const gotPooled = await readF32(ctx, pooled);
      const gotIdx = await readU32(ctx, idx);
      const probs = Array.from({ length: numHeads }, (_, h) =>
        Float64Array.from(
          scores.subarray(h * layout.capacity, h * layout.capacity + L),
          (s) => Math.exp(s - stats[h * 2]) / stats[h * 2 + 1],
        ),
      );
      const agg = referenceGroupMax(probs, 2);
      for (let kvh = 0; kvh < 2; kvh++) {
        const want = referenceMaxPool(agg[kvh]);
        const row = gotPooled.subarray(kvh * layout.capacity, kvh * layout.capacity + L);
        for (let p = 0; p < L; p++) expect(Math.abs(row[p] - want[p])).toBeLessThanOrEqual(2e-6 * want[p]);
        expect(Array.from(gotIdx.subarray(kvh * K, kvh * K + K))).toEqual(referenceTopK(row, K));
      }
    });
  }
});
