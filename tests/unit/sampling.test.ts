// The sampling reference is the spec the GPU kernel is tested against, so its semantics are checked here by hand.
import { describe, expect, test } from 'vitest';
import { samplingUniform, validateSamplingParams } from '../../kernels/sampling/sampling';
import { orderedKey, pcgHash, sampleReference, samplingRandom } from '../../kernels/sampling/sampling.reference';

const params = { temperature: 1, topK: 0, topP: 1, seed: 7, step: 0 };

test('orderedKey preserves float order, including negatives, -0 < +0 and infinities', () => {
  const values = [Number.NEGATIVE_INFINITY, -1e30, -2.5, -1e-30, -0, 0, 1e-30, 3, 1e30, Number.POSITIVE_INFINITY];
  const keys = values.map(orderedKey);
  for (let i = 1; i < keys.length; i++) expect(keys[i]).toBeGreaterThan(keys[i - 1]);
});

test('pcgHash: PCG-RXS-M-XS hash (pcg(0) = 129708002), distinct values over (seed, step, index)', () => {
  expect(pcgHash(0)).toBe(129708002);
  const seen = new Set<number>();
  for (let i = 0; i < 10000; i++) seen.add(samplingRandom(1, 2, i));
  expect(seen.size).toBe(10000);
  expect(samplingRandom(1, 2, 3)).not.toBe(samplingRandom(1, 3, 3));
  expect(samplingRandom(1, 2, 3)).not.toBe(samplingRandom(2, 2, 3));
});

describe('sampleReference semantics', () => {
  test('greedy: temperature 0 or topK 1 -> argmax, ties -> lowest index', () => {
    const logits = new Float32Array([1, 5, 2, 5, 5]);
    expect(sampleReference(logits, { ...params, temperature: 0 }).id).toBe(1);
    expect(sampleReference(logits, { ...params, topK: 1, seed: 99 }).id).toBe(1);
  });

  test('top-k keeps the k largest, and every tie at the cut', () => {
    const logits = new Float32Array([0, 4, 3, 3, 9, -1]);
    expect(sampleReference(logits, { ...params, topK: 2 }).kept).toEqual([1, 4]);
    expect(sampleReference(logits, { ...params, topK: 3 }).kept).toEqual([1, 2, 3, 4]);
    expect(sampleReference(logits, { ...params, topK: 6 }).kept).toEqual([0, 1, 2, 3, 4, 5]);
  });

  test('top-p keeps the smallest top set whose probability reaches p (after top-k)', () => {
    // probabilities 0.5, 0.3, 0.15, 0.05
    const logits = new Float32Array([0.5, 0.3, 0.15, 0.05].map(Math.log));
    expect(sampleReference(logits, { ...params, topP: 0.5 }).kept).toEqual([0]);
    expect(sampleReference(logits, { ...params, topP: 0.7 }).kept).toEqual([0, 1]);
    expect(sampleReference(logits, { ...params, topP: 0.9 }).kept).toEqual([0, 1, 2]);
    expect(sampleReference(logits, { ...params, topP: 0.99 }).kept).toEqual([0, 1, 2, 3]);
    expect(sampleReference(logits, { ...params, topP: 1e-9 }).kept).toEqual([0]);
    // after top-k 2 the kept mass is 0.8: 0.7 of it is 0.56 > 0.5, so both stay
    expect(sampleReference(logits, { ...params, topK: 2, topP: 0.7 }).kept).toEqual([0, 1]);
    expect(sampleReference(logits, { ...params, topK: 2, topP: 0.6 }).kept).toEqual([0]);
  });

  test('temperature reshapes top-p: T = 0.5 squares the probabilities before renormalising', () => {
    // p = 0.5, 0.3, 0.2 -> p^2 normalised = 0.658, 0.237, 0.105
    const logits = new Float32Array([0.5, 0.3, 0.2].map(Math.log));
    expect(sampleReference(logits, { ...params, topP: 0.85 }).kept).toEqual([0, 1, 2]);
    expect(sampleReference(logits, { ...params, temperature: 0.5, topP: 0.85 }).kept).toEqual([0, 1]);
  });

  test('draws follow softmax(logits / T) over the kept set (chi-square over 20000 steps)', () => {
    const logits = new Float32Array([2, 1, 0.5, 0, -1, -3, 1.5]);
    const T = 0.8;
    const topK = 5; // drops -1 and -3
    const counts = new Array(logits.length).fill(0);
    const steps = 20000;
    for (let step = 0; step < steps; step++)
      counts[sampleReference(logits, { ...params, temperature: T, topK, step }).id]++;
    expect(counts[4] + counts[5]).toBe(0);
    const kept = [0, 1, 2, 3, 6];
    const z = kept.reduce((s, i) => s + Math.exp(logits[i] / T), 0);
    let chi2 = 0;
    for (const i of kept) {
      const expected = (steps * Math.exp(logits[i] / T)) / z;
      chi2 += (counts[i] - expected) ** 2 / expected;
    }
    expect(chi2).toBeLessThan(20); // 4 degrees of freedom: P(chi2 > 18.5) = 0.001
  });
});

test('sampling parameters are validated with specific errors, and mapped to the uniform', () => {
  expect(() => validateSamplingParams({ ...params, temperature: -1 })).toThrow(/temperature/);
  expect(() => validateSamplingParams({ ...params, topK: 1.5 })).toThrow(/topK/);
  expect(() => validateSamplingParams({ ...params, topP: 0 })).toThrow(/topP/);
  expect(() => validateSamplingParams({ ...params, topP: 1.5 })).toThrow(/topP/);
  expect(() => validateSamplingParams({ ...params, step: -1 })).toThrow(/step/);
  expect(() => validateSamplingParams({ ...params, seed: 2 ** 32 })).toThrow(/seed/);
  const u = new Uint32Array(samplingUniform(100, { ...params, topK: 100, topP: 1 }));
  expect([u[0], u[1], u[2], u[3]]).toEqual([100, 1, 0, 0]); // top-k >= vocab and top-p 1 are off
  expect(new Uint32Array(samplingUniform(100, { ...params, temperature: 0 }))[1]).toBe(0);
  expect(new Uint32Array(samplingUniform(100, { ...params, topK: 1 }))[1]).toBe(0);
});
