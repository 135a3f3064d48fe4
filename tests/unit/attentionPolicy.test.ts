// Host-side policy rules (K budget, schedules, validation), stats summary, and the schedule/top-K references.
import { describe, expect, test } from 'vitest';
import { summarizeAttentionStats } from '../../core/attention/decodeAttention';
import {
  isDynamicCheckStep,
  isStrideFullStep,
  maxK,
  resolveK,
  selectsTopK,
  validateAttentionPolicy,
} from '../../core/attention/policy';
import {
  referenceIsFullStep,
  referenceMeanQueryCosine,
  referenceRecall,
  referenceStreamingPositions,
} from '../../kernels/schedule/schedule.reference';
import { referenceGroupMax, referenceMaxPool, referenceTopK } from '../../kernels/topk/topk.reference';

describe('K budget', () => {
  test('count and fraction, clamped to [min, kvLen]', () => {
    expect(resolveK({ count: 64 }, 1000)).toBe(64);
    expect(resolveK({ count: 64 }, 10)).toBe(10);
    expect(resolveK({ fraction: 1 / 8 }, 512)).toBe(64);
    expect(resolveK({ fraction: 1 / 8 }, 7)).toBe(1);
    expect(resolveK({ fraction: 0.01 }, 100, 5)).toBe(5);
    expect(resolveK({ fraction: 0.01 }, 3, 5)).toBe(3);
    expect(maxK({ fraction: 0.125 }, 32768)).toBe(4096);
    expect(maxK({ count: 100_000 }, 4096)).toBe(4096);
  });
});

describe('schedules', () => {
  test('fixed stride: every S-th decode step (step 1 = first after prefill)', () => {
    const full = Array.from({ length: 12 }, (_, i) => isStrideFullStep(5, i + 1));
    expect(full.map((f, i) => (f ? i + 1 : 0)).filter(Boolean)).toEqual([5, 10]);
    expect(isStrideFullStep(1, 7)).toBe(true);
  });
  test('dynamic check cadence', () => {
    expect([1, 2, 3, 4, 5, 6].filter((s) => isDynamicCheckStep(3, s))).toEqual([3, 6]);
  });
  test('full-step rule', () => {
    const base = { forceFull: false, seeded: true, checkDynamic: true, cosine: 0.8, sim: 0.85 };
    expect(referenceIsFullStep(base)).toBe(true);
    expect(referenceIsFullStep({ ...base, cosine: 0.9 })).toBe(false);
    expect(referenceIsFullStep({ ...base, checkDynamic: false })).toBe(false);
    expect(referenceIsFullStep({ ...base, checkDynamic: false, seeded: false })).toBe(true);
    expect(referenceIsFullStep({ ...base, cosine: 0.99, forceFull: true })).toBe(true);
  });
  test('mean-query cosine', () => {
    // Two heads whose mean is (1, 1); saved (1, 0): cos = 1/sqrt(2).
    const { cosine, mean } = referenceMeanQueryCosine([2, 0, 0, 2], [1, 0], 2, 2);
    expect(Array.from(mean)).toEqual([1, 1]);
    expect(cosine).toBeCloseTo(Math.SQRT1_2, 12);
  });
});

describe('policy validation', () => {
  test('specific errors', () => {
    expect(() => validateAttentionPolicy({ kind: 'recycled', k: { count: 2.5 }, stride: 10 })).toThrow(/k.count/);
    expect(() => validateAttentionPolicy({ kind: 'snapkv', k: { fraction: 0 } })).toThrow(/k.fraction/);
    expect(() =>
      validateAttentionPolicy({ kind: 'recycled', k: { count: 8 }, stride: 10, dynamic: { qc: 0, sim: 0.9 } }),
    ).toThrow(/qc/);
    expect(() =>
      validateAttentionPolicy({ kind: 'recycled', k: { count: 8 }, stride: 10, dynamic: { qc: 5, sim: 2 } }),
    ).toThrow(/sim/);
    expect(() => validateAttentionPolicy({ kind: 'streaming', k: { count: 3 }, sinks: 4 })).toThrow(/sinks/);
    expect(() => validateAttentionPolicy({ kind: 'streaming', k: { count: 5 }, sinks: -1 })).toThrow(/sinks/);
    expect(() => validateAttentionPolicy({ kind: 'full' })).not.toThrow();
    expect(selectsTopK({ kind: 'snapkv', k: { count: 3 } })).toBe(true);
    expect(selectsTopK({ kind: 'streaming', k: { count: 9 } })).toBe(false);
  });
});

describe('references', () => {
  test('streaming positions: sinks + recent window, no duplicates', () => {
    expect(referenceStreamingPositions(20, 8, 4)).toEqual([0, 1, 2, 3, 16, 17, 18, 19]);
    expect(referenceStreamingPositions(6, 8, 4)).toEqual([0, 1, 2, 3, 4, 5]);
  });
  test('group max, max-pool (same padding), top-K ties to lower position', () => {
    const agg = referenceGroupMax(
      [
        [0.1, 0.5, 0.2],
        [0.3, 0.1, 0.1],
        [1, 2, 3],
        [3, 2, 1],
      ],
      2,
    );
    expect(Array.from(agg[0])).toEqual([0.3, 0.5, 0.2]);
    expect(Array.from(agg[1])).toEqual([3, 2, 3]);
    const pooled = referenceMaxPool([0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0]);
    expect(Array.from(pooled)).toEqual([0, 9, 9, 9, 9, 9, 9, 9, 0, 0, 0, 0]);
    expect(referenceTopK([1, 3, 3, 2, 3], 2)).toEqual([1, 2]);
    expect(referenceTopK([1, 3, 3, 2, 3], 9)).toEqual([0, 1, 2, 3, 4]);
  });
  test('recall: mean over heads of mass on the previous selection (and with appended positions)', () => {
    const probs = [
      [0.5, 0.25, 0.125, 0.125],
      [0.1, 0.2, 0.3, 0.4],
    ];
    const r = referenceRecall(probs, [[0]], 3);
    expect(r.topK).toBeCloseTo((0.5 + 0.1) / 2, 12);
    expect(r.withAppended).toBeCloseTo((0.625 + 0.5) / 2, 12);
  });
});

describe('stats summary', () => {
  test('means over layers and steps; recall null without measurements', () => {
    const layer = {
      steps: 4,
      fullSteps: 1,
      positionsRead: 1000,
      positionsFull: 4000,
      recallSteps: 1,
      recallTopKSum: 0.9,
      recallWithAppendedSum: 0.95,
    };
    const s = summarizeAttentionStats({ kind: 'recycled', k: { count: 8 }, stride: 4 }, [
      layer,
      { ...layer, fullSteps: 2, positionsRead: 2000, recallSteps: 2, recallTopKSum: 1.5 },
    ]);
    expect(s.fullStepsPerLayer).toEqual([1, 2]);
    expect(s.meanPositionsRead).toBe(375);
    expect(s.meanPositionsFull).toBe(1000);
    expect(s.attentionMassRecall).toBeCloseTo(0.8, 12);
    expect(s.attentionMassRecallAttended).toBeCloseTo((0.95 + 0.95) / 3, 12);
    // The last prompt token's step is full in every layer and counts in the layer-steps and strides.
    expect(s.fullLayerSteps).toBe(2 + 3);
    expect(s.effectiveStridePerLayer).toEqual([5 / 2, 5 / 3]);
    const none = summarizeAttentionStats({ kind: 'full' }, [{ ...layer, recallSteps: 0 }]);
    expect(none.attentionMassRecall).toBeNull();
  });
});
