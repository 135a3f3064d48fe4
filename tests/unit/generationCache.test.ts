// The generation loop's bookkeeping of what the KV cache holds, with a scripted runner (no GPU): a prefill-only call
// (a pre-read) with nothing to prefill must leave the cache as it is.
import { describe, expect, test } from 'vitest';
import { type CachedSequence, runGeneration } from '../../core/engine/generation';
import type { ModelRunner } from '../../core/engine/runner';

function scriptedRunner() {
  const prefills: { ids: number[]; start: number }[] = [];
  const runner: ModelRunner = {
    capacity: 64,
    kvInfo: { dtype: 'f32', numLayers: 1, kvHeads: 1, headDim: 4 },
    prefill: async (ids: number[], start: number) => void prefills.push({ ids, start }),
    beginGeneration: () => {},
    decodeStep: async () => 42,
    submitStep: () => {},
    takeToken: async () => 42,
    discardPending: async () => 0,
    runtimeStats: () => undefined,
    readLogits: async () => new Float32Array(0),
    attentionStats: async () => undefined,
    readKvLayer: async () => ({ k: new Uint8Array(0), v: new Uint8Array(0) }),
    writeKvLayer: () => {},
    dispose: () => {},
  };
  return { runner, prefills };
}

async function drain(it: AsyncIterable<unknown>) {
  for await (const _ of it);
}

describe('runGeneration: the cached sequence', () => {
  test('maxTokens 0 with nothing to prefill keeps what the cache holds beyond the prompt', async () => {
    const { runner, prefills } = scriptedRunner();
    // The last answer's tokens (7, 8, 9) follow the prompt in the cache.
    const cached: CachedSequence = { ids: [1, 2, 3, 4, 5, 7, 8, 9] };
    await drain(
      runGeneration(runner, cached, {
        promptIds: [1, 2, 3, 4, 5],
        options: { maxTokens: 0 },
        stopTokenIds: [],
        restoredTokens: 5,
        detokenize: () => ({ text: '', stop: false }),
      }),
    );
    expect(prefills).toEqual([]);
    expect(cached.ids).toEqual([1, 2, 3, 4, 5, 7, 8, 9]);
  });

  test('maxTokens 0 with something to prefill cuts the cache back and prefills all but the last token', async () => {
    const { runner, prefills } = scriptedRunner();
    const cached: CachedSequence = { ids: [1, 2, 7, 8] };
    await drain(
      runGeneration(runner, cached, {
        promptIds: [1, 2, 3, 4, 5],
        options: { maxTokens: 0 },
        stopTokenIds: [],
        restoredTokens: 2,
        detokenize: () => ({ text: '', stop: false }),
      }),
    );
    expect(prefills).toEqual([{ ids: [3, 4], start: 2 }]);
    expect(cached.ids).toEqual([1, 2, 3, 4]);
  });
});
