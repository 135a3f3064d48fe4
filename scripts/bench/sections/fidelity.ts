// Fast mode's evidence, part 2: what each attention policy keeps of full attention's output.
//   single-needle  greedy retrieval on the trained retrieval-llama fixture (answered from the top-K of the prompt);
//   multi-query    the fixture's multi-query task (multiquery.py's cases, teacher-forced): queries B-D need the
//                  top-K to be refreshed during decode; beside each row the numpy reference's accuracy on the same
//                  cases and the share of layer-steps that ran full (the refresh's cost);
//   nll            teacher-forced NLL of stories260k (a real TinyStories model) on 200-token continuations of
//                  256-token stories drawn from the model itself, per policy against full.
// Every policy at K = L/8 of the prompt length; the dynamic schedule at the model family's threshold (0.85, Llama).

import { readFileSync } from 'node:fs';
import { GpuModel } from '../../../core/engine/gpuModel';
import { GREEDY_SAMPLING } from '../../../core/engine/runner';
import { runScoring } from '../../../core/engine/scoring';
import type { AttentionPolicy } from '../../../core/engine/types';
import { loadModel } from '../../../core/model/load';
import { DirSource } from '../../../core/node/dirSource';
import { PROJECT_ROOT } from '../../../core/node/vulkanDrivers';
import { MULTI_QUERY_POLICIES, multiQueryScore, parseMultiQueryCases } from '../../../core/testing/multiQueryTask';
import { retrievalEvalSet, VALUE_TOKENS } from '../../../core/testing/retrievalTask';
import { sampleStory } from '../../../core/testing/storySample';
import type { BenchContext, BenchRow, BenchSection } from '../sections';

const RETRIEVAL = `${PROJECT_ROOT}/tests/fixtures/retrieval-llama`;
const STORIES = `${PROJECT_ROOT}/tests/fixtures/stories260k`;

/** Decode past the 4 answer tokens so that a stride-10 schedule takes a refresh step (recall is measured there). */
const STEPS = 12;

function singleNeedlePolicies(L: number): Record<string, AttentionPolicy> {
  const k = { count: L / 8 };
  return {
    full: { kind: 'full' },
    'recycled S=10': { kind: 'recycled', k, stride: 10, measureRecall: true },
    'dynamic QC=5': { kind: 'recycled', k, dynamic: { qc: 5 }, measureRecall: true },
    streaming: { kind: 'streaming', k },
    snapkv: { kind: 'snapkv', k, measureRecall: true },
  };
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN);

async function singleNeedle(bench: BenchContext, m: Awaited<ReturnType<typeof loadModel>>): Promise<BenchRow[]> {
  const cpu = bench.cpuAdapter && !bench.large;
  const lengths = cpu ? [512, 1024] : [512, 1024, 2048, 4096, 8192];
  const n = cpu ? 5 : 10;
  const rows: BenchRow[] = [];
  for (const L of lengths) {
    const model = await GpuModel.create(bench.gpu, m.config, m.weights, { contextWindow: L + STEPS + 8 });
    const tally: Record<string, { correct: number; first: number; recall: number[]; attended: number[] }> = {};
    try {
      for (const p of retrievalEvalSet(L, n, 2026)) {
        await model.prefill(p.ids.slice(0, -1), 0);
        for (const [name, policy] of Object.entries(singleNeedlePolicies(L))) {
          model.beginGeneration(policy);
          const out: number[] = [];
          let id = p.ids[p.ids.length - 1];
          for (let s = 0; s < STEPS; s++) {
            id = await model.decodeStep(id, p.ids.length - 1 + s, GREEDY_SAMPLING, s);
            out.push(id);
          }
          const stats = await model.attentionStats();
          tally[name] ??= { correct: 0, first: 0, recall: [], attended: [] };
          const t = tally[name];
          if (out.slice(0, VALUE_TOKENS).join() === p.answer.join()) t.correct++;
          if (out[0] === p.answer[0]) t.first++;
          if (stats?.attentionMassRecall != null) t.recall.push(stats.attentionMassRecall);
          if (stats?.attentionMassRecallAttended != null) t.attended.push(stats.attentionMassRecallAttended);
        }
      }
    } finally {
      model.dispose();
    }
    bench.log(
      `  single-needle L=${L}: ${Object.entries(tally)
        .map(([k, t]) => `${k} ${t.correct}/${n}`)
        .join(', ')}`,
    );
    for (const [name, t] of Object.entries(tally)) {
      rows.push({
        task: 'single-needle',
        context: L,
        K: L / 8,
        policy: name,
        n,
        accuracy: t.correct / n,
        first_token_acc: t.first / n,
        attention_mass_recall: t.recall.length ? mean(t.recall) : null,
        recall_attended: t.attended.length ? mean(t.attended) : null,
      });
    }
  }
  return rows;
}

