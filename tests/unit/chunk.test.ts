import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { chunkPromptText, chunkText } from '../../core/document/chunk.ts';

// The test's own tokenizer: words and single punctuation marks. The real one lives elsewhere; chunking only needs a
// monotone counter.
const countTokens = (text: string) => (text.match(/[\p{L}\p{N}]+|[^\p{L}\p{N}\s]/gu) ?? []).length;

const persuasion = readFileSync('tests/fixtures/texts/austen-persuasion.txt', 'utf8');

/** Every non-blank character of `text` lies in exactly one chunk, chunks in order. */
function expectExactCover(text: string, chunks: { start: number; end: number; text: string }[]) {
  let covered = 0;
  for (const c of chunks) {
    expect(c.start).toBeGreaterThanOrEqual(covered);
    expect(text.slice(covered, c.start).trim()).toBe('');
    expect(c.text).toBe(text.slice(c.start, c.end));
    covered = c.end;
  }
  expect(text.slice(covered).trim()).toBe('');
}

describe('chunkText', () => {
  const maxTokens = 200;
  const chunks = chunkText(persuasion, { countTokens, maxTokens });

  it('keeps every chunk within the token bound (recounted) and covers the whole text', () => {
    expect(chunks.length).toBeGreaterThan(400);
    for (const c of chunks) {
      expect(countTokens(chunkPromptText(c))).toBeLessThanOrEqual(maxTokens);
      expect(c.tokens).toBe(countTokens(chunkPromptText(c)));
    }
    expectExactCover(persuasion, chunks);
    expect(chunks.map((c) => c.index)).toEqual(chunks.map((_, i) => i));
  });

  it('cuts between paragraphs wherever the paragraph fits', () => {
    const paragraphStarts = new Set<number>([0]);
    for (const m of persuasion.matchAll(/\n[ \t]*\n\s*/g)) paragraphStarts.add((m.index ?? 0) + m[0].length);
    const bigParagraphs = chunks.filter((c) => !paragraphStarts.has(c.start));
    // Only chunks continuing a paragraph longer than the bound may start mid-paragraph.
    for (const c of bigParagraphs) {
      let p = c.start;
      while (!paragraphStarts.has(p)) p--;
      const paragraphEnd = persuasion.indexOf('\n\n', p);
      // No page markers here, so the bound for text is exactly maxTokens.
      expect(countTokens(persuasion.slice(p, paragraphEnd))).toBeGreaterThan(maxTokens);
    }
    expect(bigParagraphs.length).toBeLessThan(chunks.length / 2);
  });

  it('splits an over-long paragraph at sentence ends', () => {
    const sentence = (i: number) => `Sentence number ${i} says something about Anne and Wentworth.`;
    const paragraph = Array.from({ length: 100 }, (_, i) => sentence(i)).join(' ');
    const parts = chunkText(paragraph, { countTokens, maxTokens: 50 });
    expect(parts.length).toBeGreaterThan(10);
    for (const p of parts) {
      expect(p.text).toMatch(/^Sentence number \d+ .*Wentworth\.$/);
      expect(countTokens(p.text)).toBeLessThanOrEqual(50);
    }
    expectExactCover(paragraph, parts);
  });

  it('splits a single gigantic word by characters', () => {
    const word = 'x'.repeat(5000);
    // 1 token per 10 characters for this test.
    const perTen = (t: string) => Math.ceil(t.replace(/\s/g, '').length / 10);
    const parts = chunkText(`intro\n\n${word}\n\noutro`, { countTokens: perTen, maxTokens: 64 });
    for (const p of parts) expect(perTen(p.text)).toBeLessThanOrEqual(64);
    expect(parts.length).toBeGreaterThanOrEqual(8);
    expect(parts.map((p) => p.text.replace(/\s/g, '')).join('')).toBe(`intro${word}outro`);
  });

  it('tracks page markers and labels chunks that begin mid-page', () => {
    const page = (n: number) =>
      `[p. ${n}]\n` + Array.from({ length: 6 }, (_, i) => `Page ${n} paragraph ${i} has a few words.`).join('\n\n');
    const text = [1, 2, 3].map(page).join('\n\n');
    const parts = chunkText(text, { countTokens, maxTokens: 40 });
    for (const p of parts) {
      expect(countTokens(chunkPromptText(p))).toBeLessThanOrEqual(40);
      const pages = Array.from(p.text.matchAll(/Page (\d)/g), (m) => Number(m[1]));
      expect(p.firstPage).toBe(pages[0]);
      expect(p.lastPage).toBe(pages[pages.length - 1]);
      expect(p.header).toBe(p.text.startsWith('[p.') ? '' : `[p. ${pages[0]}]`);
    }
    expect(parts.some((p) => p.header === '[p. 2]')).toBe(true);
    expect(parts.some((p) => p.text.startsWith('[p. 3]'))).toBe(true);
  });

  it('rejects a nonsensical bound and returns nothing for blank text', () => {
    expect(() => chunkText('abc', { countTokens, maxTokens: 2 })).toThrow(/maxTokens must be a number >= 8/);
    expect(chunkText(' \n\n \n', { countTokens, maxTokens: 100 })).toEqual([]);
  });
});
