// Teacher-forced scoring on the plain-TS reference backend, checked against the numpy reference's predictions for the
// multi-query task (tests/fixtures/retrieval-llama/multiquery_cases.jsonl, made by multiquery.py), and the layer
// schedule rules of the paper (displacement at K, K from the prompt length, dynamic without a stride cap).
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import {
  attendedSelectionCount,
  defaultDynamicThreshold,
  resolveAttentionPolicy,
  validateAttentionPolicy,
} from '../../core/attention/policy';
import { ReferenceLayerSchedule } from '../../core/attention/schedule.reference';
import { logSoftmaxAt, validateScoreInput } from '../../core/engine/scoring';
import type { AttentionPolicy } from '../../core/engine/types';
import { createNodeEngine } from '../../core/node/nodeEngine';
import {
  MULTI_QUERY_POLICIES,
  multiQueryCases,
  multiQueryScore,
  parseMultiQueryCases,
} from '../../core/testing/multiQueryTask';

const FIXTURE = 'tests/fixtures/retrieval-llama';

describe('scoring helpers', () => {
  test('log-softmax and input checks', () => {
    expect(logSoftmaxAt([0, 0, 0, 0], 2)).toBeCloseTo(Math.log(1 / 4), 12);
    expect(logSoftmaxAt([1000, 0], 0)).toBeCloseTo(0, 12);
    expect(() => validateScoreInput({ promptIds: [], continuationIds: [1] }, 10, 100)).toThrow(/prompt_ids must be/);
    expect(() => validateScoreInput({ promptIds: [1], continuationIds: [10] }, 10, 100)).toThrow(
      /continuation_ids\[0\] = 10 is not a token id/,
    );
    expect(() => validateScoreInput({ promptIds: [1, 2, 3], continuationIds: [4, 5] }, 10, 3)).toThrow(
      /4 positions exceed the context window \(3\)/,
    );
  });
});

describe('paper schedule rules (layer simulation)', () => {
  const dims = { numHeads: 2, kvHeads: 1, headDim: 2 };
  /** Probabilities [numHeads][kvLen] peaked on the given positions (decreasing weights). */
  const peaked = (kvLen: number, peaks: number[]) =>
    Array.from({ length: 2 }, () => {
      const row = new Array(kvLen).fill(1e-6);
      peaks.forEach((p, i) => {
        row[p] = 1 - i * 0.1;
      });
      return row;
    });

  test('a recycled step attends K: each decoded token displaces the weakest selected position', () => {
    const s = new ReferenceLayerSchedule({ kind: 'recycled', k: { count: 21 }, stride: 100 }, dims);
    const q = [1, 0, 1, 0];
    expect(s.plan(0, 100, q).full).toBe(true);
    // Peaks at 10 (strongest), 50, 90: the max-pool (kernel 7) spreads each over 7 positions; 21 = 3 x 7 are kept,
    // strongest first, ties to the lower position.
    s.commitFull(peaked(100, [10, 50, 90]), 100);
    const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);
    expect(s.selection[0]).toEqual([...range(7, 13), ...range(47, 53), ...range(87, 93)]);
    const attended = (step: number) => (s.plan(step, 100 + step, q).positions?.[0] ?? []).slice().sort((a, b) => a - b);
    // Step 1 at kvLen 101: nothing decoded since the full step but the current token: K selected + itself.
    expect(attended(1)).toEqual([...range(7, 13), ...range(47, 53), ...range(87, 93), 100]);
    // Step 3: two tokens decoded since (100, 101) displace the two weakest (93, then 92).
    expect(attended(3)).toEqual([...range(7, 13), ...range(47, 53), ...range(87, 91), 100, 101, 102]);
    // Step 30: 29 decoded tokens displace all 21.
    expect(attended(30)).toEqual(range(100, 129));
    // SnapKV keeps its selection and every token.
    expect(attendedSelectionCount({ kind: 'snapkv', k: { count: 3 } }, 3, 3, 100, 105)).toBe(3);
    // A K above the prompt length displaces nothing until the set reaches K.
    expect(attendedSelectionCount({ kind: 'recycled', k: { count: 8 }, stride: 9 }, 5, 8, 5, 9)).toBe(5);
    expect(attendedSelectionCount({ kind: 'recycled', k: { count: 8 }, stride: 9 }, 5, 8, 5, 11)).toBe(3);
  });

  test('a fractional K is taken from the prompt length', () => {
    const s = new ReferenceLayerSchedule({ kind: 'streaming', k: { fraction: 1 / 8 } }, dims);
    s.plan(0, 64, [1, 0, 1, 0]);
    expect(s.k).toBe(8);
    // At kvLen 80 a K recomputed from the length would be 10; it stays 8: 4 sinks + 4 recent.
    expect(s.plan(16, 80, [1, 0, 1, 0]).positions?.[0]).toEqual([0, 1, 2, 3, 76, 77, 78, 79]);
  });

  test('dynamic: full steps only from the cosine check (no stride cap), query compared to the last full one', () => {
    const policy: AttentionPolicy = { kind: 'recycled', k: { count: 2 }, dynamic: { qc: 2, sim: 0.85 } };
    const s = new ReferenceLayerSchedule(policy, dims);
    const same = [1, 0, 1, 0];
    const turned = [0, 1, 0, 1];
    s.plan(0, 50, same);
    s.commitFull(peaked(50, [5, 40]), 50);
    const fulls: number[] = [];
    for (let step = 1; step <= 40; step++) {
      const q = step === 25 || step === 26 ? turned : same;
      if (s.plan(step, 50 + step, q).full) fulls.push(step);
    }
    // Step 25 is not a check step (qc 2); step 26 is, and its query turned away (cosine 0 < 0.85). The layer then
    // saved the turned query, so step 28 (back to the first direction) refreshes again.
    expect(fulls).toEqual([26, 28]);
  });

  test('threshold by model family; a given threshold wins; a policy needs a stride or a dynamic schedule', () => {
    expect(defaultDynamicThreshold('llama')).toBe(0.85);
    expect(defaultDynamicThreshold('qwen2')).toBe(0.95);
    expect(defaultDynamicThreshold('qwen3')).toBe(0.95);
    const dyn: AttentionPolicy = { kind: 'recycled', k: { count: 8 }, dynamic: { qc: 5 } };
    expect(resolveAttentionPolicy(dyn, 'qwen2')).toEqual({ ...dyn, dynamic: { qc: 5, sim: 0.95 } });
    const given: AttentionPolicy = { kind: 'recycled', k: { count: 8 }, dynamic: { qc: 5, sim: 0.5 } };
    expect(resolveAttentionPolicy(given, 'llama')).toEqual(given);
    expect(() => validateAttentionPolicy({ kind: 'recycled', k: { count: 8 } })).toThrow(/needs a stride/);
    expect(() => new ReferenceLayerSchedule(dyn, dims)).toThrow(/unresolved/);
  });
});

