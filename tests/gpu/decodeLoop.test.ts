// The pipelined decode loop (runGeneration over GpuModel: the sampled id feeds the next step on the GPU, two steps
// in flight): same greedy tokens as one step at a time, steps computed past a stop leave no trace (KV, attention
// state, statistics), and the dispatch / uniform-write counts the engine reports.

import { describe, expect, test } from 'vitest';
import { type GenerationRequest, runGeneration } from '../../core/engine/generation';
import { GpuModel } from '../../core/engine/gpuModel';
import { GREEDY_SAMPLING } from '../../core/engine/runner';
import type { AttentionPolicy, GenerateOptions, GenerationStats } from '../../core/engine/types';
import { loadModel } from '../../core/model/load';
import { DirSource } from '../../core/node/dirSource';
import { testGpu } from './setup';

const STORIES = 'tests/fixtures/stories260k';
const PROMPT = [1, ...Array.from({ length: 40 }, (_, i) => 3 + ((i * 37) % 400))];
const RECYCLED: AttentionPolicy = { kind: 'recycled', k: { count: 8 }, stride: 4 };

async function withModel(run: (model: GpuModel) => Promise<void>): Promise<void> {
  const ctx = await testGpu();
  const m = await loadModel(new DirSource(STORIES));
  const model = await GpuModel.create(ctx, m.config, m.weights, { contextWindow: 256 });
  try {
    await run(model);
  } finally {
    model.dispose();
  }
}

async function generate(model: GpuModel, options: GenerateOptions, stopTokenIds: number[] = []) {
  const cached = { ids: [] as number[] };
  const req: GenerationRequest = {
    promptIds: PROMPT,
    options: { fastModeBreakEven: false, ...options },
    stopTokenIds,
    restoredTokens: 0,
    detokenize: () => ({ text: '', stop: false }),
  };
  const tokens: number[] = [];
  let stats: GenerationStats | undefined;
  for await (const ev of runGeneration(model, cached, req)) {
    if (ev.type === 'token') {
      tokens.push(ev.tokenId);
      if (options.signal && tokens.length === 5) (options as { abort?: () => void }).abort?.();
    } else if (ev.type === 'done') stats = ev.stats;
  }
  return { tokens, cached: cached.ids, stats: stats as GenerationStats };
}

/** Step-by-step greedy decoding, nothing in flight (the pre-pipelining contract of decodeStep). */
async function stepByStep(model: GpuModel, policy: AttentionPolicy, steps: number): Promise<number[]> {
  await model.prefill(PROMPT.slice(0, -1), 0);
  model.beginGeneration(policy);
  const out: number[] = [];
  let id = PROMPT[PROMPT.length - 1];
  for (let s = 0; s < steps; s++) {
    id = await model.decodeStep(id, PROMPT.length - 1 + s, GREEDY_SAMPLING, s);
    out.push(id);
  }
  return out;
}

async function allKv(model: GpuModel, length: number): Promise<number[][]> {
  const out: number[][] = [];
  for (let l = 0; l < model.kvInfo.numLayers; l++) {
    const { k, v } = await model.readKvLayer(l, length);
    out.push(Array.from(k), Array.from(v));
  }
  return out;
}

