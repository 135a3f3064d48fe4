// Whole-model speed on the engine's own code path: prefill tokens/s and decode tokens/s, for a real small fixture
// and a Llama-3.2-1B-shaped q4 model; the 1B decode step (the product's pipelined loop) against its bytes floor:
// weights + attention bytes one step moves (the engine's bytes model) over the copy bandwidth. Summary keys:
// dispatchesPerToken (the larger of a full-attention step and a recycled step without refresh, as the engine counted
// them), dispatchesPerFullToken (a step that refreshes the top-K), decodeMs1K, decodeBytesFloorMs1K, decodeToFloor1K
// (decodeMs1K: the median of the timed steps' times, over a cache filled with synthetic KV).

import { fullStepBytes } from '../../../core/engine/fastMode';
import { GpuModel } from '../../../core/engine/gpuModel';
import { GREEDY_SAMPLING } from '../../../core/engine/runner';
import { loadModel } from '../../../core/model/load';
import { DirSource } from '../../../core/node/dirSource';
import { PROJECT_ROOT } from '../../../core/node/vulkanDrivers';
import { fillKv, median, timeDecode } from '../decodeTiming';
import type { BenchContext, BenchRow, BenchSection } from '../sections';
import { LLAMA_1B, syntheticConfig, syntheticWeights } from '../syntheticModel';

async function measure(bench: BenchContext, model: GpuModel, vocab: number, promptLen: number, steps: number) {
  const prompt = Array.from({ length: promptLen }, (_, i) => 3 + ((i * 7919) % (vocab - 3)));
  // Warm-up (pipeline compilation) on a short prefill and two steps.
  await model.prefill(prompt.slice(0, Math.min(4, promptLen - 1)), 0);
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

    // (b) Llama-3.2-1B-shaped q4 model with random weights at a 1K context: prefill speed on a short prompt, then
    // decode from position 1023 over a KV cache filled with synthetic values (a 1K prefill takes minutes on a CPU
    // adapter and does not change a decode step's cost).
    const shape = LLAMA_1B;
    const L = 1024;
    const config = syntheticConfig(shape, 2048, ctx.f16);
    bench.log(`runtime: building ${shape.name} (${config.quantization})`);
    const weights = syntheticWeights(shape, ctx.f16);
    const model = await GpuModel.create(ctx, config, weights, { contextWindow: 2048, prefillChunk: 256 });
    try {
      // On a CPU adapter the 1B prefill here is a short one (16 tokens, ~2 GFLOP each): the prefill section measures
      // prefill against the FMA peak.
      const prefillLen = bench.cpuAdapter ? 16 : 1024;
      const b = await measure(bench, model, shape.vocabSize, prefillLen + 1, 2);
      const steps = bench.cpuAdapter ? 9 : 64;
      fillKv(model, L - 1);
      await timeDecode(model, L, { kind: 'full' }, 2); // warm-up
      const full = await timeDecode(model, L, { kind: 'full' }, steps);
      // The seed step of a recycled generation refreshes (full attention + top-K), step 1 is a recycled step without
      // refresh: their dispatch counts.
      const fast = await timeDecode(model, L, { kind: 'recycled', k: { count: L / 8 }, stride: 10 }, 1);
      // Step time: the median of the per-step times (a step on a shared CPU adapter can catch a burst of load).
      const stepMs = median(full.stepMs);
      const meanKvLen = L + steps / 2;
      const bytes = fullStepBytes(model.decodeBytes, meanKvLen);
      const gbs = bytes / (stepMs * 1e6);
      const floorMs = bytes / (copyGBs * 1e6);
      bench.log(
        `  decode ${stepMs.toFixed(2)} ms/step at ${L} (median of ${steps}; mean ${full.msPerStep.toFixed(2)}), ` +
          `bytes floor ${floorMs.toFixed(2)} ms`,
      );
      rows.push({
        model: `${shape.name} (${config.quantization}, vocab cut to ${shape.vocabSize})`,
        prompt: prefillLen,
        prefill_tok_s: b.prefillTokPerSec,
        context: L,
        decode_ms: stepMs,
        decode_tok_s: 1000 / stepMs,
        decode_GBs: gbs,
        frac_copy: gbs / copyGBs,
        floor_ms: floorMs,
        to_floor: stepMs / floorMs,
        decode_steps: steps,
        decode_ms_mean: full.msPerStep,
        dispatches: full.dispatchesPerToken,
        dispatches_recycled: fast.dispatchesPerToken,
        dispatches_refresh: fast.dispatchesPerRefreshToken,
        uniform_writes: full.uniformWritesPerToken,
      });
      Object.assign(bench.summary, {
        dispatchesPerToken: Math.max(full.dispatchesPerToken ?? 0, fast.dispatchesPerToken ?? 0) || null,
        dispatchesPerFullToken: fast.dispatchesPerRefreshToken,
        decodeMs1K: stepMs,
        decodeBytesFloorMs1K: floorMs,
        decodeToFloor1K: stepMs / floorMs,
      });
    } finally {
      model.dispose();
    }
    return rows;
  },
};

export default section;
