// Whole-model parity: the WebGPU model against the plain-TS reference forward pass, on generated models of every
// architecture variant and dtype. Logits after the prompt and after 8 teacher-forced decode steps, then 32 greedy
// tokens through the engine.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { GpuModel } from '../../core/engine/gpuModel';
import { ReferenceRunner } from '../../core/engine/referenceRunner';
import type { ModelRunner } from '../../core/engine/runner';
import { GREEDY_SAMPLING } from '../../core/engine/runner';
import { loadModel } from '../../core/model/load';
import { DirSource } from '../../core/node/dirSource';
import { createNodeEngine } from '../../core/node/nodeEngine';
import type { FixtureOptions } from '../../core/testing/fixtureModel';
import { writeFixtureModelDir } from '../../core/testing/fixtureModelDir';
import { testGpu } from './setup';

const root = mkdtempSync(join(tmpdir(), 'rr-parity-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

interface Variant {
  name: string;
  options: FixtureOptions;
}

const variants: Variant[] = [
  { name: 'llama GQA q0f32 untied', options: { architecture: 'llama', quantization: 'q0f32' } },
  {
    name: 'llama q4f32_1 tied, llama3 rope scaling',
    options: { quantization: 'q4f32_1', tied: true, ropeScaling: true },
  },
  { name: 'llama q4f16_1', options: { quantization: 'q4f16_1' } },
  { name: 'llama q0f16 bf16 records', options: { quantization: 'q0f16', bf16: true } },
  {
    name: 'qwen2 qkv bias q4f16_1 tied',
    options: { architecture: 'qwen2', quantization: 'q4f16_1', tied: true, template: 'chatml' },
  },
  { name: 'qwen3 q/k norm q4f32_1', options: { architecture: 'qwen3', quantization: 'q4f32_1', template: 'chatml' } },
  {
    name: 'llama MHA odd sizes q0f32',
    options: { numHeads: 3, numKvHeads: 3, headDim: 32, hiddenSize: 96, intermediateSize: 160, vocabSize: 517 },
  },
];

/** Logit tolerance: f32 everywhere vs an f16 KV cache (the only lossy step when the device has shader-f16). */
function tolerance(f16: boolean): number {
  return f16 ? 3e-2 : 2e-3;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

async function stepBoth(gpu: ModelRunner, ref: ModelRunner, id: number, pos: number, step: number) {
  const g = await gpu.decodeStep(id, pos, GREEDY_SAMPLING, step);
  const r = await ref.decodeStep(id, pos, GREEDY_SAMPLING, step);
  return { g, r, diff: maxAbsDiff(await gpu.readLogits(), await ref.readLogits()) };
}

describe('WebGPU model vs reference forward', () => {
  for (const v of variants) {
    test(v.name, async () => {
      const ctx = await testGpu();
      const dir = join(root, v.name.replace(/\W+/g, '-'));
      writeFixtureModelDir({ seed: 7, ...v.options }, dir);
      const model = await loadModel(new DirSource(dir));
      const gpu = await GpuModel.create(ctx, model.config, model.weights, { contextWindow: 256, prefillChunk: 16 });
      const ref = new ReferenceRunner(model.config, model.weights, 256);
      try {
        // A prompt longer than one prefill chunk, so chunked prefill continues a cache.
        const prompt = Array.from({ length: 41 }, (_, i) => 3 + ((i * 37) % (model.config.vocabSize - 3)));
        await gpu.prefill(prompt.slice(0, -1), 0);
        await ref.prefill(prompt.slice(0, -1), 0);
        gpu.beginGeneration({ kind: 'full' });
        ref.beginGeneration({ kind: 'full' });
        const tol = tolerance(gpu.kvInfo.dtype === 'f16');
        let pos = prompt.length - 1;
        let first = await stepBoth(gpu, ref, prompt[pos], pos, 0);
        expect(first.diff, 'logits after the prompt').toBeLessThan(tol);
        // Teacher forcing: both are fed the reference's token.
        let next = first.r;
        for (let s = 1; s <= 8; s++) {
          pos++;
          first = await stepBoth(gpu, ref, next, pos, s);
          expect(first.diff, `logits after decode step ${s}`).toBeLessThan(tol);
          next = first.r;
        }
      } finally {
        gpu.dispose();
      }

      const engines = await Promise.all([
        createNodeEngine({ gpu: ctx, prefillChunk: 16 }),
        createNodeEngine({ backend: 'reference' }),
      ]);
      const outputs: number[][] = [];
      for (const engine of engines) {
        await engine.load({ kind: 'dir', path: dir }, { contextWindow: 256 });
        const ids: number[] = [];
        for await (const ev of engine.generate({ tokenIds: [1, 5, 9, 13, 17] }, { maxTokens: 32, stopTokenIds: [] })) {
          if (ev.type === 'token') ids.push(ev.tokenId);
        }
        outputs.push(ids);
        await engine.unload();
      }
      expect(outputs[0].length).toBeGreaterThanOrEqual(1);
      expect(outputs[0]).toEqual(outputs[1]);
    });
  }
});
