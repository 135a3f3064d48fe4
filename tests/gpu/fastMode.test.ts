// Fast mode (Recycled Attention) as a code path of the engine: equivalences with full attention that must hold
// exactly, and retrieval on the trained retrieval-llama fixture, where the needle must be found far back.

import { describe, expect, test } from 'vitest';
import { GpuModel } from '../../core/engine/gpuModel';
import { GREEDY_SAMPLING } from '../../core/engine/runner';
import type { AttentionPolicy } from '../../core/engine/types';
import { loadModel } from '../../core/model/load';
import { DirSource } from '../../core/node/dirSource';
import { retrievalEvalSet } from '../../core/testing/retrievalTask';
import { testGpu } from './setup';

/** Decodes `steps` greedy tokens under `policy` after a prefill of all but the last prompt token (done by the
 * caller once per prompt: decoding only appends after the prompt, so every policy starts from the same cache). */
async function decode(model: GpuModel, prompt: number[], policy: AttentionPolicy, steps: number) {
  model.beginGeneration(policy);
  const tokens: number[] = [];
  const logits: Float32Array[] = [];
  let id = prompt[prompt.length - 1];
  for (let s = 0; s < steps; s++) {
    id = await model.decodeStep(id, prompt.length - 1 + s, GREEDY_SAMPLING, s);
    tokens.push(id);
    logits.push(await model.readLogits());
  }
  return { tokens, logits, stats: await model.attentionStats() };
}

function maxAbsDiff(a: Float32Array[], b: Float32Array[]): number {
  let m = 0;
  a.forEach((x, i) => {
    for (let j = 0; j < x.length; j++) m = Math.max(m, Math.abs(x[j] - b[i][j]));
  });
  return m;
}

describe('fast mode equivalences (stories260k, 300-token prompt)', () => {
  const prompt = [1, ...Array.from({ length: 299 }, (_, i) => 3 + ((i * 101) % 500))];

  test('K >= context and S = 1 both equal full attention', async () => {
    const ctx = await testGpu();
    const m = await loadModel(new DirSource('tests/fixtures/stories260k'));
    const model = await GpuModel.create(ctx, m.config, m.weights, { contextWindow: 512 });
    try {
      await model.prefill(prompt.slice(0, -1), 0);
      const full = await decode(model, prompt, { kind: 'full' }, 24);
      const bigK = await decode(model, prompt, { kind: 'recycled', k: { count: 512 }, stride: 10 }, 24);
      const everyStep = await decode(model, prompt, { kind: 'recycled', k: { count: 16 }, stride: 1 }, 24);
      // Same positions, a different order of summation (gathered index list vs contiguous): float-level equality.
      expect(bigK.tokens).toEqual(full.tokens);
      expect(maxAbsDiff(bigK.logits, full.logits)).toBeLessThan(1e-3);
      expect(everyStep.tokens).toEqual(full.tokens);
      expect(maxAbsDiff(everyStep.logits, full.logits)).toBeLessThan(1e-3);
      // And the recycled runs really took recycled steps.
      expect(bigK.stats?.fullStepsPerLayer.every((n) => n < 24)).toBe(true);
      expect(everyStep.stats?.fullStepsPerLayer.every((n) => n >= 23)).toBe(true);
      // A small K with a long stride does change the computation (the test above can fail).
      const sparse = await decode(model, prompt, { kind: 'recycled', k: { count: 8 }, stride: 50 }, 24);
      expect(maxAbsDiff(sparse.logits, full.logits)).toBeGreaterThan(1e-3);
    } finally {
      model.dispose();
    }
  });
});

describe('retrieval: the needle lies outside a StreamingLLM window of the same K', () => {
  for (const length of [512, 1024]) {
    test(`L=${length}, K=L/8: full and recycled retrieve, streaming cannot`, async () => {
      const ctx = await testGpu();
      const m = await loadModel(new DirSource('tests/fixtures/retrieval-llama'));
      const model = await GpuModel.create(ctx, m.config, m.weights, { contextWindow: length + 8 });
      const k = { count: length / 8 };
      const policies: Record<string, AttentionPolicy> = {
        full: { kind: 'full' },
        recycled: { kind: 'recycled', k, stride: 10 },
        streaming: { kind: 'streaming', k },
      };
      // Needles at depth <= 0.7 lie outside the window of the K-4 most recent positions.
      const prompts = retrievalEvalSet(length, 5, 2026).filter((p) => p.depth <= 0.7);
      const correct: Record<string, number> = { full: 0, recycled: 0, streaming: 0 };
      try {
        for (const p of prompts) {
          await model.prefill(p.ids.slice(0, -1), 0);
          for (const [name, policy] of Object.entries(policies)) {
            const { tokens } = await decode(model, p.ids, policy, 4);
            if (tokens.join() === p.answer.join()) correct[name]++;
          }
        }
      } finally {
        model.dispose();
      }
      expect(prompts.length).toBe(4);
      expect(correct.full).toBeGreaterThanOrEqual(3);
      expect(correct.recycled).toBeGreaterThanOrEqual(correct.full);
      expect(correct.streaming).toBe(0);
    });
  }
});
