import 'fake-indexeddb/auto';
import { describe, expect, test } from 'vitest';
import { HistoryStore, pageKeyOf } from '../../core/history/historyStore';
import { exportFileName, threadToMarkdown } from '../../core/history/markdown';
import type { ThreadView, TurnView } from '../../core/protocol/messages';

let dbCount = 0;
const freshName = () => `history-test-${++dbCount}`;

function turn(question: string, answer: string, extra: Partial<TurnView> = {}): TurnView {
  return {
    jobId: `job-${question}`,
    kind: 'ask',
    question,
    answer,
    status: 'done',
    citations: [],
    stats: null,
    error: null,
    startedAt: 1,
    finishedAt: 2,
    droppedTurns: 0,
    ...extra,
  };
}

function thread(id: string, url: string, updatedAt: number, turns: TurnView[] = [turn('q', 'a')]): ThreadView {
  return {
    threadId: id,
    pageKey: pageKeyOf(url),
    pageUrl: url,
    pageTitle: `Title ${id}`,
    createdAt: updatedAt - 10,
    updatedAt,
    turns,
  };
}

describe('HistoryStore (IndexedDB via idb)', () => {
  test('per page and overall, newest first; get, delete, clear', async () => {
    const store = await HistoryStore.open({ name: freshName() });
    await store.put(thread('a', 'https://x.org/p#intro', 100));
    await store.put(thread('b', 'https://x.org/p', 300));
    await store.put(thread('c', 'https://y.org/', 200));
    expect((await store.list()).map((t) => t.threadId)).toEqual(['b', 'c', 'a']);
    // The fragment is not part of the page.
    expect((await store.list('https://x.org/p')).map((t) => t.threadId)).toEqual(['b', 'a']);
    expect((await store.list('https://z.org/')).length).toBe(0);
    expect((await store.get('c'))?.pageUrl).toBe('https://y.org/');
    expect(await store.delete('c')).toBe(true);
    expect(await store.delete('c')).toBe(false);
    expect(await store.get('c')).toBeNull();
    expect(await store.clear()).toBe(2);
    expect(await store.list()).toEqual([]);
    store.close();
  });

  test('a saved thread survives closing and reopening the database (a browser restart)', async () => {
    const name = freshName();
    const first = await HistoryStore.open({ name });
    await first.put(thread('kept', 'https://x.org/', 5, [turn('why?', 'because "it is so"')]));
    first.close();
    const second = await HistoryStore.open({ name });
    const t = await second.get('kept');
    expect(t?.turns.map((x) => [x.question, x.answer])).toEqual([['why?', 'because "it is so"']]);
    second.close();
  });

  test('the budget evicts the least recently updated threads first, never the one just saved', async () => {
    const big = 'x'.repeat(1000);
    const oneSize = JSON.stringify(thread('t1', 'https://x.org/', 1, [turn('q', big)])).length;
    const store = await HistoryStore.open({ name: freshName(), budgetBytes: oneSize * 2 + 10 });
    expect(await store.put(thread('t1', 'https://x.org/', 1, [turn('q', big)]))).toEqual([]);
    expect(await store.put(thread('t2', 'https://x.org/', 2, [turn('q', big)]))).toEqual([]);
    // A third does not fit: t1 (oldest update) goes.
    expect(await store.put(thread('t3', 'https://x.org/', 3, [turn('q', big)]))).toEqual(['t1']);
    // Updating t2 makes t3 the oldest.
    await store.put(thread('t2', 'https://x.org/', 4, [turn('q', big)]));
    expect(await store.put(thread('t4', 'https://x.org/', 5, [turn('q', big)]))).toEqual(['t3']);
    expect((await store.list()).map((t) => t.threadId)).toEqual(['t4', 't2']);
    expect(await store.usedBytes()).toBeLessThanOrEqual(oneSize * 2 + 10);
    // A thread larger than the whole budget is still kept (alone).
    const huge = thread('huge', 'https://x.org/', 9, [turn('q', 'y'.repeat(5000))]);
    expect((await store.put(huge)).sort()).toEqual(['t2', 't4']);
    expect((await store.list()).map((t) => t.threadId)).toEqual(['huge']);
    store.close();
  });
});

describe('Markdown export', () => {
  test('title, source, each question and answer, citations with not-found marked', () => {
    const t = thread('m', 'https://x.org/lamp', Date.UTC(2026, 0, 2), [
      turn('Who climbs?', 'The keeper "climbed the steps".', {
        citations: [
          { quote: 'climbed the steps', kind: 'quote', start: 4, end: 21, match: 'exact', page: null },
          { quote: 'painted it red', kind: 'quote', start: null, end: null, match: 'none', page: null },
        ],
      }),
      turn('', '- one\n- two', { kind: 'summarize', status: 'stopped' }),
    ]);
    t.pageTitle = 'Gull Rock: a keeper’s log';
    t.createdAt = Date.UTC(2026, 0, 1, 12);
    expect(threadToMarkdown(t)).toBe(
      '# Gull Rock: a keeper’s log\n\nSource: https://x.org/lamp\nStarted: 2026-01-01T12:00:00.000Z\n\n' +
        '## Q: Who climbs?\n\nThe keeper "climbed the steps".\n\nCitations:\n- "climbed the steps" (in the page)\n' +
        '- "painted it red" (not found in the page)\n\n' +
        '## Summary\n\n- one\n- two\n\n_(stopped)_\n',
    );
    expect(exportFileName(t)).toBe('Gull-Rock-a-keeper-s-log-2026-01-02.md');
  });
});
