// rankSelection (kernels/schedule): orders each KV head's selected positions strongest first by pooled score,
// ties to the lower position, against the plain-TS ranking; sizes that are not powers of two, plateaus of equal
// scores (what the max-pool makes), and a recycled step's flag (the kernel must leave the selection alone).
import { describe, expect, test } from 'vitest';
import { STATE } from '../../../kernels/decodeAttention/decodeAttention.wgsl';
import { storageBuffer } from '../../../kernels/gpuUtil';
import { createRankSelection, rankScratchBytes } from '../../../kernels/schedule/schedule';
import { testGpu } from '../setup';
import { readU32, rng } from './recycledHelpers';

/** Plain-TS ranking of one head's selection (the order the schedule reference keeps). */
function rankReference(selection: number[], score: (p: number) => number): number[] {
  return [...selection].sort((a, b) => score(b) - score(a) || a - b);
}

describe('rank selection vs the plain-TS ranking', async () => {
  const ctx = await testGpu();
  const capacity = 700;

  // Workgroup: the adapter's default, and both explicit sizes (the GPU's 256, a CPU adapter's 8; 3 is no power of two).
  for (const [kvHeads, nSel, idxStride, workgroupSize] of [
    [2, 37, 40, undefined],
    [3, 256, 256, undefined],
    [1, 300, 333, undefined],
    [2, 1, 8, undefined],
    [3, 256, 256, 256],
    [1, 300, 333, 8],
    [2, 37, 40, 3],
  ] as const) {
    test(`${kvHeads} KV heads, ${nSel} selected (index row ${idxStride}), workgroup ${workgroupSize ?? 'default'}`, async () => {
      const rand = rng(nSel * 7 + kvHeads);
      // Scores on a coarse grid so that many are equal (plateaus), all >= 0.
      const pooled = Float32Array.from({ length: kvHeads * capacity }, () => Math.floor(rand() * 20) / 64);
      const selections = Array.from({ length: kvHeads }, () => {
        const set = new Set<number>();
        while (set.size < nSel) set.add(Math.floor(rand() * capacity));
        return [...set].sort((a, b) => a - b); // the radix select writes ascending positions
      });
      const idxHost = new Uint32Array(kvHeads * idxStride).fill(0xdead);
      selections.forEach((sel, h) => {
        idxHost.set(sel, h * idxStride);
      });
      const state = new Uint32Array(STATE.words);
      state[STATE.flag] = 1;
      state[STATE.nSel] = nSel;
      const stateBuf = storageBuffer(ctx, state);
      const idx = storageBuffer(ctx, idxHost);
      const kernel = createRankSelection(ctx, {
        kvHeads,
        capacity,
        idxStride,
        pooled: storageBuffer(ctx, pooled),
        state: stateBuf,
        idx,
        scratch: storageBuffer(ctx, rankScratchBytes(kvHeads, idxStride)),
        workgroupSize,
      });
      const enc = ctx.device.createCommandEncoder();
      const pass = enc.beginComputePass();
      kernel.encode(pass);
      pass.end();
      ctx.device.queue.submit([enc.finish()]);
      const got = await readU32(ctx, idx, kvHeads * idxStride);
      selections.forEach((sel, h) => {
        const want = rankReference(sel, (p) => pooled[h * capacity + p]);
        expect(Array.from(got.subarray(h * idxStride, h * idxStride + nSel)), `head ${h}`).toEqual(want);
        // Entries past nSel are not touched.
        expect(Array.from(got.subarray(h * idxStride + nSel, (h + 1) * idxStride)).every((v) => v === 0xdead)).toBe(
          true,
        );
      });
    });
  }

  test('a recycled step (flag 0) leaves the selection as it is', async () => {
    const idxHost = Uint32Array.from([5, 1, 9, 3]);
    const state = new Uint32Array(STATE.words);
    state[STATE.nSel] = 4;
    const idx = storageBuffer(ctx, idxHost);
    const kernel = createRankSelection(ctx, {
      kvHeads: 1,
      capacity: 16,
      idxStride: 4,
      pooled: storageBuffer(
        ctx,
        Float32Array.from({ length: 16 }, (_, i) => i),
      ),
      state: storageBuffer(ctx, state),
      idx,
      scratch: storageBuffer(ctx, rankScratchBytes(1, 4)),
    });
    const enc = ctx.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    kernel.encode(pass);
    pass.end();
    ctx.device.queue.submit([enc.finish()]);
    expect(Array.from(await readU32(ctx, idx, 4))).toEqual([5, 1, 9, 3]);
  });
});
