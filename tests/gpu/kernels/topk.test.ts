// Top-K per KV head on the GPU vs sort-based references: radix select (ties, K=1, K=L-1, K=L, odd L, rows of many
// chunks, a second selection on the same kernel, 8K+ rows), GQA max-aggregation + max-pool, and the chain fed by the
// full decode attention's scores.
import { describe, expect, test } from 'vitest';
import {
  createDecodeAttentionScratch,
  createSplitAttention,
  emptyIndexBuffer,
  fullAttentionState,
} from '../../../kernels/decodeAttention/decodeAttention';
import { MAX_SPLITS, STATE } from '../../../kernels/decodeAttention/decodeAttention.wgsl';
import type { GpuContext } from '../../../kernels/gpuContext';
import { runPass, storageBuffer, uniformBuffer, writeBuffer } from '../../../kernels/gpuUtil';
import { createAggregatePool, createRadixSelect } from '../../../kernels/topk/topk';
import { referenceGroupMax, referenceMaxPool, referenceTopK } from '../../../kernels/topk/topk.reference';
import { testGpu } from '../setup';
import { makeKv, randomArray, readF32, readU32, rng } from './recycledHelpers';

function stateBuffer(ctx: GpuContext, flag: number): GPUBuffer {
  const words = new Uint32Array(STATE.words);
  words[STATE.flag] = flag;
  return storageBuffer(ctx, words);
}

/** Capacity and index row of every select below: one set of pipelines per chunking, compiled once. */
const CAP = 12300;
const IDX_STRIDE = CAP;
type Chunking = { minChunk?: number; maxChunks?: number };
/** The adapter's default (on a CPU adapter: one chunk per row). */
const DEFAULT: Chunking = {};
/** A GPU's default on any adapter: chunks of 1024 positions or more. */
const GPU_CHUNKS: Chunking = { maxChunks: Math.ceil(CAP / 1024) };
/** Chunks of 256 positions: many chunks on short rows. */
const SMALL_CHUNKS: Chunking = { minChunk: 256, maxChunks: Math.ceil(CAP / 256) };

/** Runs the radix select on host-made rows (kvHeads = rows.length) and returns the rows of idx (IDX_STRIDE each,
 * filled with 0xdeadbeef before). */
async function gpuSelect(ctx: GpuContext, rows: Float32Array[], k: number, chunking: Chunking, flag = 1) {
  const kvHeads = rows.length;
  const L = rows[0].length;
  const values = new Float32Array(kvHeads * CAP);
  rows.forEach((r, h) => {
    values.set(r, h * CAP);
  });
  const idx = storageBuffer(ctx, new Uint32Array(kvHeads * IDX_STRIDE).fill(0xdeadbeef));
  const valueBuffer = storageBuffer(ctx, values);
  const state = stateBuffer(ctx, flag);
  const select = createRadixSelect(ctx, {
    kvHeads,
    capacity: CAP,
    values: valueBuffer,
    state,
    idx,
    ...chunking,
    idxStride: IDX_STRIDE,
  });
  try {
    runPass(ctx, (pass) => select.encode(pass, { kvLen: L, k }));
    const all = await readU32(ctx, idx);
    return rows.map((_, h) => Array.from(all.subarray(h * IDX_STRIDE, (h + 1) * IDX_STRIDE)));
  } finally {
    select.destroy();
    for (const b of [idx, valueBuffer, state]) b.destroy();
  }
}

