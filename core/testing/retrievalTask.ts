// Evaluation prompts for the trained retrieval-llama fixture, in the format it was trained on (see its README):
// `<s> filler... k<a> v<b> v<c> v<d> v<e> filler... ? k<a>`; the right continuation is the 4 value tokens.
// Same construction as the fixture's task.py `eval_prompt` (4 needles, distinct keys and value tokens, target at
// depth*L, distractors at random depths), with our own seeded RNG: statistically equivalent, not id-identical.

import { makeRng } from './fixtureModel';

export const BOS = 1;
export const QUERY = 3;
const KEY0 = 4;
const NKEY = 16;
const VAL0 = 20;
const NVAL = 24;
const FIL0 = 44;
const NFIL = 24;
export const VALUE_TOKENS = 4;
export const retrievalVocabulary = { key0: KEY0, keyCount: NKEY, value0: VAL0, valueCount: NVAL } as const;

export interface RetrievalPrompt {
  ids: number[];
  answer: number[];
  /** Position of the target needle's key. */
  needlePos: number;
  depth: number;
}

const ZIPF_CDF = (() => {
  const w = Array.from({ length: NFIL }, (_, i) => 1 / (i + 1) ** 1.1);
  const total = w.reduce((a, b) => a + b, 0);
  let acc = 0;
  return w.map((x) => (acc += x / total));
})();

function shuffledPrefix(rand: () => number, n: number, k: number): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(rand() * (n - i));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a.slice(0, k);
}

/** n filler tokens drawn from Zipf(1.1) over f0..f23, as the fixture was trained on. */
export function zipfFiller(rand: () => number, n: number): number[] {
  return Array.from({ length: n }, () => {
    const u = rand();
    return FIL0 + ZIPF_CDF.findIndex((c) => u <= c);
  });
}

export function retrievalPrompt(rand: () => number, length: number, depth: number, needles = 4): RetrievalPrompt {
  const keys = shuffledPrefix(rand, NKEY, needles).map((k) => KEY0 + k);
  const values = shuffledPrefix(rand, NVAL, needles * VALUE_TOKENS).map((v) => VAL0 + v);
  const body = length - 3; // BOS ... '? k'
  const x = zipfFiller(rand, body);
  const span = 1 + VALUE_TOKENS;
  const starts = [Math.floor(depth * body)];
  while (starts.length < needles) {
    const s = Math.floor((0.02 + rand() * 0.96) * (body - span));
    if (starts.every((t) => Math.abs(s - t) > span + 1)) starts.push(s);
  }
  starts.forEach((s0, i) => {
    const s = Math.min(s0, body - span);
    x.splice(s, span, keys[i], ...values.slice(i * VALUE_TOKENS, (i + 1) * VALUE_TOKENS));
  });
  return {
    ids: [BOS, ...x, QUERY, keys[0]],
    answer: values.slice(0, VALUE_TOKENS),
    needlePos: 1 + Math.min(starts[0], body - span),
    depth,
  };
}

/** n prompts of one length, depths cycling through 0.1, 0.3, 0.5, 0.7, 0.95 (as the fixture's eval). */
export function retrievalEvalSet(length: number, n: number, seed: number): RetrievalPrompt[] {
  const rand = makeRng(seed * 1000003 + length).uniform;
  const depths = [0.1, 0.3, 0.5, 0.7, 0.95];
  return Array.from({ length: n }, (_, i) => retrievalPrompt(rand, length, depths[i % depths.length]));
}
