// createDecodeAttention (all policies) step by step vs the plain-TS layer simulation: outputs, GPU-decided
// full/recycled flags (fixed stride, dynamic cosine rule), streaming windows, SnapKV, recall and counters.
import { describe, expect, test } from 'vitest';
import { createDecodeAttention } from '../../../core/attention/decodeAttention';
import { ReferenceLayerAttention } from '../../../core/attention/decodeAttention.reference';
import { dynamicThreshold } from '../../../core/attention/policy';
import type { AttentionPolicy } from '../../../core/engine/types';
import { STATE } from '../../../kernels/decodeAttention/decodeAttention.wgsl';
import type { GpuContext } from '../../../kernels/gpuContext';
import { storageBuffer, writeBuffer } from '../../../kernels/gpuUtil';
import { UniformArena } from '../../../kernels/uniforms';
import { testGpu } from '../setup';
import { kvDtypes, makeKv, maxAbsDiff, randomArray, readF32, readU32, rng } from './recycledHelpers';

const numHeads = 8;
const kvHeads = 2;
const headDim = 32;

/** Queries near a common direction, some steps drifting away, so the cosine rule goes both ways. */
function stepQueries(count: number, seed: number): Float32Array[] {
  const rand = rng(seed);
  const base = randomArray(numHeads * headDim, rand, 1.5);
  return Array.from({ length: count }, (_, s) => {
    const drift = s % 3 === 2 ? 3 : 0.15;
    const noise = randomArray(numHeads * headDim, rand, drift);
    return base.map((b, i) => b + noise[i]);
  });
}

