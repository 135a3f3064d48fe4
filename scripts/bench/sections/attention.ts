// Fast mode's evidence, part 1: decode step time under each attention policy at long contexts (the engine's
// pipelined loop), as a ratio to full attention in the same run, next to the ratio the engine's bytes model predicts
// (core/engine/fastMode.ts: weights + attention bytes per step, refresh steps included) -- the same model that decides
// fast mode's break-even. Summary keys: fastToFull, fastPredicted, refreshToFullStep.
// The KV cache is filled with synthetic values instead of running a long prefill (timing does not depend on them).
// The policies are timed in alternation (round r: each policy for a whole number of schedule periods, in turn), and
// each figure is the median over rounds: step time = median of the round means, ratio to full = median of the
// per-round ratios, so a ratio compares seconds close together on a machine whose load changes by the minute.

import { predictedStepRatio } from '../../../core/engine/fastMode';
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
 * the others on a CPU adapter, where a step of the 1B shape takes a second or more. On a CPU adapter up to 7 rounds
 * (an odd count: the median is a measured round): single rounds on the shared machine differ up to 1.6x in their
 * ratios, and a round of the four contexts takes about a minute at low load; the time limit below cuts rounds short
 * under load. */
function roundsPlan(cpuLarge: boolean): { rounds: number; steps: (policy: AttentionPolicy) => number } {
  if (!cpuLarge) return { rounds: 5, steps: () => 3 * STRIDE };
  return {
    rounds: 7,
    steps: (p) => (p.kind === 'recycled' && (p.stride ?? 1) > 1 ? (p.stride ?? 1) : Math.ceil(STRIDE / 2)),
  };
}

/** `npm run bench -- copy matvec runtime attention --large` on a CPU adapter must end within 20 minutes (#9): counted
 * from the process start (performance.now()'s origin), after the first round no context's turn starts that its
 * previous turn's step times say would end past this mark. */
const CPU_LARGE_LIMIT_MS = 19 * 60_000;

/**
 * One model whose cache holds the longest context (filled with synthetic KV), timed at every context: a decode step
 * at context L reads L positions whatever the capacity (every dispatch is sized by the KV length), as in the product,
 * whose cache is sized for the model's context window. Round r visits every context, longest first, and at each every
 * policy in turn (the order rotated by one per round). On a CPU adapter the first round is whole; later rounds skip a context whose turn would end past the
 * time limit, so the longest contexts (the figures #9 holds to its targets) get the extra rounds first.
 */
async function runShape(bench: BenchContext, shape: SyntheticShape, contexts: number[], cpuLarge: boolean) {
  const ctx = bench.gpu;
  const rows: BenchRow[] = [];
  const { rounds: maxRounds, steps } = roundsPlan(cpuLarge);
  const plans = [...contexts].sort((a, b) => b - a).map((L) => ({ L, named: Object.entries(policies(L, cpuLarge)) }));
  const longest = Math.max(...contexts);
  const maxSteps = Math.max(...plans.flatMap((p) => p.named.map(([, policy]) => steps(policy))));
  const capacity = longest + maxSteps + 16;
  let model: GpuModel;
  try {
    model = await GpuModel.create(ctx, syntheticConfig(shape, capacity, ctx.f16), syntheticWeights(shape, ctx.f16), {
      contextWindow: capacity,
      prefillChunk: 64,
    });
  } catch (e) {
    bench.log(`attention ${shape.name} (capacity ${capacity}): ${(e as Error).message}`);
    return rows;
  }
  try {
    fillKv(model, longest - 1);
    // Warm-up on a GPU (one step per policy and context). Every timing starts after its untimed seed step, which
    // compiles the pipelines and touches the buffers: on a CPU adapter, where a step takes seconds, that is the warm-up.
    if (!cpuLarge)
      for (const { L, named } of plans) for (const [, policy] of named) await timeDecode(model, L, policy, 1);
    const roundTimes = new Map<number, Record<string, number>[]>(contexts.map((L) => [L, []]));
    const stats = new Map<number, Record<string, AttentionStats | undefined>>(contexts.map((L) => [L, {}]));
    const turnMs = new Map<number, number>(); // each context's next turn (all its policies once), predicted
    for (let r = 0; r < maxRounds; r++) {
      const roundStart = performance.now();
      for (const { L, named } of plans) {
        if (r > 0 && cpuLarge && performance.now() + (turnMs.get(L) ?? 0) > CPU_LARGE_LIMIT_MS) {
          bench.log(`  ${shape.name} L=${L}: ${r} round(s); another would end past the time limit`);
          continue;
        }
        const round: Record<string, number> = {};
        // The policies' order rotates by round: none is always the first after a change of context.
        for (const [name, policy] of named.map((_, i) => named[(i + r) % named.length])) {
          const t = await timeDecode(model, L, policy, steps(policy));
          round[name] = t.msPerStep;
          (stats.get(L) as Record<string, AttentionStats | undefined>)[name] = await model.attentionStats();
        }
        roundTimes.get(L)?.push(round);
        // The next turn's cost: its steps (the seed counted as one) at this turn's step times. The first turn's wall
        // time is no guide: it compiles the top-K pipelines for this context's K (tens of seconds on lavapipe).
        turnMs.set(
          L,
          named.map(([name, policy]) => (steps(policy) + 1) * round[name]).reduce((a, b) => a + b, 0),
        );
        bench.log(
          `  ${shape.name} L=${L} round ${r + 1}/${maxRounds}: ` +
            named.map(([n]) => `${n} ${round[n].toFixed(1)}`).join(', ') +
            ' ms/step',
        );
      }
      bench.log(`  ${shape.name} round ${r + 1}: ${((performance.now() - roundStart) / 1000).toFixed(0)} s`);
    }
    for (const { L, named } of [...plans].sort((a, b) => a.L - b.L)) {
      const rounds = roundTimes.get(L) as Record<string, number>[];
      const results = summarizeRounds(rounds, 'full');
      for (const [name, policy] of named) {
        const r = results[name];
        const s = stats.get(L)?.[name];
        rows.push({
          model: shape.name,
          context: L,
          policy: name,
          ms_per_step: r.ms,
          ratio_to_full: r.ratio,
          predicted_ratio: predictedStepRatio(model.decodeBytes, policy, L + steps(policy) / 2),
          rounds: rounds.length,
          steps_per_round: steps(policy),
          rounds_ms: r.roundsMs.map((ms) => ms.toFixed(1)).join(' '),
          positions_read: s?.meanPositionsRead ?? null,
          ms_full_step: s?.msPerFullStep ?? null,
          ms_recycled_step: s && s.msPerRecycledStep > 0 ? s.msPerRecycledStep : null,
        });
      }
    }
  } finally {
    model.dispose();
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
