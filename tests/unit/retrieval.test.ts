import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { chunkPromptText, chunkText } from '../../core/document/chunk.ts';
import { planDocumentPrompt } from '../../core/document/plan.ts';
import { ChunkIndex, rankChunks } from '../../core/document/retrieval.ts';
import { GAP_MARKER, selectChunks } from '../../core/document/select.ts';

const countTokens = (text: string) => (text.match(/[\p{L}\p{N}]+|[^\p{L}\p{N}\s]/gu) ?? []).length;

const NEEDLE = 'The secret code for the Netherfield library is purple harpsichord forty-two.';
const QUESTION = 'What is the secret code for the Netherfield library?';

/** Pride and Prejudice with the needle planted as its own paragraph in the middle of the book. */
function hayWithNeedle(): { text: string; needleAt: number } {
  const book = readFileSync('tests/fixtures/texts/austen-pride-and-prejudice.txt', 'utf8');
  const middle = book.indexOf('\n\n', Math.floor(book.length * 0.55));
  const text = `${book.slice(0, middle)}\n\n${NEEDLE}${book.slice(middle)}`;
  return { text, needleAt: middle + 2 };
}

describe('BM25 retrieval (MiniSearch)', () => {
  const { text, needleAt } = hayWithNeedle();
  const chunks = chunkText(text, { countTokens, maxTokens: 300 });

  it('ranks the chunk holding the planted sentence first', () => {
    const needleChunk = chunks.find((c) => c.start <= needleAt && needleAt < c.end)!;
    expect(needleChunk.text).toContain(NEEDLE);
    const ranking = rankChunks(
      chunks.map((c) => c.text),
      QUESTION,
    );
    expect(ranking[0].index).toBe(needleChunk.index);
    expect(ranking[0].score).toBeGreaterThan(ranking[1].score);
    // "Netherfield" alone matches dozens of chunks: the ranking is not just the needle.
    expect(ranking.length).toBeGreaterThan(20);
  });

  it('ignores stop words: a question of only stop words matches nothing', () => {
    const index = new ChunkIndex(chunks.map((c) => c.text));
    expect(index.rank('what is the and of it')).toEqual([]);
    expect(index.rank('Darcy').length).toBeGreaterThan(50);
  });

  it('selects within the budget, in document order, gaps marked', () => {
    const ranking = rankChunks(
      chunks.map((c) => c.text),
      QUESTION,
    );
    const budget = 2000;
    const selection = selectChunks(chunks, ranking, budget, countTokens);
    expect(countTokens(selection.text)).toBeLessThanOrEqual(budget);
    expect(selection.tokens).toBe(countTokens(selection.text));
    // Nearly full: 300-token chunks leave at most one chunk's worth unused.
    expect(selection.tokens).toBeGreaterThan(budget - 300 - 20);
    expect(selection.text).toContain(NEEDLE);
    const indices = selection.chunks.map((c) => c.index);
    expect(indices).toEqual([...indices].sort((a, b) => a - b));
    const gaps = indices.filter((v, i) => i > 0 && v !== indices[i - 1] + 1).length;
    expect(selection.text.split(GAP_MARKER).length - 1).toBe(gaps);
    for (const c of selection.chunks) expect(selection.text).toContain(chunkPromptText(c));
  });

  it('fills with document order when nothing matches', () => {
    const selection = selectChunks(chunks, [], 700, countTokens);
    const indices = selection.chunks.map((c) => c.index);
    // Chunks 0 and 1 fit, chunk 2 does not (so later, smaller chunks may fill the rest).
    expect(chunks[0].tokens + chunks[1].tokens + chunks[2].tokens).toBeGreaterThan(700);
    expect(indices.slice(0, 2)).toEqual([0, 1]);
    expect(indices).not.toContain(2);
    expect(indices).toEqual([...indices].sort((a, b) => a - b));
    expect(countTokens(selection.text)).toBeLessThanOrEqual(700);
  });

  it('planDocumentPrompt(ask) retrieves the needle and says how much it used', () => {
    const plan = planDocumentPrompt({ text }, 3000, 'ask', QUESTION, { countTokens, chunkTokens: 300 });
    if (plan.fits || plan.strategy !== 'retrieval') throw new Error(`expected a retrieval plan, got ${plan.fits}`);
    expect(plan.text).toContain(NEEDLE);
    expect(countTokens(plan.text)).toBeLessThanOrEqual(3000);
    const total = countTokens(text);
    expect(plan.coverage.totalTokens).toBeGreaterThan(total * 0.95);
    expect(plan.coverage.percent).toBeLessThan(5);
    expect(plan.coverage.chunksUsed).toBe(plan.chunks.length);
  });
});
