// Sparse (recycled) decode attention kernel vs a reference gather-attention, and K >= L equals full attention.
import { describe, expect, test } from 'vitest';
import {
  createDecodeAttentionScratch,
  createSplitAttention,
  emptyIndexBuffer,
  fullAttentionState,
} from '../../../kernels/decodeAttention/decodeAttention';
import { fullPositions, referenceDecodeAttention } from '../../../kernels/decodeAttention/decodeAttention.reference';
import { STATE } from '../../../kernels/decodeAttention/decodeAttention.wgsl';
import type { GpuContext } from '../../../kernels/gpuContext';
import { runPass, storageBuffer } from '../../../kernels/gpuUtil';
import { referenceRecycledPositions } from '../../../kernels/schedule/schedule.reference';
import type { KvCacheLayout } from '../../../kernels/types';
import { testGpu } from '../setup';
import { kvDtypes, makeKv, maxAbsDiff, randomArray, readF32, rng } from './recycledHelpers';

interface SparseCase {
  numHeads: number;
  kvHeads: number;
  headDim: number;
  kvLen: number;
  lastFullLen: number;
  k: number;
}

/** k distinct positions < lastFullLen per KV head, in random order (the kernel must not assume sorted input). */
function randomSelection(kvHeads: number, lastFullLen: number, k: number, seed: number): number[][] {
  const rand = rng(seed);
  return Array.from({ length: kvHeads }, () => {
    const all = Array.from({ length: lastFullLen }, (_, i) => i);
    for (let i = all.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [all[i], all[j]] = [all[j], all[i]];
    }
    return all.slice(0, k);
  });
}

async function runAttention(
  ctx: GpuContext,
  layout: KvCacheLayout,
  numHeads: number,
  kv: { k: GPUBuffer; v: GPUBuffer },
  qHost: Float32Array,
  kvLen: number,
  sparse?: { selection: number[][]; lastFullLen: number },
) {
  const idxStride = sparse ? Math.max(1, sparse.selection[0].length) : 1;
  let idx = emptyIndexBuffer(ctx);
  let state = fullAttentionState(ctx);
  if (sparse) {
    idx = storageBuffer(ctx, Uint32Array.from(sparse.selection.flat()));
    const words = new Uint32Array(STATE.words);
    words[STATE.flag] = 0;
    words[STATE.lastFullLen] = sparse.lastFullLen;
    words[STATE.nSel] = sparse.selection[0].length;
    // The whole selection is attended here (what the decide kernel writes when no decoded token displaces any).
    words[STATE.nAttend] = sparse.selection[0].length;
    state = storageBuffer(ctx, words);
  }
  const out = storageBuffer(ctx, qHost.byteLength);
  const scratch = createDecodeAttentionScratch(ctx, { numHeads, capacity: layout.capacity, headDim: layout.headDim });
  const attn = createSplitAttention(ctx, {
    layout,
    numHeads,
    k: kv.k,
    v: kv.v,
    q: storageBuffer(ctx, qHost),
    out,
    idx,
    idxStride,
    state,
    scratch,
  });
  runPass(ctx, (pass) => attn.encode(pass, { kvLen }));
  return { out: await readF32(ctx, out), scores: await readF32(ctx, scratch.scores) };
}

describe('recycled (sparse) decode attention kernel', async () => {
  const ctx = await testGpu();
  const cases: SparseCase[] = [
    { numHeads: 8, kvHeads: 2, headDim: 64, kvLen: 310, lastFullLen: 300, k: 37 },
    { numHeads: 4, kvHeads: 4, headDim: 32, kvLen: 1, lastFullLen: 1, k: 1 }, // only the selection, nothing appended
    { numHeads: 32, kvHeads: 8, headDim: 64, kvLen: 70, lastFullLen: 61, k: 8 },
    { numHeads: 8, kvHeads: 2, headDim: 64, kvLen: 4099, lastFullLen: 4000, k: 3001 }, // large K: many splits
    { numHeads: 6, kvHeads: 3, headDim: 48, kvLen: 129, lastFullLen: 129, k: 128 },
  ];
  for (const dtype of kvDtypes(ctx)) {
    for (const c of cases) {
      test(`${dtype} ${c.numHeads}q/${c.kvHeads}kv d${c.headDim} K ${c.k}, lastFull ${c.lastFullLen}, kvLen ${c.kvLen}`, async () => {
        const layout = { dtype, kvHeads: c.kvHeads, headDim: c.headDim, capacity: c.kvLen + 5 };
        const kv = makeKv(ctx, layout, c.kvLen, c.kvLen + c.k);
        const qHost = randomArray(c.numHeads * c.headDim, rng(c.k), 2);
        const selection = randomSelection(c.kvHeads, c.lastFullLen, c.k, c.kvLen);
        const got = await runAttention(ctx, layout, c.numHeads, kv, qHost, c.kvLen, {
          selection,
          lastFullLen: c.lastFullLen,
        });
        const positions = selection.map((sel) => referenceRecycledPositions(sel, c.lastFullLen, c.kvLen));
        const ref = referenceDecodeAttention({ ...c, ...layout, q: qHost, k: kv.kHost, v: kv.vHost, positions });
        expect(maxAbsDiff(got.out, ref.out)).toBeLessThan(2e-4);
        // Logits land at their virtual index j (selection first, then the appended positions).
        for (let h = 0; h < c.numHeads; h++) {
          const n = positions[0].length;
          expect(
            maxAbsDiff(got.scores.subarray(h * layout.capacity, h * layout.capacity + n), ref.logits[h]),
          ).toBeLessThan(1e-3);
        }
      });
    }
  }

  test('K >= L: the sparse list 0..L-1 + appended gives exactly the full output', async () => {
    const layout = { dtype: 'f32' as const, kvHeads: 2, headDim: 64, capacity: 1200 };
    const numHeads = 8;
    const kvLen = 1111;
    const lastFullLen = 1100;
    const kv = makeKv(ctx, layout, kvLen, 77);
    const qHost = randomArray(numHeads * 64, rng(78), 2);
    const all = Array.from({ length: lastFullLen }, (_, i) => i);
    const sparse = await runAttention(ctx, layout, numHeads, kv, qHost, kvLen, {
      selection: [all, all],
      lastFullLen,
    });
    const full = await runAttention(ctx, layout, numHeads, kv, qHost, kvLen);
    expect(Array.from(sparse.out)).toEqual(Array.from(full.out));
    const ref = referenceDecodeAttention({
      q: qHost,
      k: kv.kHost,
      v: kv.vHost,
      numHeads,
      ...layout,
      positions: fullPositions(2, kvLen),
    });
    expect(maxAbsDiff(full.out, ref.out)).toBeLessThan(2e-4);
  });
});
