import { describe, expect, test } from 'vitest';
import type { GpuContext } from '../../../kernels/gpuContext';
import { readBuffer, runPass, storageBuffer } from '../../../kernels/gpuUtil';
import { createSampler, type SamplingParams } from '../../../kernels/sampling/sampling';
import { sampleReference } from '../../../kernels/sampling/sampling.reference';
import { testGpu } from '../setup';

const QWEN_VOCAB = 151936;

/** Deterministic normal-ish logits (sum of uniforms), scaled. */
function randomLogits(n: number, seed: number, scale = 3): Float32Array {
  let s = seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (uniform() + uniform() + uniform() - 1.5) * scale;
  return out;
}

/** A sampler over a fixed logits vector; draw() runs one step and reads the id back. */
function samplerFor(ctx: GpuContext, logits: Float32Array) {
  const logitsBuf = storageBuffer(ctx, logits);
  const output = storageBuffer(ctx, 4);
  const sampler = createSampler(ctx, { logits: logitsBuf, vocab: logits.length, output });
  return {
    async draw(p: SamplingParams): Promise<number> {
      runPass(ctx, (pass) => sampler.encode(pass, p));
      return new Uint32Array(await readBuffer(ctx, output, 4))[0];
    },
    destroy() {
      logitsBuf.destroy();
      output.destroy();
    },
  };
}

const base: SamplingParams = { temperature: 1, topK: 0, topP: 1, seed: 1234, step: 0 };

describe.each([517, QWEN_VOCAB])('vocab %i', (vocab) => {
  test('greedy is the exact argmax, ties -> lowest index (temperature 0, top-k 1)', async () => {
    const ctx = await testGpu();
    const logits = randomLogits(vocab, vocab);
    // Equal maxima in different threads' strides and in the same thread's stride, the lowest not first in its stride.
    const ties = [vocab - 1, 300, 300 + 256, 44 + 512 < vocab ? 44 + 512 : 44];
    for (const i of ties) logits[i] = 20;
    const lowest = Math.min(...ties);
    const s = samplerFor(ctx, logits);
    expect(await s.draw({ ...base, temperature: 0 })).toBe(lowest);
    expect(await s.draw({ ...base, temperature: 0, topK: 50, topP: 0.5, seed: 9 })).toBe(lowest);
    expect(await s.draw({ ...base, topK: 1, seed: 77, step: 5 })).toBe(lowest);
    s.destroy();

    // All-negative logits with -Infinity entries: the max is still found.
    const negative = randomLogits(vocab, 3).map((x) => x - 100);
    negative[0] = Number.NEGATIVE_INFINITY;
    negative[vocab - 2] = -50;
    const t = samplerFor(ctx, negative);
    expect(await t.draw({ ...base, temperature: 0 })).toBe(vocab - 2);
    t.destroy();
  });

  test('tiny top-p equals greedy when the max is unique', async () => {
    const ctx = await testGpu();
    const logits = randomLogits(vocab, 11);
    logits[vocab >> 1] = 9; // the rest lie within ±4.5: a unique max
    const s = samplerFor(ctx, logits);
    for (let step = 0; step < 4; step++) expect(await s.draw({ ...base, topP: 1e-6, step })).toBe(vocab >> 1);
    s.destroy();
  });

  // Float exp/log differ between WGSL and JS by a few ulps (WGSL allows exp 3 + 2|x| ulp): only draws whose Gumbel gap
  // exceeds 1e-3 and whose top-p target is 1e-5 of the mass away from a cut boundary are compared exactly.
  test('draws equal the reference for (seed, step) wherever float rounding cannot flip them', async () => {
    const ctx = await testGpu();
    // Like an LM's output: a low tail plus a head of a few hundred likely tokens, where the top-p cuts fall.
    const logits = randomLogits(vocab, 5, 4).map((x) => x - 12);
    const head = randomLogits(Math.min(300, vocab >> 2), 6, 2);
    head.forEach((x, i) => {
      logits[(i * 7919) % vocab] = x + 2;
    });
    const configs: SamplingParams[] = [
      { ...base },
      { ...base, temperature: 0.7, topK: 50 },
      { ...base, temperature: 1.3, topP: 0.8 },
      { ...base, temperature: 0.8, topK: 40, topP: 0.95, seed: 42 },
      { ...base, temperature: 0.6, topP: 0.5, seed: 0xffffffff },
    ];
    const stepsPerConfig = vocab > 10000 ? 4 : 40;
    const s = samplerFor(ctx, logits);
    let compared = 0;
    let total = 0;
    for (const config of configs) {
      for (let step = 0; step < stepsPerConfig; step++) {
        const p = { ...config, step: step * 1000 + 3 };
        const want = sampleReference(logits, p);
        const got = await s.draw(p);
        total++;
        if (want.topPMargin > 1e-5) expect(want.kept, `${JSON.stringify(p)} kept`).toContain(got);
        if (want.drawMargin > 1e-3 && want.topPMargin > 1e-5) {
          compared++;
          expect(got, JSON.stringify(p)).toBe(want.id);
        }
      }
    }
    expect(compared).toBeGreaterThanOrEqual(0.9 * total);
    s.destroy();
  });
});

