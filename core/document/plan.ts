// What to put in the prompt for a document and a token budget. Three honest outcomes: the whole text fits; "ask"
// retrieves the most relevant chunks (coverage < 100%, said so); "summarize" plans map-reduce over all of it.
// Nothing is ever cut silently: every result carries its coverage.

// It runs as bounded steps (core/document/bounded.ts): `planDocumentPromptSteps` under `runInSlices` for a job that
// Stop can interrupt, `planDocumentPrompt` to the end at once; both give the same plan.

import { countTokensSteps, runToEnd, type Steps } from './bounded.ts';
import { type Chunk, type CountTokens, chunkTextSteps } from './chunk.ts';
import { type Coverage, coverageFromTokens, coverageOf } from './coverage.ts';
import { type MapReducePlan, planMapReduce } from './mapReduce.ts';
import { rankChunksSteps } from './retrieval.ts';
import { selectChunks } from './select.ts';

export interface DocumentInput {
  text: string;
  title?: string;
}

export type DocumentMode = 'ask' | 'summarize';

export interface PlanOptions {
  countTokens: CountTokens;
  /** Chunk size (default: budget / 8, between 64 and 1024 tokens). */
  chunkTokens?: number;
  /** Summary length per map-reduce step (default: budget / 8, between 64 and 512 tokens). */
  summaryTokens?: number;
  /** Most map steps (parts summarized) a summary runs; a longer document is read up to them (default MAX_MAP_STEPS). */
  maxMapSteps?: number;
}

export type DocumentPlan =
  | { fits: true; mode: DocumentMode; text: string; tokens: number; coverage: Coverage }
  | {
      fits: false;
      mode: 'ask';
      strategy: 'retrieval';
      /** Selected chunks joined in document order, gaps marked. */
      text: string;
      tokens: number;
      /** The selected chunks, in document order. */
      chunks: Chunk[];
      /** Every chunk of the document (for citations and "show more"). */
      allChunks: Chunk[];
      coverage: Coverage;
    }
  | {
      fits: false;
      mode: 'summarize';
      strategy: 'map-reduce';
      plan: MapReducePlan;
      allChunks: Chunk[];
      coverage: Coverage;
    };

function clamp(value: number, lo: number, hi: number): number {
  return Math.max(lo, Math.min(hi, Math.floor(value)));
}

/**
 * Plans the document part of a prompt. `budget` = tokens available for document text (the caller has already taken
 * out the system prompt, the question and the answer's reserve).
 */
export function planDocumentPrompt(
  doc: DocumentInput,
  budget: number,
  mode: DocumentMode,
  question: string | null,
  opts: PlanOptions,
): DocumentPlan {
  return runToEnd(planDocumentPromptSteps(doc, budget, mode, question, opts));
}

/** planDocumentPrompt as bounded steps. */
export function* planDocumentPromptSteps(
  doc: DocumentInput,
  budget: number,
  mode: DocumentMode,
  question: string | null,
  opts: PlanOptions,
): Steps<DocumentPlan> {
  if (!Number.isFinite(budget) || budget < 64) {
    throw new Error(`planDocumentPrompt: the document budget must be at least 64 tokens, got ${budget}`);
  }
  if (mode === 'ask' && (question === null || question.trim().length === 0)) {
    throw new Error('planDocumentPrompt: "ask" needs a question');
  }
  const text = doc.text;
  if (text.trim().length === 0) throw new Error('planDocumentPrompt: the document has no text');
  const { countTokens } = opts;
  const tokens = yield* countTokensSteps(text, countTokens);
  if (tokens <= budget) {
    return { fits: true, mode, text, tokens, coverage: coverageFromTokens(tokens, tokens, 1, 1) };
  }
  const chunkTokens = opts.chunkTokens ?? clamp(budget / 8, 64, 1024);
  if (chunkTokens > budget) throw new Error(`planDocumentPrompt: chunks of ${chunkTokens} tokens exceed the budget`);
  const allChunks = yield* chunkTextSteps(text, { countTokens, maxTokens: chunkTokens });
  if (mode === 'ask') {
    const ranking = yield* rankChunksSteps(
      allChunks.map((c) => c.text),
      question ?? '',
    );
    const selection = selectChunks(allChunks, ranking, budget, countTokens);
    return {
      fits: false,
      mode,
      strategy: 'retrieval',
      text: selection.text,
      tokens: selection.tokens,
      chunks: selection.chunks,
      allChunks,
      coverage: coverageOf(selection.chunks, allChunks),
    };
  }
  const summaryTokens = opts.summaryTokens ?? clamp(budget / 8, 64, 512);
  const plan = planMapReduce(allChunks, { budgetTokens: budget, summaryTokens, maxMapSteps: opts.maxMapSteps });
  // The parts read: all chunks, or those of the first `maxMapSteps` map steps when the document has more.
  const read = allChunks.slice(0, plan.chunksRead);
  return { fits: false, mode, strategy: 'map-reduce', plan, allChunks, coverage: coverageOf(read, allChunks) };
}
