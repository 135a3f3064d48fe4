// Picks the chunks a question most needs, within a token budget, and lays them out in document order.

import { type Chunk, type CountTokens, chunkPromptText } from './chunk.ts';
import type { RankedChunk } from './retrieval.ts';

/** Put between two chunks that are not adjacent in the document, so the model knows text was left out. */
export const GAP_MARKER = '[…]';

export interface Selection {
  /** In document order. */
  chunks: Chunk[];
  text: string;
  tokens: number;
}

/** The prompt text of chunks in document order, with GAP_MARKER where chunks were skipped. */
export function joinChunks(chunks: readonly Chunk[]): string {
  const parts: string[] = [];
  chunks.forEach((chunk, i) => {
    if (i > 0 && chunk.index !== chunks[i - 1].index + 1) parts.push(GAP_MARKER);
    parts.push(chunkPromptText(chunk));
  });
  return parts.join('\n\n');
}

/**
 * Takes chunks best-ranked first while they fit `budgetTokens` (smaller ones may still fit after a big one did not),
 * then, with budget left, unranked chunks in document order. The joined text is measured, and the lowest-priority
 * chunk dropped until it fits: the budget holds for the real text, separators included.
 */
export function selectChunks(
  chunks: readonly Chunk[],
  ranking: readonly RankedChunk[],
  budgetTokens: number,
  countTokens: CountTokens,
): Selection {
  const ranked = new Set(ranking.map((r) => r.index));
  const order = [...ranking.map((r) => r.index), ...chunks.map((c) => c.index).filter((i) => !ranked.has(i))];
  const separator = countTokens(`\n\n${GAP_MARKER}\n\n`);
  const picked: number[] = [];
  let estimate = 0;
  for (const index of order) {
    const cost = chunks[index].tokens + (picked.length > 0 ? separator : 0);
    if (estimate + cost <= budgetTokens) {
      picked.push(index);
      estimate += cost;
    }
  }
  for (;;) {
    const inOrder = [...picked].sort((a, b) => a - b).map((i) => chunks[i]);
    const text = joinChunks(inOrder);
    const tokens = text.length === 0 ? 0 : countTokens(text);
    if (tokens <= budgetTokens) return { chunks: inOrder, text, tokens };
    picked.pop();
  }
}
