// How much of the document the model actually sees, reported to the user ("used 63% of the document").

import type { Chunk } from './chunk.ts';

export interface Coverage {
  usedTokens: number;
  totalTokens: number;
  /** usedTokens / totalTokens, in [0, 1]. */
  fraction: number;
  /** For display: 100 only when everything is used, never rounded up to 100 otherwise. */
  percent: number;
  chunksUsed: number;
  chunksTotal: number;
}

export function coverageOf(used: readonly Pick<Chunk, 'tokens'>[], all: readonly Pick<Chunk, 'tokens'>[]): Coverage {
  const totalTokens = all.reduce((sum, c) => sum + c.tokens, 0);
  const usedTokens = used.reduce((sum, c) => sum + c.tokens, 0);
  return coverageFromTokens(usedTokens, totalTokens, used.length, all.length);
}

export function coverageFromTokens(used: number, total: number, chunksUsed: number, chunksTotal: number): Coverage {
  if (used > total) throw new Error(`coverage: used tokens (${used}) exceed the document's (${total})`);
  const fraction = total === 0 ? 1 : used / total;
  const percent = used === total ? 100 : Math.min(99, Math.round(fraction * 100));
  return { usedTokens: used, totalTokens: total, fraction, percent, chunksUsed, chunksTotal };
}

/** "used 63% of the document (12 of 40 parts)". */
export function describeCoverage(c: Coverage): string {
  if (c.percent === 100) return 'used all of the document';
  return `used ${c.percent}% of the document (${c.chunksUsed} of ${c.chunksTotal} parts)`;
}