async function runPolicy(
  ctx: GpuContext,
  dtype: 'f16' | 'f32',
  policy: AttentionPolicy,
  opts: { promptLen: number; steps: number; seed: number; sharedParams?: boolean },
) {
  const capacity = 400; // fixed: it is a shader constant, and one shape compiles once
  const layout = { dtype, kvHeads, headDim, capacity };
  const kv = makeKv(ctx, layout, capacity, opts.seed, 2);
  const q = storageBuffer(ctx, numHeads * headDim * 4);
  // The dynamic schedule compares the query before RoPE: here a buffer of its own, unrelated to the attention's q.
  const scheduleQuery = storageBuffer(ctx, numHeads * headDim * 4);
  const out = storageBuffer(ctx, numHeads * headDim * 4);
  // sharedParams: the kernels' scalars in slots of one uniform buffer written once per submit, as the engine does.
  const arena = opts.sharedParams ? new UniformArena(ctx, 1024, 'test params') : undefined;
  const params = arena && { attention: arena.slot(16), decide: arena.slot(32), topK: arena.slot(16) };
  const attn = createDecodeAttention(ctx, {
    layout,
    numHeads,
    k: kv.k,
    v: kv.v,
    q,
    scheduleQuery,
    out,
    policy,
    params,
  });
  const ref = new ReferenceLayerAttention(policy, { numHeads, kvHeads, headDim, capacity, k: kv.kHost, v: kv.vHost });
  const scheduleQueries = stepQueries(opts.steps + 1, opts.seed + 1);
  const rand = rng(opts.seed + 2);
  const queries = scheduleQueries.map(() => randomArray(numHeads * headDim, rand, 1.5));

  // Seed with the last prompt position's queries given in other buffers, as the engine may do.
  const promptQ = storageBuffer(ctx, queries[0]);
  const promptScheduleQ = storageBuffer(ctx, scheduleQueries[0]);
  let enc = ctx.device.createCommandEncoder();
  let pass = enc.beginComputePass();
  attn.seedFromPrefill(pass, { kvLen: opts.promptLen, q: promptQ, scheduleQuery: promptScheduleQ });
  pass.end();
  arena?.flush();
  ctx.device.queue.submit([enc.finish()]);
  const seedOut = ref.seedFromPrefill(queries[0], opts.promptLen, scheduleQueries[0]);
  expect(maxAbsDiff(await readF32(ctx, out), seedOut), 'seed output (full attention)').toBeLessThan(3e-4);

  const flags: boolean[] = [];
  const refFlags: boolean[] = [];
  for (let step = 1; step <= opts.steps; step++) {
    const kvLen = opts.promptLen + step;
    writeBuffer(ctx, q, queries[step]);
    writeBuffer(ctx, scheduleQuery, scheduleQueries[step]);
    enc = ctx.device.createCommandEncoder();
    pass = enc.beginComputePass();
    attn.encodeStep(pass, { kvLen, step });
    pass.end();
    arena?.flush();
    ctx.device.queue.submit([enc.finish()]);
    const want = ref.step(queries[step], kvLen, step, scheduleQueries[step]);
    if (want.cosine !== null && policy.kind === 'recycled' && policy.dynamic) {
      // A cosine within rounding of the threshold would make the expected decision ambiguous.
      expect(Math.abs(want.cosine - dynamicThreshold(policy))).toBeGreaterThan(1e-3);
    }
    const got = await readF32(ctx, out);
    const state = await readU32(ctx, attn.state, STATE.words);
    flags.push(state[STATE.flag] === 1);
    refFlags.push(want.full);
    expect(maxAbsDiff(got, want.out), `step ${step} output`).toBeLessThan(3e-4);
    if (want.full && policy.kind === 'recycled') {
      // The selection, ordered strongest first (the order displacement drops from).
      const idx = await readU32(ctx, attn.indices, kvHeads * attn.idxStride);
      ref.selection.forEach((sel, h) => {
        expect(
          Array.from(idx.subarray(h * attn.idxStride, h * attn.idxStride + sel.length)),
          `step ${step} rank`,
        ).toEqual(sel);
      });
    }
    if (want.cosine !== null && ref.fullSteps > 0) {
      expect(new Float32Array(state.buffer)[STATE.lastCosine]).toBeCloseTo(want.cosine, 4);
    }
  }
  expect(flags).toEqual(refFlags);
  const stats = await attn.readStats();
  expect(stats.steps).toBe(opts.steps);
  expect(stats.fullSteps).toBe(ref.fullSteps);
  expect(stats.positionsRead).toBe(ref.positionsRead);
  // The recall statistic is computed only when the policy asks for it (bench, CLI); the product path skips it.
  if ((policy.kind === 'recycled' || policy.kind === 'snapkv') && policy.measureRecall) {
    expect(stats.recallSteps).toBe(ref.recall.length);
    const refRecall = ref.recall.reduce((a, r) => a + r.topK, 0);
    const refRecallAll = ref.recall.reduce((a, r) => a + r.withAppended, 0);
    expect(stats.recallTopKSum).toBeCloseTo(refRecall, 4);
    expect(stats.recallWithAppendedSum).toBeCloseTo(refRecallAll, 4);
  } else {
    expect(stats.recallSteps).toBe(0);
    expect(stats.recallTopKSum).toBe(0);
  }
  attn.destroy();
  return { flags, stats, ref };
}