/** Checks every head's first min(k, L) slots against the reference and that nothing after them was written. */
function expectTopK(got: number[][], rows: Float32Array[], k: number) {
  rows.forEach((r, h) => {
    const kept = Math.min(k, r.length);
    expect(got[h].slice(0, kept)).toEqual(referenceTopK(r, k));
    expect(got[h].slice(kept).every((v) => v === 0xdeadbeef)).toBe(true);
  });
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
      test(`L ${L}, K ${k}: ties (few levels) and distinct values, 3 heads, the adapter's chunking`, async () => {
        const rows = [tiedRow(L, L + k, 5), tiedRow(L, L * 3 + k, 1000), randomArray(L, rng(k)).map(Math.abs)];
        expectTopK(await gpuSelect(ctx, rows, k, DEFAULT), rows, k);
      });
    }
  }

  // Many chunks of 256 positions: the counts of earlier chunks place each chunk's positions; ties across chunks;
  // rows that end inside a chunk.
  for (const [L, k] of [
    [4099, 512],
    [2000, 1999],
    [1025, 3],
    [513, 513],
    [7, 2],
  ]) {
    test(`L ${L}, K ${k} in chunks of 256: ties across chunks, 2 heads`, async () => {
      const rows = [tiedRow(L, L + k, 3), randomArray(L, rng(k + 1)).map(Math.abs)];
      expectTopK(await gpuSelect(ctx, rows, k, SMALL_CHUNKS), rows, k);
    });
  }

  // Long rows: K = L/8 and K near L, few levels (long tie runs that straddle chunks) and distinct values, with a
  // GPU's chunking (the last chunk partial) and the adapter's.
  for (const [L, k] of [
    [8195, 1024],
    [8195, 8190],
    [12289, 1536],
  ]) {
    for (const [name, chunking] of [
      ['GPU', GPU_CHUNKS],
      ["the adapter's", DEFAULT],
    ] as const) {
      test(`L ${L}, K ${k}, ${name} chunking: 2 heads`, async () => {
        const rows = [tiedRow(L, L + k, 7), randomArray(L, rng(k + 2)).map(Math.abs)];
        expectTopK(await gpuSelect(ctx, rows, k, chunking), rows, k);
      });
    }
  }

  test('selections in a row on the same kernel (histograms cleared by the one before), rows in one and several chunks', async () => {
    const L = 3000;
    const rows = [tiedRow(L, 5, 9), randomArray(L, rng(6)).map(Math.abs), tiedRow(L, 7, 2), tiedRow(L, 8, 50)];
    const idx = storageBuffer(ctx, IDX_STRIDE * 4);
    const valueBuffer = storageBuffer(ctx, CAP * 4);
    const state = stateBuffer(ctx, 1);
    const chunking = { minChunk: 512, maxChunks: 8 };
    const select = createRadixSelect(ctx, {
      kvHeads: 1,
      capacity: CAP,
      values: valueBuffer,
      state,
      idx,
      idxStride: IDX_STRIDE,
      ...chunking,
    });
    // 3000 and 2600 positions: several chunks; 400 and 300: one chunk (the write finds the threshold itself).
    for (const [i, kvLen] of [3000, 400, 2600, 300].entries()) {
      const k = 100 + 37 * i;
      writeBuffer(ctx, valueBuffer, rows[i]);
      runPass(ctx, (pass) => select.encode(pass, { kvLen, k }));
      const got = Array.from((await readU32(ctx, idx)).subarray(0, k));
      expect(got).toEqual(referenceTopK(rows[i].subarray(0, kvLen), k));
    }
    select.destroy();
  });

  test('all equal values: the lowest positions win; tiny and huge magnitudes', async () => {
    const L = 777;
    const flat = new Float32Array(L).fill(0.25);
    const spread = Float32Array.from({ length: L }, (_, i) => (i % 3 === 0 ? 1e-30 * (i + 1) : 2 ** ((i % 40) - 20)));
    const zeros = new Float32Array(L);
    for (const chunking of [DEFAULT, SMALL_CHUNKS]) {
      const got = await gpuSelect(ctx, [flat, spread, zeros], 100, chunking);
      expect(got[0].slice(0, 100)).toEqual(Array.from({ length: 100 }, (_, i) => i));
      expect(got[1].slice(0, 100)).toEqual(referenceTopK(spread, 100));
      expect(got[2].slice(0, 100)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    }
  });

  test('a recycled-step flag leaves the index buffer untouched', async () => {
    for (const chunking of [DEFAULT, SMALL_CHUNKS]) {
      const got = await gpuSelect(ctx, [tiedRow(1500, 1, 7)], 10, chunking, 0);
      expect(got[0].every((v) => v === 0xdeadbeef)).toBe(true);
    }
  });

  test('bad k, minChunk or maxChunks get a clear error', async () => {
    await expect(gpuSelect(ctx, [tiedRow(50, 1, 7)], 0, DEFAULT)).rejects.toThrow(/k must be a positive integer/);
    await expect(gpuSelect(ctx, [tiedRow(50, 1, 7)], 5, { minChunk: 300 })).rejects.toThrow(/multiple of 256/);
    await expect(gpuSelect(ctx, [tiedRow(50, 1, 7)], 5, { maxChunks: 0 })).rejects.toThrow(/maxChunks/);
  });
});

