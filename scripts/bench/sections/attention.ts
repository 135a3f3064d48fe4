// Fast mode's evidence, part 1: decode step time under each attention policy at long contexts (the engine's
// pipelined loop), as a ratio to full attention in the same run, next to the ratio the engine's bytes model predicts
// (core/engine/fastMode.ts: weights + attention bytes per step, refresh steps included) -- the same model that decides
// fast mode's break-even. Summary keys: fastToFull, fastPredicted, refreshToFullStep.
// The KV cache is filled with synthetic values instead of running a long prefill (timing does not depend on them).

import { predictedStepRatio } from '../../../core/engine/fastMode';
import { GpuModel } from '../../../core/engine/gpuModel';
import type { AttentionPolicy, AttentionStats } from '../../../core/engine/types';
import { fillKv, timeDecode } from '../decodeTiming';
import type { BenchContext, BenchRow, BenchSection } from '../sections';
import { LLAMA_1B, SMALL, type SyntheticShape, syntheticConfig, syntheticWeights } from '../syntheticModel';

const STRIDE = 10;

function policies(L: number, cpuLarge: boolean): Record<string, AttentionPolicy> {
  const recycled: AttentionPolicy = { kind: 'recycled', k: { count: Math.floor(L / 8) }, stride: STRIDE };
  // A refresh on every step: the cost of one full step with the top-K (refreshToFullStep).
  const refresh: AttentionPolicy = { kind: 'recycled', k: { count: Math.floor(L / 8) }, stride: 1 };
  if (cpuLarge) return { full: { kind: 'full' }, 'recycled K=L/8': recycled, 'refresh every step': refresh };
  return {
    full: { kind: 'full' },
    'recycled K=L/8': recycled,
    'recycled K=L/16': { kind: 'recycled', k: { count: Math.floor(L / 16) }, stride: STRIDE },
    'streaming K=L/8': { kind: 'streaming', k: { count: Math.floor(L / 8) } },
    'refresh every step': refresh,
  };
}

async function runShape(
  bench: BenchContext,
  shape: SyntheticShape,
  contexts: number[],
  steps: number,
  cpuLarge: boolean,
) {
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
      const results: Record<string, { ms: number; stats?: AttentionStats; predicted: number }> = {};
      for (const [name, policy] of Object.entries(policies(L, cpuLarge))) {
        await timeDecode(model, L, policy, 2); // warm-up: pipelines compiled, buffers touched
        const t = await timeDecode(model, L, policy, steps);
        const predicted = predictedStepRatio(model.decodeBytes, policy, L + steps / 2);
        results[name] = { ms: t.msPerStep, stats: await model.attentionStats(), predicted };
        bench.log(
          `  ${shape.name} L=${L} ${name}: ${t.msPerStep.toFixed(2)} ms/step (predicted ${predicted.toFixed(3)})`,
        );
      }
      const full = results.full;
      for (const [name, r] of Object.entries(results)) {
        rows.push({
          model: shape.name,
          context: L,
          policy: name,
          ms_per_step: r.ms,
          ratio_to_full: r.ms / full.ms,
          predicted_ratio: r.predicted,
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

/** fastToFull / fastPredicted per context, refreshToFullStep at the longest context (the 1B shape's rows). */
function summarize(bench: BenchContext, rows: BenchRow[]): void {
  const of = (policy: string) => rows.filter((r) => r.model === LLAMA_1B.name && r.policy === policy);
  const fast = of('recycled K=L/8');
  if (fast.length === 0) return;
  bench.summary.fastToFull = Object.fromEntries(fast.map((r) => [String(r.context), r.ratio_to_full]));
  bench.summary.fastPredicted = Object.fromEntries(fast.map((r) => [String(r.context), r.predicted_ratio]));
  const refresh = of('refresh every step');
  const longest = refresh.reduce<BenchRow | undefined>(
    (a, r) => (!a || (r.context as number) > (a.context as number) ? r : a),
    undefined,
  );
  if (longest) bench.summary.refreshToFullStep = longest.ratio_to_full;
}

const section: BenchSection = {
  name: 'attention',
  description: 'decode step time per attention policy (full / recycled / streaming) at 1K-32K, ratio to full',
  order: 30,
  async run(bench): Promise<BenchRow[]> {
    const cpu = bench.cpuAdapter && !bench.large;
    const cpuLarge = bench.cpuAdapter && bench.large;
    if (cpu) {
      bench.log('attention: the 1B-shaped model runs with --large or on a real GPU');
      return runShape(bench, SMALL, [1024, 2048], 10, false);
    }
    if (cpuLarge) {
      // On a CPU adapter --large runs the 1B shape only, to 8K, with one schedule period per policy.
      const rows = await runShape(bench, LLAMA_1B, [1024, 2048, 4096, 8192], STRIDE, true);
      summarize(bench, rows);
      return rows;
    }
    const contexts = [2048, 4096, 8192, 16384, 32768];
    const rows = await runShape(bench, SMALL, contexts, 30, false);
    rows.push(...(await runShape(bench, LLAMA_1B, contexts, 30, false)));
    summarize(bench, rows);
    return rows;
  },
};

export default section;