/** Chi-square of observed counts against probabilities (only the ids in probs may appear). */
function chiSquare(counts: Map<number, number>, probs: Map<number, number>, n: number): number {
  for (const id of counts.keys()) expect(probs.has(id), `id ${id} was drawn but is outside the kept set`).toBe(true);
  let chi2 = 0;
  for (const [id, p] of probs) chi2 += ((counts.get(id) ?? 0) - n * p) ** 2 / (n * p);
  return chi2;
}

async function drawCounts(ctx: GpuContext, logits: Float32Array, p: SamplingParams, n: number) {
  const s = samplerFor(ctx, logits);
  const counts = new Map<number, number>();
  for (let step = 0; step < n; step++) {
    const id = await s.draw({ ...p, step });
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  s.destroy();
  return counts;
}

describe('draw statistics match the target distribution (vocab 517)', () => {
  const vocab = 517;
  const n = 800;

  test('temperature 0.9, top-k 4: softmax over the 4 largest, nothing else', async () => {
    const ctx = await testGpu();
    const logits = randomLogits(vocab, 21, 1).map((x) => x - 5); // a tail that top-k must cut
    const top = [3, 260, 300, 516, 100];
    [2, 1.6, 1.2, 1.0, 0.5].forEach((v, i) => {
      logits[top[i]] = v;
    });
    const T = 0.9;
    const kept = top.slice(0, 4);
    const z = kept.reduce((s, i) => s + Math.exp(logits[i] / T), 0);
    const probs = new Map(kept.map((i) => [i, Math.exp(logits[i] / T) / z]));
    const counts = await drawCounts(ctx, logits, { ...base, temperature: T, topK: 4, seed: 5 }, n);
    expect(chiSquare(counts, probs, n)).toBeLessThan(20); // 3 dof: P(chi2 > 16.3) = 0.001
  });

  test('top-p 0.8 over probabilities 0.4, 0.25, 0.2, 0.1, ...: keeps the first three, renormalised', async () => {
    const ctx = await testGpu();
    const p = [0.4, 0.25, 0.2, 0.1];
    const ids = [400, 7, 129, 258];
    const logits = new Float32Array(vocab).fill(Math.log(0.05 / (vocab - 4)));
    ids.forEach((id, i) => {
      logits[id] = Math.log(p[i]);
    });
    const probs = new Map(ids.slice(0, 3).map((id, i) => [id, p[i] / 0.85]));
    const counts = await drawCounts(ctx, logits, { ...base, topP: 0.8, seed: 99 }, n);
    expect(chiSquare(counts, probs, n)).toBeLessThan(20); // 2 dof: P(chi2 > 13.8) = 0.001
  });
});

test('sampler rejects bad configuration and parameters', async () => {
  const ctx = await testGpu();
  const logits = storageBuffer(ctx, 400);
  const output = storageBuffer(ctx, 4);
  expect(() => createSampler(ctx, { logits, vocab: 101, output })).toThrow(/logits buffer/);
  expect(() => createSampler(ctx, { logits, vocab: 0, output })).toThrow(/vocab/);
  const sampler = createSampler(ctx, { logits, vocab: 100, output });
  expect(() => runPass(ctx, (pass) => sampler.encode(pass, { ...base, topP: 0 }))).toThrow(/topP/);
  logits.destroy();
  output.destroy();
});
