// The WebGPU engine on the two trained fixture models, against references computed outside this project:
// stories260k's 99 greedy tokens from llama2.c's own C code, and retrieval-llama's numpy golden.json.

import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { GpuModel } from '../../core/engine/gpuModel';
import { GREEDY_SAMPLING } from '../../core/engine/runner';
import { loadModel } from '../../core/model/load';
import { DirSource } from '../../core/node/dirSource';
import { createNodeEngine } from '../../core/node/nodeEngine';
import { testGpu } from './setup';

const STORIES = 'tests/fixtures/stories260k';
const RETRIEVAL = 'tests/fixtures/retrieval-llama';

interface RetrievalCase {
  length: number;
  token_ids: number[];
  argmax_next_token: number;
  last_logits_first16: number[];
  last_logits_max: number;
  greedy_4_tokens_full_attention: number[];
}

describe('trained fixtures reproduce their external goldens', () => {
  test('stories260k: 99 greedy tokens from BOS equal llama2.c run.c', async () => {
    const golden = JSON.parse(readFileSync(`${STORIES}/golden-runc.json`, 'utf8')) as {
      prompt_ids: number[];
      generated: number[];
    };
    const engine = await createNodeEngine({ gpu: await testGpu() });
    await engine.load({ kind: 'dir', path: STORIES });
    const ids: number[] = [];
    let stats: unknown;
    for await (const ev of engine.generate({ tokenIds: golden.prompt_ids }, { maxTokens: 99, stopTokenIds: [] })) {
      if (ev.type === 'token') ids.push(ev.tokenId);
      else if (ev.type === 'done') stats = ev.stats;
    }
    await engine.unload();
    expect(ids).toEqual(golden.generated);
    expect(stats).toMatchObject({ generatedTokens: 99, stopReason: 'max-tokens' });
  });

  const cases = (JSON.parse(readFileSync(`${RETRIEVAL}/golden.json`, 'utf8')) as { cases: RetrievalCase[] }).cases;
  for (const c of cases) {
    test(`retrieval-llama L=${c.length}: last-position logits and greedy answer equal golden.json`, async () => {
      const ctx = await testGpu();
      const model = await loadModel(new DirSource(RETRIEVAL));
      const gpu = await GpuModel.create(ctx, model.config, model.weights, { contextWindow: c.length + 8 });
      try {
        const prompt = c.token_ids;
        await gpu.prefill(prompt.slice(0, -1), 0);
        gpu.beginGeneration({ kind: 'full' });
        let pos = prompt.length - 1;
        let next = await gpu.decodeStep(prompt[pos], pos, GREEDY_SAMPLING, 0);
        const logits = await gpu.readLogits();
        // golden.json was computed in float32 numpy; this q0f32 model keeps an f32 KV cache on every adapter.
        expect(gpu.kvInfo.dtype).toBe('f32');
        const tol = 2e-3;
        for (const [i, want] of c.last_logits_first16.entries()) {
          expect(Math.abs(logits[i] - want), `logit ${i}`).toBeLessThan(tol);
        }
        expect(Math.abs(Math.max(...logits) - c.last_logits_max)).toBeLessThan(tol);
        expect(next).toBe(c.argmax_next_token);
        const answer = [next];
        for (let s = 1; s < 4; s++) {
          pos++;
          next = await gpu.decodeStep(next, pos, GREEDY_SAMPLING, s);
          answer.push(next);
        }
        expect(answer).toEqual(c.greedy_4_tokens_full_attention);
      } finally {
        gpu.dispose();
      }
    });
  }
});
