// BM25 ranking of chunks for a question, on MiniSearch (maintained, typed, dependency-free, runs in a service
// worker; its scoring is BM25+). Stop words are dropped so that "what did the ... say" does not rank by "the".

import MiniSearch from 'minisearch';
import type { Steps } from './bounded.ts';

export interface RankedChunk {
  index: number;
  score: number;
}

// A short English list: function words only, so content words (names, numbers, rare nouns) decide the ranking.
const STOP_WORDS = new Set(
  (
    'a about above after again against all am an and any are as at be because been before being below between both ' +
    'but by can could did do does doing down during each few for from further had has have having he her here hers ' +
    'herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off on ' +
    'once only or other our ours ourselves out over own same she should so some such than that the their theirs them ' +
    'themselves then there these they this those through to too under until up very was we were what when where which ' +
    'while who whom why will with would you your yours yourself yourselves tell says said say'
  ).split(' '),
);

function processTerm(term: string): string | null {
  const lower = term.toLowerCase();
  return lower.length < 2 || STOP_WORDS.has(lower) ? null : lower;
}

/** Index of chunk texts, built once per document and queried per question. */
export class ChunkIndex {
  private readonly search: MiniSearch<{ id: number; text: string }>;

  private size = 0;

  constructor(texts: readonly string[] = []) {
    this.search = new MiniSearch({ fields: ['text'], storeFields: [], processTerm });
    this.add(texts);
  }

  /** Indexes more chunk texts; their indices continue after those added before. */
  add(texts: readonly string[]): void {
    const first = this.size;
    this.search.addAll(texts.map((text, i) => ({ id: first + i, text })));
    this.size += texts.length;
  }

  /** Chunks matching at least one query term, best first; ties keep document order. */
  rank(query: string): RankedChunk[] {
    const results = this.search.search(query, { combineWith: 'OR', prefix: false, fuzzy: false });
    return results
      .map((r) => ({ index: Number(r.id), score: r.score }))
      .sort((a, b) => b.score - a.score || a.index - b.index);
  }
}

/** Chunks indexed per step of rankChunksSteps (a few hundred KB of text). */
const INDEX_BATCH = 64;

/** rankChunks as bounded steps: the index is built a batch of chunks at a time (same ranking). */
export function* rankChunksSteps(texts: readonly string[], query: string): Steps<RankedChunk[]> {
  const index = new ChunkIndex();
  for (let i = 0; i < texts.length; i += INDEX_BATCH) {
    index.add(texts.slice(i, i + INDEX_BATCH));
    yield;
  }
  return index.rank(query);
}

/** One-shot ranking. */
export function rankChunks(texts: readonly string[], query: string): RankedChunk[] {
  return new ChunkIndex(texts).rank(query);
}
