// Fast mode's evidence, part 1: decode step time under each attention policy at long contexts (the engine's
// pipelined loop), as a ratio to full attention in the same run, next to the ratio the engine's bytes model predicts
// (core/engine/fastMode.ts: weights + attention bytes per step, refresh steps included) -- the same model that decides
// fast mode's break-even. Summary keys: fastToFull, fastPredicted, refreshToFullStep.
// The KV cache is filled with synthetic values instead of running a long prefill (timing does not depend on them).
// The policies are timed in alternation (round r: each policy for a whole number of schedule periods, in turn), and
// each figure is the median over rounds: step time = median of the round means, ratio to full = median of the
// per-round ratios, so a ratio compares seconds close together on a machine whose load changes by the minute.

import { fullStepBytes, predictedStepRatio } from '../../../core/engine/fastMode';
import { GpuModel } from '../../../core/engine/gpuModel';
import type { AttentionPolicy, AttentionStats } from '../../../core/engine/types';
import { fillKv, summarizeRounds, timeDecode } from '../decodeTiming';
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

/** Rounds of alternation per context, and timed steps per policy in a round: a whole number of schedule periods
 * for a fixed-stride recycled policy (its round holds refresh steps in the share the schedule gives them), fewer for
 * the others on a CPU adapter, where a step of the 1B shape takes a second or more. */
function roundsPlan(cpuLarge: boolean): { rounds: number; steps: (policy: AttentionPolicy) => number } {
  if (!cpuLarge) return { rounds: 5, steps: () => 3 * STRIDE };
  return {
    rounds: 3,
    steps: (p) => (p.kind === 'recycled' && (p.stride ?? 1) > 1 ? (p.stride ?? 1) : Math.ceil(STRIDE / 2)),
  };
}

/** `npm run bench -- copy matvec runtime attention --large` on a CPU adapter must end within 20 minutes (#9): from
 * the process start (performance.now()'s origin), rounds after a context's first stop at this mark. */
const CPU_LARGE_LIMIT_MS = 19 * 60_000;

/** Context i's share of the time left: in proportion to the bytes a full step moves there (the bytes model). */
export function contextBudgetMs(leftMs: number, stepBytes: number[], i: number): number {
  const rest = stepBytes.slice(i).reduce((a, b) => a + b, 0);
  return rest > 0 ? (Math.max(0, leftMs) * stepBytes[i]) / rest : 0;
}

