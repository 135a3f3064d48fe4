// Teacher-forced NLL of stories260k per attention policy on the plain-TS reference backend (the same stories and
// policies as the GPU bench's `fidelity` NLL rows; the reference runs the same schedules, see tests/unit/scoring.test.ts).
//   npx tsx scripts/nll-reference.ts 1 2 3      (story seeds; prints a Markdown table)
import { ReferenceRunner } from '../core/engine/referenceRunner';
import { runScoring } from '../core/engine/scoring';
import { loadModel } from '../core/model/load';
import { DirSource } from '../core/node/dirSource';
import { MULTI_QUERY_POLICIES } from '../core/testing/multiQueryTask';
import { sampleStory } from '../core/testing/storySample';

const m = await loadModel(new DirSource('tests/fixtures/stories260k'));
const seeds = process.argv.slice(2).map(Number);
const tally: Record<string, { nll: number[]; full: number; steps: number; recall: number[]; attended: number[] }> = {};
for (const seed of seeds) {
  const story = sampleStory(m.config, m.weights, 456, seed);
  const runner = new ReferenceRunner(m.config, m.weights, 456);
  const cached = { ids: [] as number[] };
  for (const [name, policy] of Object.entries(MULTI_QUERY_POLICIES)) {
    const r = await runScoring(
      runner,
      cached,
      { promptIds: story.slice(0, 256), continuationIds: story.slice(256) },
      { attention: policy },
    );
    tally[name] ??= { nll: [], full: 0, steps: 0, recall: [], attended: [] };
    tally[name].nll.push(r.nll);
    tally[name].full += r.stats.fullLayerSteps;
    tally[name].steps += r.stats.layerSteps;
    if (r.stats.attentionMassRecall != null) tally[name].recall.push(r.stats.attentionMassRecall);
    if (r.stats.attentionMassRecallAttended != null) tally[name].attended.push(r.stats.attentionMassRecallAttended);
  }
}
const mean = (x: number[]) => x.reduce((a, b) => a + b, 0) / x.length;
const full = mean(tally.full.nll);
console.log(
  '| policy | NLL | vs full | full share | recall (selection) | recall (attended) |\n|---|---|---|---|---|---|',
);
for (const [name, t] of Object.entries(tally)) {
  console.log(
    `| ${name} | ${mean(t.nll).toFixed(4)} | ${(mean(t.nll) - full).toFixed(4)} | ${(t.full / t.steps).toFixed(3)} | ${t.recall.length ? mean(t.recall).toFixed(3) : ''} | ${t.attended.length ? mean(t.attended).toFixed(3) : ''} |`,
  );
}
