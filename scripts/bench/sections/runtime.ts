// Whole-model speed on the engine's own code path: prefill tokens/s and decode tokens/s (each decode step reads back
// one token id, as in the product), for a real small fixture and a Llama-3.2-1B-shaped q4 model; the decode step's
// achieved bandwidth (weights + KV bytes read per step / step time) as a fraction of copy bandwidth.

import { GpuModel } from '../../../core/engine/gpuModel';
import { GREEDY_SAMPLING } from '../../../core/engine/runner';
import { loadModel } from '../../../core/model/load';
import { DirSource } from '../../../core/node/dirSource';
import { PROJECT_ROOT } from '../../../core/node/vulkanDrivers';
import type { BenchContext, BenchRow, BenchSection } from '../sections';
import {
  decodeWeightBytes,
  kvBytesPerPositionPerLayer,
  LLAMA_1B,
  syntheticConfig,
  syntheticWeights,
} from '../syntheticModel';

async function measure(bench: BenchContext, model: GpuModel, vocab: number, promptLen: number, steps: number) {
  const prompt = Array.from({ length: promptLen }, (_, i) => 3 + ((i * 7919) % (vocab - 3)));
  // Warm-up (pipeline compilation) on a short prefill and two steps.
  await model.prefill(prompt.slice(0, Math.min(16, promptLen - 1)), 0);
  model.beginGeneration({ kind: 'full' });
  await model.decodeStep(prompt[0], 16, GREEDY_SAMPLING, 0);
  await model.decodeStep(prompt[0], 17, GREEDY_SAMPLING, 1);

  const t0 = performance.now();
  await model.prefill(prompt.slice(0, -1), 0);
  const prefillMs = performance.now() - t0;
  model.beginGeneration({ kind: 'full' });
  let id = prompt[prompt.length - 1];
  const t1 = performance.now();
  for (let s = 0; s < steps; s++) id = await model.decodeStep(id, promptLen - 1 + s, GREEDY_SAMPLING, s);
  const decodeMs = (performance.now() - t1) / steps;
  bench.log(`  prefill ${promptLen - 1} tok in ${prefillMs.toFixed(0)} ms, decode ${decodeMs.toFixed(2)} ms/step`);
  return { prefillTokPerSec: ((promptLen - 1) / prefillMs) * 1000, decodeMs };
}

const section: BenchSection = {
  name: 'runtime',
  description: 'whole-model prefill and decode speed (engine code path), decode bandwidth vs copy bandwidth',
  order: 20,
  async run(bench): Promise<BenchRow[]> {
    const ctx = bench.gpu;
    const rows: BenchRow[] = [];
    const copyGBs = await bench.copyBandwidth();
    const small = bench.cpuAdapter && !bench.large;

    // (a) The trained stories260k fixture (f32 weights).
    const fixture = await loadModel(new DirSource(`${PROJECT_ROOT}/tests/fixtures/stories260k`));
    const fm = await GpuModel.create(ctx, fixture.config, fixture.weights, { contextWindow: 512 });
    bench.log('runtime: stories260k');
    const a = await measure(bench, fm, fixture.config.vocabSize, 256, small ? 16 : 64);
    fm.dispose();
    rows.push({
      model: 'stories260k (f32, 5 layers)',
      prompt: 255,
      prefill_tok_s: a.prefillTokPerSec,
      decode_ms: a.decodeMs,
      decode_tok_s: 1000 / a.decodeMs,
      decode_GBs: null,
      frac_copy: null,
    });

    // (b) Llama-3.2-1B-shaped q4 model with random weights.
    const shape = LLAMA_1B;
    const promptLen = small ? 16 : 1024;
    const config = syntheticConfig(shape, 4096, ctx.f16);
    bench.log(`runtime: building ${shape.name} (${config.quantization})`);
    const weights = syntheticWeights(shape, ctx.f16);
    const model = await GpuModel.create(ctx, config, weights, { contextWindow: 4096, prefillChunk: 512 });
    const b = await measure(bench, model, shape.vocabSize, promptLen, small ? 2 : 64);
    model.dispose();
    const steps = small ? 2 : 64;
    const meanKvLen = promptLen + steps / 2;
    const bytes =
      decodeWeightBytes(shape, ctx.f16) + shape.numLayers * meanKvLen * kvBytesPerPositionPerLayer(shape, ctx.f16);
    const gbs = bytes / (b.decodeMs * 1e6);
    rows.push({
      model: `${shape.name} (${config.quantization}, vocab cut to ${shape.vocabSize})`,
      prompt: promptLen - 1,
      prefill_tok_s: b.prefillTokPerSec,
      decode_ms: b.decodeMs,
      decode_tok_s: 1000 / b.decodeMs,
      decode_GBs: gbs,
      frac_copy: gbs / copyGBs,
    });
    return rows;
  },
};

export default section;