async function multiQuery(bench: BenchContext, m: Awaited<ReturnType<typeof loadModel>>): Promise<BenchRow[]> {
  const cases = parseMultiQueryCases(readFileSync(`${RETRIEVAL}/multiquery_cases.jsonl`, 'utf8'));
  const perLength = bench.cpuAdapter && !bench.large ? 10 : 20;
  const rows: BenchRow[] = [];
  for (const L of [1024, 2048]) {
    const atL = cases.filter((c) => c.L === L).slice(0, perLength);
    const model = await GpuModel.create(bench.gpu, m.config, m.weights, { contextWindow: L + 32 });
    const tally: Record<
      string,
      { hits: boolean[]; numpyHits: boolean[]; queries: boolean[][]; full: number; layerSteps: number }
    > = {};
    try {
      for (const c of atL) {
        const cached = { ids: [] as number[] };
        for (const [name, policy] of Object.entries(MULTI_QUERY_POLICIES)) {
          const r = await runScoring(
            model,
            cached,
            { promptIds: c.promptIds, continuationIds: c.continuationIds },
            { attention: policy },
          );
          tally[name] ??= { hits: [], numpyHits: [], queries: [], full: 0, layerSteps: 0 };
          const t = tally[name];
          const s = multiQueryScore(c, r.predictions);
          t.hits.push(...s.hits);
          t.queries.push(s.queries);
          t.numpyHits.push(...multiQueryScore(c, c.numpy[name].predictions).hits);
          t.full += r.stats.fullLayerSteps;
          t.layerSteps += r.stats.layerSteps;
        }
      }
    } finally {
      model.dispose();
    }
    const acc = (h: boolean[]) => h.filter(Boolean).length / h.length;
    bench.log(
      `  multi-query L=${L} (${atL.length} cases): ${Object.entries(tally)
        .map(([k, t]) => `${k} ${acc(t.hits).toFixed(3)}`)
        .join(', ')}`,
    );
    for (const [name, t] of Object.entries(tally)) {
      rows.push({
        task: 'multi-query',
        context: L,
        K: L / 8,
        policy: name,
        n: atL.length,
        accuracy: acc(t.hits),
        numpy_accuracy: acc(t.numpyHits),
        query_acc: [0, 1, 2, 3].map((q) => acc(t.queries.map((qs) => qs[q])).toFixed(2)).join(' / '),
        full_layer_share: t.full / t.layerSteps,
      });
    }
  }
  return rows;
}

async function storiesNll(bench: BenchContext): Promise<BenchRow[]> {
  const m = await loadModel(new DirSource(STORIES));
  const PROMPT = 256;
  const CONTINUATION = 200;
  const stories = [1, 2, 3].map((seed) => sampleStory(m.config, m.weights, PROMPT + CONTINUATION, seed));
  const model = await GpuModel.create(bench.gpu, m.config, m.weights, { contextWindow: PROMPT + CONTINUATION });
  const tally: Record<string, { nll: number[]; full: number; layerSteps: number }> = {};
  try {
    for (const story of stories) {
      const cached = { ids: [] as number[] };
      for (const [name, policy] of Object.entries(MULTI_QUERY_POLICIES)) {
        const r = await runScoring(
          model,
          cached,
          { promptIds: story.slice(0, PROMPT), continuationIds: story.slice(PROMPT) },
          { attention: policy },
        );
        tally[name] ??= { nll: [], full: 0, layerSteps: 0 };
        tally[name].nll.push(r.nll);
        tally[name].full += r.stats.fullLayerSteps;
        tally[name].layerSteps += r.stats.layerSteps;
      }
    }
  } finally {
    model.dispose();
  }
  const fullNll = mean(tally.full.nll);
  bench.log(
    `  stories260k NLL: ${Object.entries(tally)
      .map(([k, t]) => `${k} ${mean(t.nll).toFixed(4)}`)
      .join(', ')}`,
  );
  return Object.entries(tally).map(([name, t]) => ({
    task: 'nll stories260k',
    context: PROMPT,
    K: PROMPT / 8,
    policy: name,
    n: stories.length,
    nll: mean(t.nll),
    nll_vs_full: mean(t.nll) - fullNll,
    full_layer_share: t.full / t.layerSteps,
  }));
}

const section: BenchSection = {
  name: 'fidelity',
  description:
    'per policy: single-needle retrieval, multi-query token accuracy (vs numpy) and teacher-forced NLL on stories260k',
  order: 40,
  async run(bench): Promise<BenchRow[]> {
    const retrieval = await loadModel(new DirSource(RETRIEVAL));
    return [
      ...(await singleNeedle(bench, retrieval)),
      ...(await multiQuery(bench, retrieval)),
      ...(await storiesNll(bench)),
    ];
  },
};

export default section;
