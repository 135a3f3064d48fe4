// Fast mode's break-even (core/engine/fastMode.ts): the bytes model's predicted step-time ratio, worked out by hand
// on small numbers, and the decision that runs full attention (and says why) where fast mode cannot pay off.
import { describe, expect, test } from 'vitest';
import { type DecodeBytesModel, decideFastMode, predictedStepRatio } from '../../core/engine/fastMode';

// 1000 bytes of weights, 10 bytes per attended position, 2 per position for a refresh.
const M: DecodeBytesModel = { weightBytes: 1000, attentionBytesPerPosition: 10, refreshBytesPerPosition: 2 };

describe('bytes model', () => {
  test('recycled: one refresh step and stride-1 steps over K + j positions, over stride full steps', () => {
    // L = 800, K = 100, S = 4: refresh = 1000 + 8000 + 1600; recycled j=1..3 read 101..103 positions.
    const fast = 1000 + 8000 + 1600 + (1000 + 1010) + (1000 + 1020) + (1000 + 1030);
    expect(predictedStepRatio(M, { kind: 'recycled', k: { count: 100 }, stride: 4 }, 800)).toBeCloseTo(
      fast / (4 * 9000),
      12,
    );
    // K as a fraction resolves at the context length.
    expect(predictedStepRatio(M, { kind: 'recycled', k: { fraction: 0.125 }, stride: 4 }, 800)).toBeCloseTo(
      fast / (4 * 9000),
      12,
    );
  });

  test('dynamic: a share of layer-steps refresh (prior one half), the rest read K positions', () => {
    // L = 800, K = 100: refresh = 1000 + 8000 + 1600 = 10600, recycled = 1000 + 1000; full = 9000.
    const dynamic = { kind: 'recycled' as const, k: { count: 100 }, dynamic: { qc: 1 } };
    expect(predictedStepRatio(M, dynamic, 800)).toBeCloseTo((0.5 * 10600 + 0.5 * 2000) / 9000, 12);
    expect(predictedStepRatio(M, dynamic, 800, 0.25)).toBeCloseTo((0.25 * 10600 + 0.75 * 2000) / 9000, 12);
  });

  test('streaming / SnapKV read K positions; full is 1', () => {
    expect(predictedStepRatio(M, { kind: 'streaming', k: { count: 100 } }, 800)).toBeCloseTo(2000 / 9000, 12);
    expect(predictedStepRatio(M, { kind: 'snapkv', k: { count: 100 } }, 800)).toBeCloseTo(2000 / 9000, 12);
    expect(predictedStepRatio(M, { kind: 'full' }, 800)).toBe(1);
  });
});

describe('break-even decision', () => {
  const recycled = { kind: 'recycled' as const, k: { fraction: 0.125 }, stride: 10 };

  test('weights dominate (short context): full attention runs, with the reason', () => {
    const d = decideFastMode({ decodeBytes: M }, recycled, 8, 8);
    expect(d.active).toBe(false);
    expect(d.policy).toEqual({ kind: 'full' });
    expect(d.ratio).toBeGreaterThan(0.9);
    expect(d.reason).toMatch(/break-even 0\.9/);
  });

  test('attention dominates (long context): the requested policy runs', () => {
    const d = decideFastMode({ decodeBytes: M }, recycled, 20000, 100);
    expect(d.active).toBe(true);
    expect(d.policy).toBe(recycled);
    expect(d.ratio).toBeLessThan(0.5);
  });

  test('forced on: runs the policy below the break-even, and says so', () => {
    const d = decideFastMode({ decodeBytes: M }, recycled, 8, 8, false);
    expect(d.active).toBe(true);
    expect(d.policy).toBe(recycled);
    expect(d.reason).toMatch(/forced/);
  });

  test('full requested: not active; a backend without a bytes model runs what was asked', () => {
    expect(decideFastMode({ decodeBytes: M }, { kind: 'full' }, 8, 8).active).toBe(false);
    const none = decideFastMode({ decodeBytes: undefined }, recycled, 8, 8);
    expect(none).toMatchObject({ active: true, policy: recycled, ratio: null });
  });
});
