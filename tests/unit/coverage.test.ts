import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { chunkText } from '../../core/document/chunk.ts';
import { coverageFromTokens, coverageOf, describeCoverage } from '../../core/document/coverage.ts';
import { describeStep, type MapStep, planMapReduce } from '../../core/document/mapReduce.ts';
import { runMapReduce } from '../../core/document/mapReduceRun.ts';
import { planDocumentPrompt } from '../../core/document/plan.ts';

const countTokens = (text: string) => (text.match(/[\p{L}\p{N}]+|[^\p{L}\p{N}\s]/gu) ?? []).length;
const northanger = readFileSync('tests/fixtures/texts/austen-northanger-abbey.txt', 'utf8');

describe('coverage', () => {
  it('is tokens used over tokens total', () => {
    const all = [{ tokens: 10 }, { tokens: 20 }, { tokens: 30 }, { tokens: 40 }];
    const c = coverageOf([all[0], all[1]], all);
    expect(c).toEqual({ usedTokens: 30, totalTokens: 100, fraction: 0.3, percent: 30, chunksUsed: 2, chunksTotal: 4 });
    expect(describeCoverage(c)).toBe('used 30% of the document (2 of 4 parts)');
    expect(coverageOf(all, all).percent).toBe(100);
    expect(describeCoverage(coverageOf(all, all))).toBe('used all of the document');
  });

  it('never shows 100% unless everything is used, nor 0% rounding up', () => {
    expect(coverageFromTokens(996, 1000, 9, 10).percent).toBe(99);
    expect(coverageFromTokens(634, 1000, 3, 10).percent).toBe(63);
    expect(coverageFromTokens(0, 1000, 0, 10).percent).toBe(0);
    expect(() => coverageFromTokens(11, 10, 1, 1)).toThrow(/exceed/);
  });
});

describe('map-reduce plan', () => {
  const chunks = chunkText(northanger, { countTokens, maxTokens: 400 });
  const budget = 2000;
  // Uncapped here (the whole novel needs more than MAX_MAP_STEPS parts at this budget): the cap has its own test in
  // tests/unit/boundedWork.test.ts.
  const plan = planMapReduce(chunks, { budgetTokens: budget, summaryTokens: 200, maxMapSteps: 1000 });

  it('reads every chunk exactly once, in order, within the budget', () => {
    const maps = plan.steps.filter((s): s is MapStep => s.kind === 'map');
    expect(maps.length).toBe(plan.mapSteps);
    expect(maps.flatMap((s) => s.chunkIndices)).toEqual(chunks.map((c) => c.index));
    for (const s of maps) {
      expect(s.inputTokens).toBeLessThanOrEqual(budget);
      expect(s.inputTokens).toBe(s.chunkIndices.reduce((sum, i) => sum + chunks[i].tokens, 0));
    }
    // The map steps' source ranges cover 100% of the text's characters.
    let covered = 0;
    for (const s of maps) {
      expect(northanger.slice(covered, s.start).trim()).toBe('');
      covered = s.end;
    }
    expect(northanger.slice(covered).trim()).toBe('');
  });

  it('reduces level by level to one final step, each output used exactly once', () => {
    const used = new Map<number, number>();
    for (const s of plan.steps) {
      if (s.kind !== 'reduce') continue;
      // (200 + 16 label tokens) × 9 ≤ 2000 < × 10.
      expect(s.inputStepIds.length).toBeLessThanOrEqual(9);
      for (const id of s.inputStepIds) {
        expect(id).toBeLessThan(s.id);
        used.set(id, (used.get(id) ?? 0) + 1);
      }
    }
    for (const s of plan.steps) expect(used.get(s.id) ?? 0).toBe(s.id === plan.finalStepId ? 0 : 1);
    expect(plan.finalStepId).toBe(plan.steps.length - 1);
    expect(plan.reduceLevels).toBe(Math.ceil(Math.log(plan.mapSteps) / Math.log(9)));
    expect(describeStep(plan, 0)).toBe(`Summarizing part 1 of ${plan.mapSteps}`);
    expect(describeStep(plan, plan.finalStepId)).toBe('Writing the final summary');
  });

  it('never lets a map step exceed a tight budget (chunks close to half the budget)', () => {
    const tight = planMapReduce(chunks, { budgetTokens: 700, summaryTokens: 64, maxMapSteps: 1000 });
    for (const s of tight.steps) if (s.kind === 'map') expect(s.inputTokens).toBeLessThanOrEqual(700);
    expect(tight.mapSteps).toBeGreaterThan(chunks.length / 2);
  });

  it('needs no reduce when one map step holds everything, and refuses impossible budgets', () => {
    const small = chunkText('One paragraph.\n\nAnother one.', { countTokens, maxTokens: 50 });
    const one = planMapReduce(small, { budgetTokens: 500, summaryTokens: 100 });
    expect(one.steps.length).toBe(1);
    expect(one.finalStepId).toBe(0);
    expect(() => planMapReduce(chunks, { budgetTokens: 300, summaryTokens: 200 })).toThrow(/cannot hold two summaries/);
    expect(() => planMapReduce([], { budgetTokens: 300, summaryTokens: 100 })).toThrow(/no chunks/);
  });
});

