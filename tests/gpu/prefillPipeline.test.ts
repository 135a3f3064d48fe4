// The prefill pipeline: chunking in the runner, progress per chunk, Stop within one chunk, and the KV of a prefill
// split into chunks equal to the KV of the same tokens in one chunk.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { runGeneration } from '../../core/engine/generation';
import { GpuModel } from '../../core/engine/gpuModel';
import type { ModelRunner } from '../../core/engine/runner';
import type { GenerateEvent } from '../../core/engine/types';
import { loadModel } from '../../core/model/load';
import { DirSource } from '../../core/node/dirSource';
import { writeFixtureModelDir } from '../../core/testing/fixtureModelDir';
import { testGpu } from './setup';

const root = mkdtempSync(join(tmpdir(), 'rr-prefill-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function fixture(chunk: number) {
  const ctx = await testGpu();
  const dir = join(root, 'q4');
  writeFixtureModelDir({ seed: 11, quantization: 'q4f32_1' }, dir);
  const model = await loadModel(new DirSource(dir));
  const gpu = await GpuModel.create(ctx, model.config, model.weights, { contextWindow: 256, prefillChunk: chunk });
  const prompt = Array.from({ length: 101 }, (_, i) => 3 + ((i * 41) % (model.config.vocabSize - 3)));
  return { gpu, prompt };
}

test('progress after every chunk; the KV equals a prefill in chunks of another size', async () => {
  const { gpu, prompt } = await fixture(16);
  const { gpu: other } = await fixture(48);
  try {
    const reported: number[] = [];
    await gpu.prefill(prompt.slice(0, 100), 0, { onChunk: (done) => reported.push(done) });
    expect(reported).toEqual([16, 32, 48, 64, 80, 96, 100]);
    await other.prefill(prompt.slice(0, 100), 0);
    for (let layer = 0; layer < gpu.kvInfo.numLayers; layer++) {
      const a = await gpu.readKvLayer(layer, 100);
      const b = await other.readKvLayer(layer, 100);
      const fa = new Float32Array(a.k.buffer, a.k.byteOffset, a.k.byteLength / 4);
      const fb = new Float32Array(b.k.buffer, b.k.byteOffset, b.k.byteLength / 4);
      let diff = 0;
      for (let i = 0; i < fa.length; i++) diff = Math.max(diff, Math.abs(fa[i] - fb[i]));
      expect(diff, `layer ${layer} K`).toBeLessThan(1e-4);
    }
  } finally {
    gpu.dispose();
    other.dispose();
  }
});

test('Stop during prefill: no chunk starts after the abort, at most the one in flight finishes', async () => {
  const { gpu, prompt } = await fixture(16);
  try {
    const controller = new AbortController();
    const reported: number[] = [];
    await gpu.prefill(prompt.slice(0, 100), 0, {
      signal: controller.signal,
      onChunk: (done) => {
        reported.push(done);
        if (done === 32) controller.abort();
      },
    });
    expect(reported).toEqual([16, 32, 48]);
  } finally {
    gpu.dispose();
  }
});

test('runGeneration: one prefill-progress event per chunk, then tokens; a Stop during prefill ends it', async () => {
  const { gpu, prompt } = await fixture(16);
  try {
    const events: GenerateEvent[] = [];
    const cached = { ids: [] as number[] };
    const request = {
      promptIds: prompt,
      stopTokenIds: [],
      restoredTokens: 0,
      detokenize: () => ({ text: 'x', stop: false }),
    };
    for await (const ev of runGeneration(gpu, cached, { ...request, options: { maxTokens: 2 } })) events.push(ev);
    const progress = events
      .filter((e) => e.type === 'prefill-progress')
      .map((e) => e.type === 'prefill-progress' && e.done);
    expect(progress).toEqual([16, 32, 48, 64, 80, 96, 100]);
    expect(events.filter((e) => e.type === 'token')).toHaveLength(2);
    const done = events.at(-1);
    expect(done?.type === 'done' && done.stats.firstTokenMs).toBeGreaterThan(0);

    // Stop clicked while the chunk ending at 16 completes: the runner sees it at that boundary, finishes the chunk
    // queued behind it (to 32) and starts nothing more; runGeneration reports both and ends with "stopped".
    const controller = new AbortController();
    const stopping: ModelRunner = Object.create(gpu);
    stopping.prefill = (ids, startPos, opts) =>
      gpu.prefill(ids, startPos, {
        ...opts,
        onChunk: (done) => {
          if (done === 16) controller.abort();
          opts?.onChunk?.(done);
        },
      });
    const seen: number[] = [];
    const stopped = (async () => {
      for await (const ev of runGeneration(
        stopping,
        { ids: [] },
        { ...request, options: { signal: controller.signal } },
      )) {
        if (ev.type === 'prefill-progress') seen.push(ev.done);
      }
    })();
    await expect(stopped).rejects.toThrow(/stopped/);
    expect(seen).toEqual([16, 32]);
  } finally {
    gpu.dispose();
  }
});
