// Full split-K decode attention vs the plain-TS reference: odd kvLen, GQA shapes, a long context, both KV dtypes.
import { describe, expect, test } from 'vitest';
import {
  createDecodeAttentionScratch,
  createSplitAttention,
  emptyIndexBuffer,
  fullAttentionState,
} from '../../../kernels/decodeAttention/decodeAttention';
import { fullPositions, referenceDecodeAttention } from '../../../kernels/decodeAttention/decodeAttention.reference';
import { type GpuContext, isCpuAdapter } from '../../../kernels/gpuContext';
import { runPass, storageBuffer } from '../../../kernels/gpuUtil';
import { testGpu } from '../setup';
import { type AttentionCase, kvDtypes, makeKv, maxAbsDiff, randomArray, readF32, rng } from './recycledHelpers';

type Case = AttentionCase;

/** Both split kernels, on every adapter: 'tiled' is what a GPU runs, 'lanes' what a CPU adapter runs. */
const KERNELS = ['tiled', 'lanes'] as const;
type Kernel = (typeof KERNELS)[number];

async function runFull(ctx: GpuContext, c: Case, dtype: 'f16' | 'f32', seed: number, kernel: Kernel, amp = 1) {
  const layout = { dtype, kvHeads: c.kvHeads, headDim: c.headDim, capacity: c.capacity };
  const kv = makeKv(ctx, layout, c.kvLen, seed, amp);
  const qHost = randomArray(c.numHeads * c.headDim, rng(seed + 1), 2);
  const q = storageBuffer(ctx, qHost);
  const out = storageBuffer(ctx, qHost.byteLength);
  const scratch = createDecodeAttentionScratch(ctx, { numHeads: c.numHeads, capacity: c.capacity, headDim: c.headDim });
  const attn = createSplitAttention(ctx, {
    layout,
    numHeads: c.numHeads,
    k: kv.k,
    v: kv.v,
    q,
    out,
    idx: emptyIndexBuffer(ctx),
    idxStride: 1,
    state: fullAttentionState(ctx),
    scratch,
    kernel,
  });
  expect(attn.kernel).toBe(kernel);
  runPass(ctx, (pass) => attn.encode(pass, { kvLen: c.kvLen }));
  const gpuOut = await readF32(ctx, out);
  const stats = await readF32(ctx, scratch.headStats);
  const scores = await readF32(ctx, scratch.scores);
  const ref = referenceDecodeAttention({
    q: qHost,
    k: kv.kHost,
    v: kv.vHost,
    numHeads: c.numHeads,
    kvHeads: c.kvHeads,
    headDim: c.headDim,
    capacity: c.capacity,
    positions: fullPositions(c.kvHeads, c.kvLen),
  });
  return { gpuOut, stats, scores, ref };
}

describe('full decode attention (split-K)', async () => {
  const ctx = await testGpu();
  // One capacity for the short cases: the capacity is a shader constant, so shared shapes share one pipeline
  // (compiles dominate the test time on lavapipe).
  const cases: Case[] = [
    { numHeads: 8, kvHeads: 2, headDim: 64, kvLen: 1, capacity: 4100 },
    { numHeads: 8, kvHeads: 2, headDim: 64, kvLen: 7, capacity: 4100 },
    { numHeads: 8, kvHeads: 2, headDim: 64, kvLen: 300, capacity: 4100 },
    { numHeads: 8, kvHeads: 2, headDim: 64, kvLen: 4099, capacity: 4100 },
    { numHeads: 4, kvHeads: 4, headDim: 32, kvLen: 517, capacity: 600 },
    { numHeads: 32, kvHeads: 8, headDim: 64, kvLen: 37, capacity: 64 },
    { numHeads: 6, kvHeads: 2, headDim: 80, kvLen: 333, capacity: 333 },
    { numHeads: 2, kvHeads: 1, headDim: 128, kvLen: 100, capacity: 128 },
  ];
  for (const kernel of KERNELS) {
    for (const dtype of kvDtypes(ctx)) {
      for (const c of cases) {
        test(`${kernel} ${dtype} ${c.numHeads}q/${c.kvHeads}kv d${c.headDim} kvLen ${c.kvLen}`, async () => {
          const { gpuOut, stats, scores, ref } = await runFull(ctx, c, dtype, c.kvLen * 7 + c.numHeads, kernel);
          expect(maxAbsDiff(gpuOut, ref.out)).toBeLessThan(2e-4);
          for (let h = 0; h < c.numHeads; h++) {
            expect(stats[h * 2]).toBeCloseTo(ref.maxLogit[h], 3);
            expect(Math.abs(stats[h * 2 + 1] / ref.sumExp[h] - 1)).toBeLessThan(1e-4);
            const row = scores.subarray(h * c.capacity, h * c.capacity + c.kvLen);
            expect(maxAbsDiff(row, ref.logits[h])).toBeLessThan(1e-3);
          }
        });
      }
    }
  }

  // Peaked attention (large logits): the split max/rescale path must not overflow or lose the winner.
  for (const kernel of KERNELS) {
    test(`${kernel}: peaked logits stay exact across splits`, async () => {
      const c = { numHeads: 8, kvHeads: 2, headDim: 64, kvLen: 1500, capacity: 4100 };
      const { gpuOut, ref } = await runFull(ctx, c, 'f32', 99, kernel, 6);
      expect(maxAbsDiff(gpuOut, ref.out)).toBeLessThan(5e-4);
    });

    test(`${kernel}: long context: 32K keys, 2 q heads on 1 kv head`, async () => {
      const c = { numHeads: 2, kvHeads: 1, headDim: 64, kvLen: 32_771, capacity: 32_800 };
      const dtype = ctx.f16 ? 'f16' : 'f32';
      const { gpuOut, stats, ref } = await runFull(ctx, c, dtype, 5, kernel);
      expect(maxAbsDiff(gpuOut, ref.out)).toBeLessThan(1e-4);
      for (let h = 0; h < c.numHeads; h++) expect(Math.abs(stats[h * 2 + 1] / ref.sumExp[h] - 1)).toBeLessThan(1e-4);
    });
  }

  /** A split attention over tiny placeholder buffers: what the wrapper decides and rejects, nothing dispatched. */
  const placeholder = (kvHeads: number, numHeads: number, kernel?: Kernel) => {
    const b = storageBuffer(ctx, 32 * 64 * 4);
    return createSplitAttention(ctx, {
      layout: { dtype: 'f32', kvHeads, headDim: 64, capacity: 8 },
      numHeads,
      k: b,
      v: b,
      q: b,
      out: b,
      idx: b,
      idxStride: 1,
      state: b,
      scratch: createDecodeAttentionScratch(ctx, { numHeads, capacity: 8, headDim: 64 }),
      kernel,
    });
  };

  test('the default split kernel: lanes on a CPU adapter, where the shape fits it', () => {
    expect(placeholder(2, 8).kernel).toBe(isCpuAdapter(ctx.adapterInfo) ? 'lanes' : 'tiled');
    // 16 q heads per kv head of 64 dims: 256 vec4 registers per lane, past what the lanes kernel unrolls.
    expect(placeholder(2, 32).kernel).toBe('tiled');
    expect(() => placeholder(2, 32, 'lanes')).toThrow(/lanes kernel does not take 32q\/2kv d64/);
  });

  test('bad input gets a clear error', () => {
    expect(() => placeholder(3, 8)).toThrow(/multiple of kvHeads/);
  });
});