async function runShape(bench: BenchContext, shape: SyntheticShape, contexts: number[], cpuLarge: boolean) {
  const ctx = bench.gpu;
  const rows: BenchRow[] = [];
  const { rounds: maxRounds, steps } = roundsPlan(cpuLarge);
  const weights = syntheticWeights(shape, ctx.f16);
  for (const [ci, L] of contexts.entries()) {
    const named = Object.entries(policies(L, cpuLarge));
    const maxSteps = Math.max(...named.map(([, p]) => steps(p)));
    const capacity = L + maxSteps + 16;
    const config = syntheticConfig(shape, capacity, ctx.f16);
    let model: GpuModel;
    try {
      model = await GpuModel.create(ctx, config, weights, { contextWindow: capacity, prefillChunk: 64 });
    } catch (e) {
      bench.log(`attention ${shape.name} L=${L}: ${(e as Error).message}`);
      continue;
    }
    try {
      const started = performance.now();
      // On a CPU adapter with --large: this context's share of the time left (at least one round runs).
      const budgetMs = cpuLarge
        ? contextBudgetMs(
            CPU_LARGE_LIMIT_MS - started,
            contexts.map((c) => fullStepBytes(model.decodeBytes, c)),
            ci,
          )
        : Number.POSITIVE_INFINITY;
      fillKv(model, L - 1);
      // Warm-up on a GPU (one step per policy). Every timing starts after its untimed seed step, which compiles the
      // pipelines and touches the buffers: on a CPU adapter, where a step takes seconds, that is the warm-up.
      if (!cpuLarge) for (const [, policy] of named) await timeDecode(model, L, policy, 1);
      // Round r times every policy in turn, so the ratios come from neighbouring seconds.
      const roundTimes: Record<string, number>[] = [];
      const stats: Record<string, AttentionStats | undefined> = {};
      let slowestRoundMs = 0;
      for (let r = 0; r < maxRounds; r++) {
        const elapsed = performance.now() - started;
        if (r > 0 && elapsed + slowestRoundMs > budgetMs) {
          bench.log(`  ${shape.name} L=${L}: ${r} round(s); another would pass this context's time budget`);
          break;
        }
        const roundStart = performance.now();
        const round: Record<string, number> = {};
        for (const [name, policy] of named) {
          const t = await timeDecode(model, L, policy, steps(policy));
          round[name] = t.msPerStep;
          stats[name] = await model.attentionStats();
        }
        roundTimes.push(round);
        slowestRoundMs = Math.max(slowestRoundMs, performance.now() - roundStart);
        bench.log(
          `  ${shape.name} L=${L} round ${r + 1}/${maxRounds}: ` +
            named.map(([n]) => `${n} ${round[n].toFixed(1)}`).join(', ') +
            ' ms/step',
        );
      }
      const results = summarizeRounds(roundTimes, 'full');
      for (const [name, policy] of named) {
        const r = results[name];
        const s = stats[name];
        rows.push({
          model: shape.name,
          context: L,
          policy: name,
          ms_per_step: r.ms,
          ratio_to_full: r.ratio,
          predicted_ratio: predictedStepRatio(model.decodeBytes, policy, L + steps(policy) / 2),
          rounds: roundTimes.length,
          steps_per_round: steps(policy),
          rounds_ms: r.roundsMs.map((ms) => ms.toFixed(1)).join(' '),
          positions_read: s?.meanPositionsRead ?? null,
          ms_full_step: s?.msPerFullStep ?? null,
          ms_recycled_step: s && s.msPerRecycledStep > 0 ? s.msPerRecycledStep : null,
        });
      }
      bench.log(`  ${shape.name} L=${L}: ${((performance.now() - started) / 1000).toFixed(0)} s`);
    } finally {
      model.dispose();
    }
  }
  return rows;
}

/** Summary keys of #9 from this section's rows (the 1B shape's): fastToFull and fastPredicted keyed by context,
 * refreshToFullStep at the longest context measured. Empty when the 1B shape did not run. */
export function attentionSummary(rows: BenchRow[]): Record<string, unknown> {
  const of = (policy: string) => rows.filter((r) => r.model === LLAMA_1B.name && r.policy === policy);
  const fast = of('recycled K=L/8');
  if (fast.length === 0) return {};
  const summary: Record<string, unknown> = {
    fastToFull: Object.fromEntries(fast.map((r) => [String(r.context), r.ratio_to_full])),
    fastPredicted: Object.fromEntries(fast.map((r) => [String(r.context), r.predicted_ratio])),
  };
  const refresh = of('refresh every step');
  const longest = refresh.reduce<BenchRow | undefined>(
    (a, r) => (!a || (r.context as number) > (a.context as number) ? r : a),
    undefined,
  );
  if (longest) summary.refreshToFullStep = longest.ratio_to_full;
  return summary;
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
      return runShape(bench, SMALL, [1024, 2048], false);
    }
    if (cpuLarge) {
      // On a CPU adapter --large runs the 1B shape only, to 8K, three policies, one schedule period per round.
      const rows = await runShape(bench, LLAMA_1B, [1024, 2048, 4096, 8192], true);
      Object.assign(bench.summary, attentionSummary(rows));
      return rows;
    }
    const contexts = [2048, 4096, 8192, 16384, 32768];
    const rows = await runShape(bench, SMALL, contexts, false);
    rows.push(...(await runShape(bench, LLAMA_1B, contexts, false)));
    Object.assign(bench.summary, attentionSummary(rows));
    return rows;
  },
};

export default section;
