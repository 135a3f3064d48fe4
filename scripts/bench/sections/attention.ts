// Fast mode's evidence, part 1: decode step time under each attention policy at long contexts, as a ratio to full
// attention in the same run, next to the ratio predicted by bytes moved (weights + KV read per step).
// The KV cache is filled with synthetic values instead of running a long prefill (timing does not depend on them).

import { GpuModel } from '../../../core/engine/gpuModel';
import { GREEDY_SAMPLING } from '../../../core/engine/runner';
import type { AttentionPolicy, AttentionStats } from '../../../core/engine/types';
import { f32ToF16Bits } from '../../../kernels/half';
import type { BenchContext, BenchRow, BenchSection } from '../sections';
import {
  decodeWeightBytes,
  kvBytesPerPositionPerLayer,
  LLAMA_1B,
  SMALL,
  type SyntheticShape,
  syntheticConfig,
  syntheticWeights,
} from '../syntheticModel';

const STRIDE = 10;

function policies(L: number): Record<string, AttentionPolicy> {
  return {
    full: { kind: 'full' },
    'recycled K=L/8': { kind: 'recycled', k: { count: Math.floor(L / 8) }, stride: STRIDE },
    'recycled K=L/16': { kind: 'recycled', k: { count: Math.floor(L / 16) }, stride: STRIDE },
    'streaming K=L/8': { kind: 'streaming', k: { count: Math.floor(L / 8) } },
  };
}

/** Writes plausible values (small, finite) into positions [0, length) of every layer. */
function fillKv(model: GpuModel, length: number): void {
  const { dtype, kvHeads, headDim, numLayers } = model.kvInfo;
  const n = kvHeads * length * headDim;
  let s = 12345;
  const pattern = new Float32Array(1 << 16).map(() => {
    s = (s * 1103515245 + 12345) >>> 0;
    return (s / 2 ** 32 - 0.5) * 2;
  });
  const bytes =
    dtype === 'f16'
      ? new Uint8Array(Uint16Array.from({ length: n }, (_, i) => f32ToF16Bits(pattern[i & 0xffff])).buffer)
      : new Uint8Array(Float32Array.from({ length: n }, (_, i) => pattern[i & 0xffff]).buffer);
  for (let l = 0; l < numLayers; l++) model.writeKvLayer(l, length, bytes, bytes);
}

async function timePolicy(model: GpuModel, L: number, policy: AttentionPolicy, steps: number) {
  model.beginGeneration(policy);
  let id = 5;
  id = await model.decodeStep(id, L - 1, GREEDY_SAMPLING, 0); // the seed step (full attention, first top-K)
  const t0 = performance.now();
  for (let s = 1; s <= steps; s++) id = await model.decodeStep(id % 60, L - 1 + s, GREEDY_SAMPLING, s);
  const ms = (performance.now() - t0) / steps;
  return { ms, stats: await model.attentionStats() };
}

function predictedRatio(shape: SyntheticShape, f16: boolean, L: number, stats: AttentionStats | undefined) {
  const w = decodeWeightBytes(shape, f16);
  const kv = shape.numLayers * kvBytesPerPositionPerLayer(shape, f16);
  const read = stats ? stats.meanPositionsRead : L;
  const full = stats ? stats.meanPositionsFull : L;
  return (w + kv * read) / (w + kv * full);
}

async function runShape(bench: BenchContext, shape: SyntheticShape, contexts: number[], steps: number) {
  const ctx = bench.gpu;
  const rows: BenchRow[] = [];
  const weights = syntheticWeights(shape, ctx.f16);
  for (const L of contexts) {
    const config = syntheticConfig(shape, L + steps + 16, ctx.f16);
    let model: GpuModel;
    try {
      model = await GpuModel.create(ctx, config, weights, { contextWindow: L + steps + 16, prefillChunk: 64 });
    } catch (e) {
      bench.log(`attention ${shape.name} L=${L}: ${(e as Error).message}`);
      continue;
    }
    try {
      fillKv(model, L - 1);
      const results: Record<string, { ms: number; stats?: AttentionStats }> = {};
      for (const [name, policy] of Object.entries(policies(L))) {
        await timePolicy(model, L, policy, 2); // warm-up: pipelines compiled, buffers touched
        results[name] = await timePolicy(model, L, policy, steps);
        bench.log(`  ${shape.name} L=${L} ${name}: ${results[name].ms.toFixed(2)} ms/step`);
      }
      const full = results.full;
      for (const [name, r] of Object.entries(results)) {
        rows.push({
          model: shape.name,
          context: L,
          policy: name,
          ms_per_step: r.ms,
          ratio_to_full: r.ms / full.ms,
          predicted_ratio: predictedRatio(shape, ctx.f16, L, r.stats),
          positions_read: r.stats?.meanPositionsRead ?? null,
          ms_full_step: r.stats?.msPerFullStep ?? null,
          ms_recycled_step: r.stats && r.stats.msPerRecycledStep > 0 ? r.stats.msPerRecycledStep : null,
        });
      }
    } finally {
      model.dispose();
    }
  }
  return rows;
}

const section: BenchSection = {
  name: 'attention',
  description: 'decode step time per attention policy (full / recycled / streaming) at 2K-32K, ratio to full',
  order: 30,
  async run(bench): Promise<BenchRow[]> {
    const cpu = bench.cpuAdapter && !bench.large;
    const contexts = cpu ? [1024, 2048] : [2048, 4096, 8192, 16384, 32768];
    const steps = cpu ? 10 : 30;
    const rows = await runShape(bench, SMALL, contexts, steps);
    if (!cpu) rows.push(...(await runShape(bench, LLAMA_1B, contexts, steps)));
    else bench.log('attention: the 1B-shaped model runs with --large or on a real GPU');
    return rows;
  },
};

export default section;
