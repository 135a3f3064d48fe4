// A prefill-only generation (the host's pre-read) under the fast-mode policy builds the recycled-attention kernels,
// so the first answer that follows compiles no pipeline. The test prints how long those compiles took (on SwiftShader,
// which compiles when a pipeline is created, they were the first fast answer's wait; docs/BENCH.md).

import { expect, test } from 'vitest';
import { type CachedSequence, runGeneration } from '../../core/engine/generation';
import { GpuModel } from '../../core/engine/gpuModel';
import type { AttentionPolicy, GenerateEvent, GenerateOptions } from '../../core/engine/types';
import { loadModel } from '../../core/model/load';
import { DirSource } from '../../core/node/dirSource';
import { testGpu } from './setup';

const FAST: AttentionPolicy = { kind: 'recycled', k: { fraction: 0.125 }, dynamic: { qc: 1 } };

test('a pre-read under the fast-mode policy compiles its kernels; the answer after it compiles none', async () => {
  const ctx = await testGpu();
  const m = await loadModel(new DirSource('tests/fixtures/stories260k'));
  // A context window no other test uses: the kernels' code (sized by it) is new to this device's pipeline cache.
  const model = await GpuModel.create(ctx, m.config, m.weights, { contextWindow: 456 });
  const device = ctx.device;
  const create = device.createComputePipeline.bind(device);
  let created = 0;
  device.createComputePipeline = (d) => {
    created++;
    return create(d);
  };
  try {
    const prompt = [1, ...Array.from({ length: 299 }, (_, i) => 3 + ((i * 37) % 400))];
    const cached: CachedSequence = { ids: [] };
    const run = async (options: GenerateOptions, restoredTokens: number) => {
      const events: GenerateEvent[] = [];
      const gen = runGeneration(model, cached, {
        promptIds: prompt,
        options,
        stopTokenIds: [],
        restoredTokens,
        detokenize: () => ({ text: '', stop: false }),
      });
      for await (const ev of gen) events.push(ev);
      const done = events.at(-1);
      if (done?.type !== 'done') throw new Error('no done event');
      return { tokens: events.filter((e) => e.type === 'token').length, stats: done.stats };
    };

    // The pre-read: prefill only, under the policy the answer will run (forced active: this model is below the
    // break-even, which is what the host passes on with fastModeAlways).
    const t0 = performance.now();
    const preRead = await run({ maxTokens: 0, attention: FAST, fastModeBreakEven: false }, 0);
    const preReadMs = performance.now() - t0;
    expect(preRead.tokens).toBe(0);
    expect(preRead.stats.fastModeActive).toBe(true);
    const compiledByPreRead = created;
    expect(compiledByPreRead).toBeGreaterThan(0); // the counter sees the recycled kernels being built
    console.log(`[fast mode] the pre-read built ${compiledByPreRead} pipelines; it took ${preReadMs.toFixed(0)} ms`);

    created = 0;
    const answer = await run({ maxTokens: 6, attention: FAST, fastModeBreakEven: false }, prompt.length - 1);
    expect(answer.tokens).toBe(6);
    expect(answer.stats.attention?.policy).toBe('recycled');
    expect(answer.stats.attention?.fullStepsPerLayer.some((n) => n < 6)).toBe(true); // recycled steps ran
    expect(created).toBe(0);

    // Without the pre-read's policy (full), a fast answer on a new capacity would have compiled them itself.
    const other = await GpuModel.create(ctx, m.config, m.weights, { contextWindow: 472 });
    try {
      created = 0;
      other.beginGeneration(FAST);
      expect(created).toBeGreaterThan(0);
    } finally {
      other.dispose();
    }
  } finally {
    device.createComputePipeline = create;
    model.dispose();
  }
});