describe('planDocumentPrompt', () => {
  it('passes a document that fits through unchanged, at 100%', () => {
    const text = northanger.slice(0, 3000);
    const plan = planDocumentPrompt({ text }, 5000, 'ask', 'Who is Catherine?', { countTokens });
    expect(plan.fits).toBe(true);
    if (!plan.fits) return;
    expect(plan.text).toBe(text);
    expect(plan.tokens).toBe(countTokens(text));
    expect(plan.coverage.percent).toBe(100);
  });

  it('summarize on a long document plans map-reduce over 100% of it', () => {
    const plan = planDocumentPrompt({ text: northanger }, 4000, 'summarize', null, { countTokens });
    if (plan.fits || plan.strategy !== 'map-reduce') throw new Error('expected a map-reduce plan');
    expect(plan.coverage.percent).toBe(100);
    expect(plan.coverage.totalTokens).toBe(plan.allChunks.reduce((s, c) => s + c.tokens, 0));
    const mapped = plan.plan.steps.flatMap((s) => (s.kind === 'map' ? s.chunkIndices : []));
    expect(mapped).toEqual(plan.allChunks.map((c) => c.index));
    // Default chunk size: budget / 8 = 500 tokens.
    for (const c of plan.allChunks) expect(c.tokens).toBeLessThanOrEqual(500);
  });

  it('rejects bad input with specific messages', () => {
    const opts = { countTokens };
    expect(() => planDocumentPrompt({ text: 'x' }, 10, 'ask', 'q', opts)).toThrow(/at least 64 tokens/);
    expect(() => planDocumentPrompt({ text: 'x' }, 100, 'ask', '  ', opts)).toThrow(/needs a question/);
    expect(() => planDocumentPrompt({ text: ' \n ' }, 100, 'summarize', null, opts)).toThrow(/no text/);
  });
});

describe('runMapReduce', () => {
  const chunks = chunkText(northanger.slice(0, 60_000), { countTokens, maxTokens: 300 });
  const plan = planMapReduce(chunks, { budgetTokens: 600, summaryTokens: 100 });

  it('feeds every chunk to a map step and every summary to the next level, reporting progress', async () => {
    const inputs = new Map<number, string>();
    const progress: string[] = [];
    const result = await runMapReduce(
      plan,
      chunks,
      async (input, step) => {
        inputs.set(step.id, input);
        return `S${step.id}`;
      },
      { onProgress: (p) => progress.push(`${p.done}/${p.total} ${p.label}`) },
    );
    expect(plan.reduceLevels).toBeGreaterThanOrEqual(2);
    expect(result.summary).toBe(`S${plan.finalStepId}`);
    expect(progress.length).toBe(plan.steps.length);
    expect(progress[0]).toBe(`0/${plan.steps.length} Summarizing part 1 of ${plan.mapSteps}`);
    expect(progress.at(-1)).toBe(`${plan.steps.length - 1}/${plan.steps.length} Writing the final summary`);
    // Map inputs, concatenated, are the whole text (modulo whitespace).
    const mapped = plan.steps.filter((s) => s.kind === 'map').map((s) => inputs.get(s.id)!);
    expect(mapped.join('').replace(/\s+/g, '')).toBe(northanger.slice(0, 60_000).replace(/\s+/g, ''));
    for (const s of plan.steps) {
      if (s.kind !== 'reduce') continue;
      const input = inputs.get(s.id)!;
      for (const id of s.inputStepIds) expect(input).toContain(`:\nS${id}`);
    }
    expect(inputs.get(plan.mapSteps)).toMatch(/^Part 1 of \d+:\nS0\n\nPart 2 of \d+:\nS1/);
  });

  it('stops when aborted', async () => {
    const controller = new AbortController();
    const run = runMapReduce(
      plan,
      chunks,
      async () => {
        controller.abort();
        return 'x';
      },
      { signal: controller.signal },
    );
    await expect(run).rejects.toThrow(`map-reduce aborted after 1 of ${plan.steps.length} steps`);
  });
});