describe('GQA max-aggregation + max-pool (kernel 7)', async () => {
  const ctx = await testGpu();
  // Both kernels on every shape: a tile boundary inside the row (300, 513), rows shorter than one lane's segment.
  for (const [numHeads, kvHeads, L, poolKernel] of [
    [8, 2, 300, 'tiled'],
    [4, 4, 5, 'tiled'],
    [6, 2, 513, 'tiled'],
    [2, 1, 1, 'tiled'],
    [8, 2, 300, 'lanes'],
    [4, 4, 5, 'lanes'],
    [6, 2, 513, 'lanes'],
    [2, 1, 1, 'lanes'],
    [32, 8, 1000, 'lanes'],
  ] as const) {
    test(`${numHeads}q/${kvHeads}kv L ${L}, ${poolKernel} kernel`, async () => {
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
      const agg = referenceGroupMax(probs, kvHeads);
      const expectPooled = (got: Float32Array, tolerance: number) => {
        for (let kvh = 0; kvh < kvHeads; kvh++) {
          const want = referenceMaxPool(agg[kvh]);
          for (let p = 0; p < L; p++) {
            expect(Math.abs(got[kvh * capacity + p] - want[p])).toBeLessThanOrEqual(tolerance * want[p] + 1e-12);
          }
        }
      };
      const pooled = storageBuffer(ctx, kvHeads * capacity * 4);
      const scoresBuffer = storageBuffer(ctx, scores);
      const pool = createAggregatePool(ctx, {
        numHeads,
        kvHeads,
        capacity,
        scores: scoresBuffer,
        headStats: storageBuffer(ctx, stats),
        state: stateBuffer(ctx, 1),
        pooled,
        poolKernel,
      });
      runPass(ctx, (pass) => pool.encode(pass, { kvLen: L, k: 1 }));
      expectPooled(await readF32(ctx, pooled), 2e-6);

      // The same from the attention's split partials (the pooling reduces them itself): each head's row cut into
      // numSplits chunks of (chunk max, sum of exp(x - chunk max)), the last ones empty where L is short.
      const numSplits = 5;
      const chunk = Math.ceil(L / numSplits);
      const partMaxSum = new Float32Array(numHeads * MAX_SPLITS * 2);
      for (let h = 0; h < numHeads; h++) {
        for (let s = 0; s < numSplits; s++) {
          const part = scores.subarray(
            h * capacity + Math.min(L, s * chunk),
            h * capacity + Math.min(L, (s + 1) * chunk),
          );
          const m = part.length ? Math.max(...part) : -3e38; // an empty split: what the attention kernel writes
          partMaxSum[(h * MAX_SPLITS + s) * 2] = m;
          partMaxSum[(h * MAX_SPLITS + s) * 2 + 1] = part.reduce((acc, x) => acc + Math.exp(x - m), 0);
        }
      }
      const attentionParams = uniformBuffer(ctx, Uint32Array.from([L, numSplits, 0, 0]));
      const fromSplits = storageBuffer(ctx, kvHeads * capacity * 4);
      const splitPool = createAggregatePool(ctx, {
        numHeads,
        kvHeads,
        capacity,
        scores: scoresBuffer,
        splits: { partMaxSum: storageBuffer(ctx, partMaxSum), attentionParams: { buffer: attentionParams } },
        state: stateBuffer(ctx, 1),
        pooled: fromSplits,
        poolKernel,
      });
      runPass(ctx, (pass) => splitPool.encode(pass, { kvLen: L, k: 1 }));
      expectPooled(await readF32(ctx, fromSplits), 1e-5);
    });
  }

  test('the pooling takes head statistics or split partials, not both or neither', async () => {
    const b = storageBuffer(ctx, 64);
    const base = { numHeads: 2, kvHeads: 1, capacity: 4, scores: b, state: stateBuffer(ctx, 1), pooled: b };
    expect(() => createAggregatePool(ctx, base)).toThrow(/either headStats or the split partials/);
    const splits = { partMaxSum: b, attentionParams: { buffer: uniformBuffer(ctx, new Uint32Array(4)) } };
    expect(() => createAggregatePool(ctx, { ...base, headStats: b, splits })).toThrow(/not both/);
  });
});

describe('top-K chain from the full decode attention scores', async () => {
  const ctx = await testGpu();
  const shapes = [
    { numHeads: 8, kvHeads: 2, L: 1031, K: 129, capacity: 1040 },
    { numHeads: 6, kvHeads: 3, L: 8203, K: 1025, capacity: 8210 },
  ];
  for (const dtype of ctx.f16 ? (['f32', 'f16'] as const) : (['f32'] as const)) {
    for (const { numHeads, kvHeads, L, K, capacity } of shapes) {
      test(`${dtype} ${numHeads}q/${kvHeads}kv d64, L ${L}, K ${K}`, async () => {
        const layout = { dtype, kvHeads, headDim: 64, capacity };
        const kv = makeKv(ctx, layout, L, 3, 3);
        const q = storageBuffer(ctx, randomArray(numHeads * 64, rng(4), 2));
        const scratch = createDecodeAttentionScratch(ctx, { numHeads, capacity: layout.capacity, headDim: 64 });
        const state = fullAttentionState(ctx);
        const idx = storageBuffer(ctx, kvHeads * K * 4);
        const pooled = storageBuffer(ctx, kvHeads * layout.capacity * 4);
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
        const pool = createAggregatePool(ctx, {
          numHeads,
          kvHeads,
          capacity: layout.capacity,
          scores: scratch.scores,
          headStats: scratch.headStats,
          state,
          pooled,
        });
        const select = createRadixSelect(ctx, {
          kvHeads,
          capacity: layout.capacity,
          values: pooled,
          state,
          idx,
          idxStride: K,
        });
        runPass(ctx, (pass) => {
          attn.encode(pass, { kvLen: L });
          pool.encode(pass, { kvLen: L, k: K });
          select.encode(pass, { kvLen: L, k: K });
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
        const agg = referenceGroupMax(probs, kvHeads);
        for (let kvh = 0; kvh < kvHeads; kvh++) {
          const want = referenceMaxPool(agg[kvh]);
          const row = gotPooled.subarray(kvh * layout.capacity, kvh * layout.capacity + L);
          for (let p = 0; p < L; p++) expect(Math.abs(row[p] - want[p])).toBeLessThanOrEqual(2e-6 * want[p]);
          expect(Array.from(gotIdx.subarray(kvh * K, kvh * K + K))).toEqual(referenceTopK(row, K));
        }
        select.destroy();
      });
    }
  }
});
