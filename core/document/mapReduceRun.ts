// Runs a map-reduce plan with a caller-supplied generation function (the engine), step by step, reporting progress.
// The inputs each step sees are built here so every caller frames them the same way.

import type { Chunk } from './chunk.ts';
import { describeStep, type MapReducePlan, type PlanStep } from './mapReduce.ts';
import { joinChunks } from './select.ts';

export interface MapReduceProgress {
  /** Steps finished so far, and in all. */
  done: number;
  total: number;
  stepId: number;
  /** e.g. "Summarizing part 3 of 12 (pp. 9–14)" — describes the step about to run. */
  label: string;
}

function inputLabel(plan: MapReducePlan, stepId: number): string {
  const step = plan.steps[stepId];
  if (step.kind === 'reduce') return `Summary ${stepId - plan.mapSteps + 1}`;
  const pages =
    step.firstPage === null
      ? ''
      : step.firstPage === step.lastPage
        ? ` (p. ${step.firstPage})`
        : ` (pp. ${step.firstPage}–${step.lastPage})`;
  return `Part ${step.id + 1} of ${plan.mapSteps}${pages}`;
}

/** The document text a step summarises: its chunks (map), or its input summaries, labelled, in order (reduce). */
export function stepInputText(
  plan: MapReducePlan,
  stepId: number,
  chunks: readonly Chunk[],
  outputs: ReadonlyMap<number, string>,
): string {
  const step = plan.steps[stepId];
  if (step.kind === 'map') return joinChunks(step.chunkIndices.map((i) => chunks[i]));
  return step.inputStepIds
    .map((id) => {
      const summary = outputs.get(id);
      if (summary === undefined) throw new Error(`map-reduce: step ${stepId} needs step ${id}, which has not run`);
      return `${inputLabel(plan, id)}:\n${summary.trim()}`;
    })
    .join('\n\n');
}

/** Runs every step in order; returns the final summary and every step's output. */
export async function runMapReduce(
  plan: MapReducePlan,
  chunks: readonly Chunk[],
  summarize: (input: string, step: PlanStep) => Promise<string>,
  opts: { onProgress?: (p: MapReduceProgress) => void; signal?: AbortSignal } = {},
): Promise<{ summary: string; outputs: Map<number, string> }> {
  const outputs = new Map<number, string>();
  const total = plan.steps.length;
  for (const step of plan.steps) {
    if (opts.signal?.aborted) throw new Error(`map-reduce aborted after ${outputs.size} of ${total} steps`);
    opts.onProgress?.({ done: outputs.size, total, stepId: step.id, label: describeStep(plan, step.id) });
    outputs.set(step.id, await summarize(stepInputText(plan, step.id, chunks, outputs), step));
  }
  return { summary: outputs.get(plan.finalStepId)!, outputs };
}
