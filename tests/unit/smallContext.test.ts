// Small context windows: the answer budget shrinks (down to ANSWER_FLOOR_TOKENS) and the document is chunked, instead
// of refusing a 512-token model; only below the floor a clear error that names the model's window.
import { describe, expect, test } from 'vitest';
import { ANSWER_FLOOR_TOKENS, planJobPrompt } from '../../core/host/prompt';

// One token per 4 characters, like the FakeEngine of host.test.ts.
const count = (t: string) => Math.ceil(t.length / 4);
const page = { title: 'A long page', url: 'https://example.org/long', text: 'The keeper trims the wick. '.repeat(400) };

describe('small context windows', () => {
  test('a 512-token window with a 512-token answer setting: the answer shrinks, the page is chunked', () => {
    const p = planJobPrompt('ask', page, 'What does the keeper trim?', 512, 512, count);
    expect(p.answerTokens).toBeLessThan(512);
    expect(p.answerTokens).toBeGreaterThanOrEqual(ANSWER_FLOOR_TOKENS);
    expect(p.strategy).toBe('retrieval');
    if (p.strategy === 'map-reduce') throw new Error('unexpected');
    const used = count(p.system) + count(p.document) + count(p.question) + p.answerTokens;
    expect(used).toBeLessThanOrEqual(512);
    expect(p.coverage.fraction).toBeGreaterThan(0);
    expect(p.coverage.fraction).toBeLessThan(1);
  });

  test('summaries in a 512-token window run part by part with parts that fit', () => {
    const p = planJobPrompt('summarize', page, '', 512, 512, count);
    expect(p.strategy).toBe('map-reduce');
    expect(p.answerTokens).toBeGreaterThanOrEqual(ANSWER_FLOOR_TOKENS);
    expect(p.answerTokens).toBeLessThan(512);
  });

  test('a window that fits the answer setting keeps it', () => {
    expect(planJobPrompt('ask', page, 'q', 8192, 512, count).answerTokens).toBe(512);
  });

  test('below the floor: a clear error naming the model’s window', () => {
    expect(() => planJobPrompt('ask', page, 'q'.repeat(1600), 512, 512, count)).toThrow(
      /context window \(512 tokens\).*question.*64-token answer/,
    );
  });
});
