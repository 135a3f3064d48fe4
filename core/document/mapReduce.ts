// Summarize a document longer than the context: summarise groups of chunks ("map"), then summaries of summaries
// ("reduce", level by level) until one remains. The plan is data; the engine runs one generation per step, in order.

import type { Chunk } from './chunk.ts';

/** Tokens allowed for the label before each summary in a reduce prompt. */
export const LABEL_TOKENS = 16;

export interface MapStep {
  kind: 'map';
  id: number;
  /** Consecutive chunks summarised together. */
  chunkIndices: number[];
  /** [start, end) in the source text. */
  start: number;
  end: number;
  inputTokens: number;
  firstPage: number | null;
  lastPage: number | null;
}

export interface ReduceStep {
  kind: 'reduce';
  id: number;
  /** Steps whose summaries this step combines, in document order. */
  inputStepIds: number[];
  /** 1 = combines map summaries, 2 = combines level-1 results, ... */
  level: number;
  /** Upper bound: inputs × (summaryTokens + label). */
  inputTokens: number;
}

export type PlanStep = MapStep | ReduceStep;

export interface MapReducePlan {
  /** In execution order: every step's inputs come from earlier steps. */
  steps: PlanStep[];
  /** The step whose output is the final summary. */
  finalStepId: number;
  summaryTokens: number;
  mapSteps: number;
  reduceLevels: number;
  /** Chunks the map steps read: all of them, or a prefix when the document needs more than `maxMapSteps` parts. */
  chunksRead: number;
  /** Map steps a plan of the whole document would have (> mapSteps when capped). */
  mapStepsNeeded: number;
}

export interface MapReduceOptions {
  /** Document tokens one generation may read. */
  budgetTokens: number;
  /** Maximum tokens a step's summary may have (the engine's maxTokens for each step). */
  summaryTokens: number;
  /** Most map steps (one generation each); a document needing more is read up to them (default MAX_MAP_STEPS). */
  maxMapSteps?: number;
}

/**
 * Map steps a summary runs at most. Each is one generation (prefill + a part summary) over up to a context's worth of
 * text, so the cap bounds a summary's time whatever the page's length; what lies beyond is left out and the coverage
 * says so.
 */
export const MAX_MAP_STEPS = 48;

/** Plans map-reduce over the chunks: each chunk is read by exactly one map step, up to `maxMapSteps` steps; the
 * chunks after them are not read (`chunksRead` < chunks.length, and the caller's coverage says so). */
export function planMapReduce(chunks: readonly Chunk[], opts: MapReduceOptions): MapReducePlan {
  const { budgetTokens, summaryTokens } = opts;
  const maxMapSteps = opts.maxMapSteps ?? MAX_MAP_STEPS;
  if (!(Number.isInteger(maxMapSteps) && maxMapSteps >= 1))
    throw new Error(`planMapReduce: maxMapSteps must be an integer >= 1, got ${maxMapSteps}`);
  if (chunks.length === 0) throw new Error('planMapReduce: no chunks (empty document)');
  // Each summary enters a reduce prompt with a short label ("Part 3 (pp. 9–14):"); leave room for it.
  const fanIn = Math.floor(budgetTokens / (summaryTokens + LABEL_TOKENS));
  if (fanIn < 2) {
    throw new Error(
      `planMapReduce: budget ${budgetTokens} tokens cannot hold two summaries of ${summaryTokens} tokens; ` +
        'use a smaller summary size or a larger context',
    );
  }
  const steps: PlanStep[] = [];
  let group: Chunk[] = [];
  let groupTokens = 0;
  let mapStepsNeeded = 0;
  let chunksRead = 0;
  const emitMap = () => {
    mapStepsNeeded++;
    if (mapStepsNeeded > maxMapSteps) {
      group = [];
      groupTokens = 0;
      return;
    }
    chunksRead += group.length;
    steps.push({
      kind: 'map',
      id: steps.length,
      chunkIndices: group.map((c) => c.index),
      start: group[0].start,
      end: group[group.length - 1].end,
      inputTokens: groupTokens,
      firstPage: group[0].firstPage,
      lastPage: group[group.length - 1].lastPage,
    });
    group = [];
    groupTokens = 0;
  };
  for (const chunk of chunks) {
    if (chunk.tokens > budgetTokens) {
      throw new Error(
        `planMapReduce: chunk ${chunk.index} has ${chunk.tokens} tokens, over the ${budgetTokens} budget`,
      );
    }
    if (group.length > 0 && groupTokens + chunk.tokens > budgetTokens) emitMap();
    group.push(chunk);
    groupTokens += chunk.tokens;
  }
  emitMap();
  const mapSteps = steps.length;
  let level = 0;
  let inputs = steps.map((s) => s.id);
  while (inputs.length > 1) {
    level++;
    const next: number[] = [];
    for (let i = 0; i < inputs.length; i += fanIn) {
      const ids = inputs.slice(i, i + fanIn);
      const id = steps.length;
      steps.push({
        kind: 'reduce',
        id,
        inputStepIds: ids,
        level,
        inputTokens: ids.length * (summaryTokens + LABEL_TOKENS),
      });
      next.push(id);
    }
    inputs = next;
  }
  return { steps, finalStepId: inputs[0], summaryTokens, mapSteps, reduceLevels: level, chunksRead, mapStepsNeeded };
}

/** A progress line for step `stepId`, e.g. "Summarizing part 3 of 12 (pp. 9–14)". */
export function describeStep(plan: MapReducePlan, stepId: number): string {
  const step = plan.steps[stepId];
  if (step.kind === 'map') {
    const pages =
      step.firstPage === null
        ? ''
        : step.firstPage === step.lastPage
          ? ` (p. ${step.firstPage})`
          : ` (pp. ${step.firstPage}–${step.lastPage})`;
    return `Summarizing part ${step.id + 1} of ${plan.mapSteps}${pages}`;
  }
  const sameLevel = plan.steps.filter((s) => s.kind === 'reduce' && s.level === step.level);
  const position = sameLevel.indexOf(step) + 1;
  return step.id === plan.finalStepId
    ? 'Writing the final summary'
    : `Combining summaries (round ${step.level}, ${position} of ${sameLevel.length})`;
}