describe('pipelined decode loop (stories260k)', () => {
  test('greedy tokens equal one-step-at-a-time decoding, full and recycled', async () => {
    await withModel(async (model) => {
      for (const policy of [{ kind: 'full' } as const, RECYCLED]) {
        const piped = await generate(model, { maxTokens: 24, attention: policy });
        const single = await stepByStep(model, policy, 24);
        expect(piped.tokens).toEqual(single);
        expect(piped.stats.generatedTokens).toBe(24);
        expect(piped.cached).toEqual([...PROMPT, ...single.slice(0, 23)]);
      }
    });
  });

  test('a stop token: the step computed past it is discarded and leaves KV, state and stats as a run that ended there', async () => {
    await withModel(async (model) => {
      const ref = await generate(model, { maxTokens: 24, attention: RECYCLED });
      // The stop: the first token (from step 3 on) that did not occur before, so the run stops exactly there.
      const t = ref.tokens.findIndex((id, i) => i >= 3 && !ref.tokens.slice(0, i).includes(id));
      expect(t).toBeGreaterThanOrEqual(3);

      // Run A ends at step t by the token limit: nothing is ever computed past it.
      const a = await generate(model, { maxTokens: t + 1, attention: RECYCLED });
      const aKv = await allKv(model, a.cached.length);
      const aNext = await model.decodeStep(ref.tokens[t], PROMPT.length - 1 + t + 1, GREEDY_SAMPLING, t + 1);
      const aLogits = await model.readLogits();

      // Run B stops at step t on a stop token, with step t + 1 already submitted.
      let discarded = 0;
      const discard = model.discardPending.bind(model);
      model.discardPending = async () => {
        const n = await discard();
        discarded += n;
        return n;
      };
      const b = await generate(model, { maxTokens: 24, attention: RECYCLED }, [ref.tokens[t]]);
      model.discardPending = discard;
      expect(discarded).toBe(1);
      expect(b.stats.stopReason).toBe('stop-token');
      expect(b.tokens).toEqual(ref.tokens.slice(0, t));
      expect(b.cached).toEqual(a.cached);
      expect(b.stats.attention?.fullStepsPerLayer).toEqual(a.stats.attention?.fullStepsPerLayer);
      expect(b.stats.attention?.meanPositionsRead).toBe(a.stats.attention?.meanPositionsRead);
      expect(b.stats.attention?.meanPositionsFull).toBe(a.stats.attention?.meanPositionsFull);
      expect(await allKv(model, b.cached.length)).toEqual(aKv);
      // Continuing from there (the schedule state of step t + 1 must be the one before the discarded step ran).
      const bNext = await model.decodeStep(ref.tokens[t], PROMPT.length - 1 + t + 1, GREEDY_SAMPLING, t + 1);
      expect(bNext).toBe(aNext);
      expect(Array.from(await model.readLogits())).toEqual(Array.from(aLogits));
    });
  });

  test('Stop (abort) after 5 tokens: no step past it is kept', async () => {
    await withModel(async (model) => {
      const controller = new AbortController();
      const options = {
        maxTokens: 24,
        attention: RECYCLED,
        signal: controller.signal,
        abort: () => controller.abort(),
      };
      const run = await generate(model, options);
      expect(run.stats.stopReason).toBe('aborted');
      expect(run.tokens.length).toBe(5);
      expect(run.cached.length).toBe(PROMPT.length + 4);
      // The same as a run limited to 5 tokens (never past step 4): the in-flight step 5 was undone.
      const limited = await generate(model, { maxTokens: 5, attention: RECYCLED });
      expect(run.tokens).toEqual(limited.tokens);
      expect(run.stats.attention?.fullStepsPerLayer).toEqual(limited.stats.attention?.fullStepsPerLayer);
      expect(run.stats.attention?.meanPositionsRead).toBe(limited.stats.attention?.meanPositionsRead);
      expect(run.stats.attention?.meanPositionsFull).toBe(limited.stats.attention?.meanPositionsFull);
    });
  });

  test('fast mode below the break-even: full attention runs, and the stats say why', async () => {
    await withModel(async (model) => {
      // stories260k in f32: ~1 MB of weights a step against at most ~1.3 KB of K/V rows per position (5 layers,
      // 4 KV heads of 8 dims): at ~50 positions attention is a few percent of the bytes, so no policy can pay off.
      const run = await generate(model, { maxTokens: 6, attention: RECYCLED, fastModeBreakEven: true });
      expect(run.stats.fastModeActive).toBe(false);
      expect(run.stats.fastModeReason).toMatch(/break-even/);
      expect(run.stats.fastModePredictedRatio).toBeGreaterThan(0.9);
      expect(run.stats.attention?.policy).toBe('full');
      const forced = await generate(model, { maxTokens: 6, attention: RECYCLED });
      expect(forced.stats.fastModeActive).toBe(true);
      expect(forced.stats.attention?.policy).toBe('recycled');
    });
  });

  test('dispatches per token and one uniform write per step', async () => {
    await withModel(async (model) => {
      const layers = model.config.numLayers;
      // Per layer (fused decode): qkv (RMSNorm prologue), attention splits (RoPE + KV store in the kernel), o (split
      // combine prologue, + residual), gate_up (RMSNorm prologue, SiLU·mul epilogue), down (+ residual) = 5; per
      // token: embedding, LM head (final norm prologue), sampler = 3.
      await generate(model, { maxTokens: 12 });
      expect(model.runtimeStats().dispatchesPerToken).toBe(5 * layers + 3);
      expect(model.runtimeStats().uniformWritesPerToken).toBeLessThanOrEqual(1);
      // Recycled: the schedule's decide kernel per layer (6, #9's bound for a step without refresh; decide also
      // records the coming selection's length); a refresh adds the pooling per layer (it reduces the attention's
      // split partials itself: no head-statistics kernel), then once for all layers the radix select (three histogram passes and the write: rows this short are one chunk,
      // no count pass) and the ranking of the selection (displacement order).
      await generate(model, { maxTokens: 12, attention: RECYCLED });
      expect(model.runtimeStats().dispatchesPerToken).toBe(6 * layers + 3);
      expect(model.runtimeStats().dispatchesPerRefreshToken).toBe(7 * layers + 3 + 5);
      expect(model.runtimeStats().uniformWritesPerToken).toBeLessThanOrEqual(1);
      // The dynamic schedule decides on the GPU, so every step is encoded as a possible refresh: the same count.
      await generate(model, { maxTokens: 12, attention: { kind: 'recycled', k: { count: 8 }, dynamic: { qc: 1 } } });
      expect(model.runtimeStats().dispatchesPerRefreshToken).toBe(7 * layers + 3 + 5);
    });
  });
});
