// Teacher-forced scoring (the paper's language-modelling evaluation): the prompt is prefilled up to its last token;
// the last prompt token and then each continuation token go through DECODE steps, one token per step, under the
// attention policy's schedule (never prefill). Each step records the argmax and the log-probability of the next
// continuation token.
import { commonPrefixLength } from './generation';
import type { ModelRunner } from './runner';
import { GREEDY_SAMPLING } from './runner';
import type { AttentionPolicy, AttentionStats } from './types';

export interface ScoreInput {
  promptIds: number[];
  continuationIds: number[];
}

export interface ScoreOptions {
  attention?: AttentionPolicy;
  signal?: AbortSignal;
}

export interface ScoreStats extends Partial<Omit<AttentionStats, 'policy'>> {
  policy: AttentionPolicy['kind'];
  promptTokens: number;
  continuationTokens: number;
  /** Prompt tokens run through prefill / found in the cache from the previous request. */
  prefillTokens: number;
  restoredTokens: number;
  prefillMs: number;
  decodeMs: number;
  msPerStep: number;
  /** Layer-steps that attended the whole cache (sum over layers; the last prompt token's step included). */
  fullLayerSteps: number;
  /** Decode steps times layers: the denominator of fullLayerSteps. */
  layerSteps: number;
}

export interface ScoreResult {
  /** predictions[i]: the argmax at the step that consumed the token before continuation token i. */
  predictions: number[];
  /** logprobs[i]: log p(continuation token i) at that step (natural log). */
  logprobs: number[];
  /** Mean negative log-likelihood over the continuation. */
  nll: number;
  stats: ScoreStats;
}

/** Checks a scoring request against the model; throws a specific error. */
export function validateScoreInput(input: ScoreInput, vocabSize: number, capacity: number): void {
  const check = (ids: unknown, name: string) => {
    if (!Array.isArray(ids) || ids.length === 0) throw new Error(`${name} must be a non-empty array of token ids`);
    ids.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
        throw new Error(`${name}[${i}] = ${JSON.stringify(id)} is not a token id of this model (0..${vocabSize - 1})`);
      }
    });
  };
  check(input.promptIds, 'prompt_ids');
  check(input.continuationIds, 'continuation_ids');
  // Positions used: the prompt's, then one per continuation token but the last.
  const positions = input.promptIds.length + input.continuationIds.length - 1;
  if (positions > capacity) {
    throw new Error(
      `prompt (${input.promptIds.length}) + continuation (${input.continuationIds.length}) - 1 = ${positions} ` +
        `positions exceed the context window (${capacity}); raise --context`,
    );
  }
}

/** Log-softmax of one entry, in double precision. */
export function logSoftmaxAt(logits: ArrayLike<number>, index: number): number {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  return logits[index] - max - Math.log(sum);
}

function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

/**
 * Scores one case on `runner`. `cached` holds the ids whose KV the runner's cache holds (position by position); the
 * common prefix with the prompt is reused, so scoring one prompt under several policies prefills it once.
 */
export async function runScoring(
  runner: ModelRunner,
  cached: { ids: number[] },
  input: ScoreInput,
  opts: ScoreOptions = {},
): Promise<ScoreResult> {
  const { promptIds, continuationIds } = input;
  const policy = opts.attention ?? { kind: 'full' };
  const reuse = Math.min(commonPrefixLength(cached.ids, promptIds), promptIds.length - 1);
  const toPrefill = promptIds.slice(reuse, promptIds.length - 1);
  cached.ids = promptIds.slice(0, reuse);
  const t0 = performance.now();
  if (toPrefill.length > 0) await runner.prefill(toPrefill, reuse);
  cached.ids = promptIds.slice(0, -1);
  const prefillMs = performance.now() - t0;

  runner.beginGeneration(policy);
  const predictions: number[] = [];
  const logprobs: number[] = [];
  const t1 = performance.now();
  for (let step = 0; step < continuationIds.length; step++) {
    if (opts.signal?.aborted) throw new Error('Scoring was stopped.');
    const input = step === 0 ? promptIds[promptIds.length - 1] : continuationIds[step - 1];
    const pos = promptIds.length - 1 + step;
    await runner.decodeStep(input, pos, GREEDY_SAMPLING, step);
    cached.ids.push(input);
    const logits = await runner.readLogits();
    predictions.push(argmax(logits));
    logprobs.push(logSoftmaxAt(logits, continuationIds[step]));
  }
  const decodeMs = performance.now() - t1;
  const attention = await runner.attentionStats();
  if (attention?.fullLayerSteps === undefined) throw new Error('scoring: the backend reported no attention statistics');
  const layers = runner.kvInfo.numLayers;
  const steps = continuationIds.length;
  return {
    predictions,
    logprobs,
    nll: -logprobs.reduce((a, b) => a + b, 0) / steps,
    stats: {
      ...attention,
      policy: policy.kind,
      promptTokens: promptIds.length,
      continuationTokens: steps,
      prefillTokens: toPrefill.length + 1,
      restoredTokens: reuse,
      prefillMs,
      decodeMs,
      msPerStep: decodeMs / steps,
      fullLayerSteps: attention.fullLayerSteps,
      layerSteps: steps * layers,
    },
  };
}