describe('teacher-forced scoring on the reference backend vs the numpy reference (multi-query task)', () => {
  test('first 1K case: every policy gives numpy predictions and full layer-steps; the prompt is prefilled once', async () => {
    const c = parseMultiQueryCases(readFileSync(`${FIXTURE}/multiquery_cases.jsonl`, 'utf8'))[0];
    expect(c.L).toBe(1024);
    const engine = await createNodeEngine({ backend: 'reference' });
    await engine.load({ kind: 'dir', path: FIXTURE }, { contextWindow: 1100 });
    try {
      for (const [i, [name, policy]] of Object.entries(MULTI_QUERY_POLICIES).entries()) {
        const r = await engine.score(
          { promptIds: c.promptIds, continuationIds: c.continuationIds },
          { attention: policy },
        );
        expect(r.predictions, name).toEqual(c.numpy[name].predictions);
        // numpy counts the layer-steps that refreshed a selection (its full/streaming rows are 0).
        if (name !== 'full' && name !== 'streaming')
          expect(r.stats.fullLayerSteps, name).toBe(c.numpy[name].fullLayerSteps);
        expect(r.logprobs).toHaveLength(c.continuationIds.length);
        expect(r.nll).toBeCloseTo(-r.logprobs.reduce((a, b) => a + b, 0) / r.logprobs.length, 12);
        expect(r.stats.restoredTokens).toBe(i === 0 ? 0 : c.promptIds.length - 1);
      }
    } finally {
      await engine.unload();
    }
  }, 120_000);

  test('bad input: a specific error, and the engine still scores afterwards', async () => {
    const engine = await createNodeEngine({ backend: 'reference' });
    await engine.load({ kind: 'dir', path: FIXTURE }, { contextWindow: 64 });
    try {
      await expect(engine.score({ promptIds: [1, 44, 3, 5], continuationIds: [99] })).rejects.toThrow(
        /continuation_ids\[0\] = 99/,
      );
      const r = await engine.score({ promptIds: [1, 44, 3, 5], continuationIds: [20, 21] });
      expect(r.predictions).toHaveLength(2);
      expect(r.stats.fullLayerSteps).toBe(2 * 2);
    } finally {
      await engine.unload();
    }
  });
});

test('the multi-query cases reproduce the numpy figures of multiquery_results.json (the GPU test compares to them)', () => {
  const cases = parseMultiQueryCases(readFileSync(`${FIXTURE}/multiquery_cases.jsonl`, 'utf8'));
  const results = JSON.parse(readFileSync(`${FIXTURE}/multiquery_results.json`, 'utf8'));
  for (const L of [1024, 2048]) {
    const atL = cases.filter((c) => c.L === L);
    expect(atL).toHaveLength(results[L].n);
    for (const name of Object.keys(MULTI_QUERY_POLICIES)) {
      const hits = atL.flatMap((c) => multiQueryScore(c, c.numpy[name].predictions).hits);
      const acc = hits.filter(Boolean).length / hits.length;
      expect(acc, `${L} ${name}`).toBeCloseTo(results[L].summary[name].token_acc, 3);
    }
  }
});

test('generated multi-query cases follow the task format', () => {
  const [c] = multiQueryCases(512, 1, 7);
  expect(c.promptIds).toHaveLength(512);
  expect(c.promptIds[0]).toBe(1);
  expect(c.promptIds.at(-2)).toBe(3);
  expect(c.continuationIds).toHaveLength(22);
  expect(c.scored).toEqual([0, 1, 2, 3, 6, 7, 8, 9, 12, 13, 14, 15, 18, 19, 20, 21]);
  // Each query's key is in the prompt followed by the 4 values the continuation expects.
  const keys = [c.promptIds.at(-1) as number, c.continuationIds[5], c.continuationIds[11], c.continuationIds[17]];
  keys.forEach((key, q) => {
    const at = c.promptIds.indexOf(key);
    expect(c.promptIds.slice(at + 1, at + 5)).toEqual(
      c.scored.slice(4 * q, 4 * q + 4).map((i) => c.continuationIds[i]),
    );
  });
  expect(new Set(keys).size).toBe(4);
});