describe('decode attention policies on the GPU vs the layer simulation', async () => {
  const ctx = await testGpu();
  for (const dtype of kvDtypes(ctx)) {
    test(`${dtype} recycled, fixed stride 3, K = 24`, async () => {
      const policy: AttentionPolicy = { kind: 'recycled', k: { count: 24 }, stride: 3, measureRecall: true };
      const { flags, stats } = await runPolicy(ctx, dtype, policy, { promptLen: 201, steps: 7, seed: 11 });
      expect(flags).toEqual([false, false, true, false, false, true, false]);
      // Recycled steps attend K: 24 selected (minus one per token decoded since the full step) + the decoded ones.
      expect(stats.positionsRead).toBe(5 * 25 + (204 + 207));
      expect(stats.recallSteps).toBe(2);
      expect(stats.recallTopKSum / 2).toBeGreaterThan(0);
      expect(stats.recallTopKSum / 2).toBeLessThan(1);
    });

    test(`${dtype} recycled, fixed stride 3, K = 24, the scalars in one shared uniform buffer (as in the engine)`, async () => {
      const policy: AttentionPolicy = { kind: 'recycled', k: { count: 24 }, stride: 3, measureRecall: true };
      const { flags } = await runPolicy(ctx, dtype, policy, { promptLen: 201, steps: 7, seed: 11, sharedParams: true });
      expect(flags).toEqual([false, false, true, false, false, true, false]);
    });

    test(`${dtype} recycled, dynamic (qc 1, sim 0.9), K = L/8, no stride`, async () => {
      const policy: AttentionPolicy = { kind: 'recycled', k: { fraction: 1 / 8 }, dynamic: { qc: 1, sim: 0.9 } };
      const { flags } = await runPolicy(ctx, dtype, policy, { promptLen: 300, steps: 8, seed: 21 });
      expect(flags.some((f) => f)).toBe(true); // the drifting queries trigger full steps...
      expect(flags.some((f) => !f)).toBe(true); // ...and the close ones do not
    });

    test(`${dtype} recycled, dynamic check every 2 steps + stride 5`, async () => {
      const policy: AttentionPolicy = {
        kind: 'recycled',
        k: { count: 40 },
        stride: 5,
        dynamic: { qc: 2, sim: 0.9 },
        measureRecall: true,
      };
      await runPolicy(ctx, dtype, policy, { promptLen: 257, steps: 9, seed: 31 });
    });

    test(`${dtype} streaming: 4 sinks + window, full while kvLen <= K`, async () => {
      const policy: AttentionPolicy = { kind: 'streaming', k: { count: 20 } };
      const { flags } = await runPolicy(ctx, dtype, policy, { promptLen: 17, steps: 8, seed: 41 });
      expect(flags).toEqual([true, true, true, false, false, false, false, false]);
    });

    test(`${dtype} snapkv: prefill top-K, never refreshed`, async () => {
      const policy: AttentionPolicy = { kind: 'snapkv', k: { fraction: 0.1 } };
      const { stats } = await runPolicy(ctx, dtype, policy, { promptLen: 333, steps: 6, seed: 51 });
      expect(stats.fullSteps).toBe(0);
      expect(stats.positionsRead).toBe(6 * 33 + (1 + 2 + 3 + 4 + 5 + 6));
    });

    test(`${dtype} full policy`, async () => {
      const { stats } = await runPolicy(ctx, dtype, { kind: 'full' }, { promptLen: 99, steps: 3, seed: 61 });
      expect(stats.fullSteps).toBe(3);
    });
  }

  test('K >= L: recycled steps give the full-attention output', async () => {
    const policy: AttentionPolicy = { kind: 'recycled', k: { count: 100_000 }, stride: 50 };
    const { flags, ref } = await runPolicy(ctx, 'f32', policy, { promptLen: 150, steps: 4, seed: 71 });
    expect(flags).toEqual([false, false, false, false]);
    expect(ref.selection[0].length).toBe(150);
  });

  test('bad policies get specific errors', () => {
    const layout = { dtype: 'f32' as const, kvHeads, headDim, capacity: 16 };
    const b = storageBuffer(ctx, 4096);
    const make = (policy: AttentionPolicy) =>
      createDecodeAttention(ctx, { layout, numHeads, k: b, v: b, q: b, out: b, policy });
    expect(() => make({ kind: 'recycled', k: { count: 0 }, stride: 3 })).toThrow(/k.count/);
    expect(() => make({ kind: 'recycled', k: { fraction: 1.5 }, stride: 3 })).toThrow(/k.fraction/);
    expect(() => make({ kind: 'recycled', k: { count: 4 }, stride: 0 })).toThrow(/stride/);
    expect(() => make({ kind: 'streaming', k: { count: 4 } })).toThrow(/exceed sinks/);
    const ok = make({ kind: 'full' });
    const enc = ctx.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    expect(() => ok.encodeStep(pass, { kvLen: 17, step: 1 })).toThrow(/capacity/);
    expect(() => ok.encodeStep(pass, { kvLen: 3, step: 0 })).toThrow(/step/);
    pass.end();
  });
});
