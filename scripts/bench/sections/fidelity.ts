// Fast mode's evidence, part 2: answer accuracy and attention-mass recall on the trained retrieval-llama fixture, for
// full attention, recycled (fixed and dynamic schedules), StreamingLLM and SnapKV at the same K = L/8.
// Prompts: core/testing/retrievalTask.ts (the fixture's task format; 4 needles, target at depths 0.1..0.95).

import { GpuModel } from '../../../core/engine/gpuModel';
import { GREEDY_SAMPLING } from '../../../core/engine/runner';
import type { AttentionPolicy } from '../../../core/engine/types';
import { loadModel } from '../../../core/model/load';
import { DirSource } from '../../../core/node/dirSource';
import { PROJECT_ROOT } from '../../../core/node/vulkanDrivers';
import { retrievalEvalSet, VALUE_TOKENS } from '../../../core/testing/retrievalTask';
import type { BenchRow, BenchSection } from '../sections';

/** Decode past the 4 answer tokens so that a stride-10 schedule takes a refresh step (recall is measured there). */
const STEPS = 12;

function policies(L: number): Record<string, AttentionPolicy> {
  const k = { count: L / 8 };
  return {
    full: { kind: 'full' },
    'recycled S=10': { kind: 'recycled', k, stride: 10, measureRecall: true },
    'recycled dynamic QC=5 s=0.9': {
      kind: 'recycled',
      k,
      stride: 1000,
      dynamic: { qc: 5, sim: 0.9 },
      measureRecall: true,
    },
    streaming: { kind: 'streaming', k },
    snapkv: { kind: 'snapkv', k, measureRecall: true },
  };
}

const section: BenchSection = {
  name: 'fidelity',
  description: 'retrieval accuracy and attention-mass recall per policy on the trained retrieval-llama fixture',
  order: 40,
  async run(bench): Promise<BenchRow[]> {
    const cpu = bench.cpuAdapter && !bench.large;
    const lengths = cpu ? [512, 1024] : [512, 1024, 2048, 4096, 8192];
    const n = cpu ? 5 : 10;
    const m = await loadModel(new DirSource(`${PROJECT_ROOT}/tests/fixtures/retrieval-llama`));
    const rows: BenchRow[] = [];
    for (const L of lengths) {
      const model = await GpuModel.create(bench.gpu, m.config, m.weights, { contextWindow: L + STEPS + 8 });
      const prompts = retrievalEvalSet(L, n, 2026);
      const tally: Record<string, { correct: number; first: number; recall: number[] }> = {};
      try {
        for (const p of prompts) {
          await model.prefill(p.ids.slice(0, -1), 0);
          for (const [name, policy] of Object.entries(policies(L))) {
            model.beginGeneration(policy);
            const out: number[] = [];
            let id = p.ids[p.ids.length - 1];
            for (let s = 0; s < STEPS; s++) {
              id = await model.decodeStep(id, p.ids.length - 1 + s, GREEDY_SAMPLING, s);
              out.push(id);
            }
            const stats = await model.attentionStats();
            tally[name] ??= { correct: 0, first: 0, recall: [] };
            const t = tally[name];
            if (out.slice(0, VALUE_TOKENS).join() === p.answer.join()) t.correct++;
            if (out[0] === p.answer[0]) t.first++;
            if (stats?.attentionMassRecall != null) t.recall.push(stats.attentionMassRecall);
          }
        }
      } finally {
        model.dispose();
      }
      bench.log(
        `  fidelity L=${L}: ${Object.entries(tally)
          .map(([k, t]) => `${k} ${t.correct}/${n}`)
          .join(', ')}`,
      );
      for (const [name, t] of Object.entries(tally)) {
        rows.push({
          context: L,
          K: L / 8,
          policy: name,
          prompts: n,
          accuracy: t.correct / n,
          first_token_acc: t.first / n,
          attention_mass_recall: t.recall.length ? t.recall.reduce((a, b) => a + b, 0) / t.recall.length : null,
        });
      }
    }
    return rows;
  },
};

export default section;
