// The multi-query retrieval task of the trained retrieval-llama fixture (its multiquery.py): a prompt of L tokens holds
// 4 needles `k v v v v` in filler and ends with `? kA`; the continuation `vA1..vA4 ? kB vB1..vB4 ? kC .. ? kD vD1..vD4`
// is teacher-forced through decode steps and its 16 value tokens are scored. Queries B-D can only be answered if
// attention moves during decode, i.e. after a top-K refresh. Cases: the numpy reference's own (multiquery_cases.jsonl,
// with its predictions per policy), or generated here with the project's seeded RNG for other seeds.
import type { AttentionPolicy } from '../engine/types';
import { makeRng } from './fixtureModel';
import { BOS, QUERY, retrievalVocabulary, VALUE_TOKENS, zipfFiller } from './retrievalTask';

/** The policies of multiquery.py, under its names; K = L/8 of the prompt length, dynamic at the Llama threshold. */
export const MULTI_QUERY_POLICIES: Record<string, AttentionPolicy> = (() => {
  const k = { fraction: 1 / 8 };
  return {
    full: { kind: 'full' },
    snapkv: { kind: 'snapkv', k },
    'recycled S=10': { kind: 'recycled', k, stride: 10 },
    'recycled S=5': { kind: 'recycled', k, stride: 5 },
    'dynamic QC=1 s=.85': { kind: 'recycled', k, dynamic: { qc: 1, sim: 0.85 } },
    'dynamic QC=5 s=.85': { kind: 'recycled', k, dynamic: { qc: 5, sim: 0.85 } },
    streaming: { kind: 'streaming', k },
  };
})();

export interface MultiQueryCase {
  L: number;
  promptIds: number[];
  continuationIds: number[];
  /** Indices into the continuation of the 16 value tokens (4 per query). */
  scored: number[];
  /** Per policy name, when the case comes from the numpy reference: its predictions and refreshing layer-steps. */
  numpy: Record<string, { predictions: number[]; fullLayerSteps: number }>;
}

/** Parses multiquery_cases.jsonl (one JSON object a line). */
export function parseMultiQueryCases(text: string): MultiQueryCase[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const r = JSON.parse(line);
      const numpy: MultiQueryCase['numpy'] = {};
      for (const name of Object.keys(r.predictions ?? {})) {
        numpy[name] = { predictions: r.predictions[name], fullLayerSteps: r.full_layer_steps[name] };
      }
      return { L: r.L, promptIds: r.prompt_ids, continuationIds: r.continuation_ids, scored: r.scored, numpy };
    });
}

/** Token accuracy over the scored positions and, per query, whether all 4 of its value tokens were right. */
export function multiQueryScore(c: MultiQueryCase, predictions: number[]): { hits: boolean[]; queries: boolean[] } {
  const hits = c.scored.map((i) => predictions[i] === c.continuationIds[i]);
  const queries = Array.from({ length: hits.length / VALUE_TOKENS }, (_, q) =>
    hits.slice(q * VALUE_TOKENS, (q + 1) * VALUE_TOKENS).every(Boolean),
  );
  return { hits, queries };
}

/**
 * A case built like multiquery.py's mq_prompt (4 needles with distinct keys and value tokens at random depths in
 * 0.02..0.98, queried in a random order), with the project's seeded RNG: statistically equivalent, not id-identical.
 */
export function multiQueryCase(rand: () => number, L: number, needles = 4): MultiQueryCase {
  const v = retrievalVocabulary;
  const pick = (n: number, k: number) => {
    const a = Array.from({ length: n }, (_, i) => i);
    for (let i = 0; i < k; i++) {
      const j = i + Math.floor(rand() * (n - i));
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a.slice(0, k);
  };
  const keys = pick(v.keyCount, needles).map((k) => v.key0 + k);
  const values = pick(v.valueCount, needles * VALUE_TOKENS).map((x) => v.value0 + x);
  const body = L - 3; // BOS ... '? kA'
  const x = zipfFiller(rand, body);
  const span = 1 + VALUE_TOKENS;
  const starts: number[] = [];
  while (starts.length < needles) {
    const s = Math.floor((0.02 + rand() * 0.96) * (body - span));
    if (starts.every((t) => Math.abs(s - t) > span + 1)) starts.push(s);
  }
  starts.forEach((s, i) => {
    x.splice(s, span, keys[i], ...values.slice(i * VALUE_TOKENS, (i + 1) * VALUE_TOKENS));
  });
  const order = pick(needles, needles);
  const continuationIds: number[] = [];
  const scored: number[] = [];
  order.forEach((q, j) => {
    if (j > 0) continuationIds.push(QUERY, keys[q]);
    for (const value of values.slice(q * VALUE_TOKENS, (q + 1) * VALUE_TOKENS)) {
      scored.push(continuationIds.length);
      continuationIds.push(value);
    }
  });
  return { L, promptIds: [BOS, ...x, QUERY, keys[order[0]]], continuationIds, scored, numpy: {} };
}

/** n generated cases of one length (seeded). */
export function multiQueryCases(L: number, n: number, seed: number): MultiQueryCase[] {
  const rand = makeRng(seed * 1000003 + L).uniform;
  return Array.from({ length: n }, () => multiQueryCase(rand, L));
}
