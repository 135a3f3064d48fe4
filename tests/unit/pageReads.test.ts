// PageReads: requests for the same tab's page at about the same time share one read (counted here), and only where
// that cannot serve the wrong page: same address, within the window, never an automatic read for the user's.
import { describe, expect, test } from 'vitest';
import type { ReadPageOptions } from '../../core/host/env';
import { PageReads, SHARED_READ_MS } from '../../core/host/pageReads';
import { type PageContent, ProtocolError } from '../../core/protocol/messages';

/** A readPage whose reads finish when the test says, counting them. */
function fakePages() {
  const reads: { tabId: number; userAction: boolean; signal: AbortSignal }[] = [];
  const pending: { resolve: (p: PageContent) => void; reject: (e: unknown) => void }[] = [];
  let clock = 1000;
  let urls: Record<number, string> | null = null;
  const env = {
    readPage(tabId: number, o?: ReadPageOptions): Promise<PageContent> {
      reads.push({ tabId, userAction: o?.userAction === true, signal: o?.signal as AbortSignal });
      return new Promise((resolve, reject) => {
        pending.push({
          resolve: (p) => resolve(p),
          reject,
        });
      });
    },
    get tabUrl() {
      return urls ? async (tabId: number) => urls?.[tabId] ?? null : undefined;
    },
  };
  const page = (n: number): PageContent => ({
    title: `Page ${n}`,
    url: `https://example.org/${n}.pdf`,
    text: `text ${n}`,
  });
  return {
    reads,
    env,
    page,
    /** Finishes the oldest unfinished read with page n. */
    finish: async (n: number) => {
      pending.shift()?.resolve(page(n));
      await new Promise((r) => setTimeout(r, 0));
    },
    fail: async (e: unknown) => {
      pending.shift()?.reject(e);
      await new Promise((r) => setTimeout(r, 0));
    },
    setUrls: (u: Record<number, string>) => {
      urls = u;
    },
    advance: (ms: number) => {
      clock += ms;
    },
    now: () => clock,
  };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe('PageReads', () => {
  test('requests for a tab while its read runs share it: one read, each caller its own copy', async () => {
    const f = fakePages();
    const reads = new PageReads(f.env, f.now);
    const a = reads.read(1, { userAction: true });
    const b = reads.read(1);
    const other = reads.read(2);
    await tick();
    expect(f.reads.map((r) => r.tabId)).toEqual([1, 2]);
    await f.finish(1);
    await f.finish(2);
    const [pa, pb, p2] = await Promise.all([a, b, other]);
    expect(pa).toEqual(f.page(1));
    expect(pb).toEqual(f.page(1));
    expect(pa).not.toBe(pb);
    expect(p2).toEqual(f.page(2));
  });

  test('without the tab address, a finished read is not reused (the tab may show another page)', async () => {
    const f = fakePages();
    const reads = new PageReads(f.env, f.now);
    const a = reads.read(1);
    await tick();
    await f.finish(1);
    await a;
    const b = reads.read(1);
    await tick();
    expect(f.reads).toHaveLength(2);
    await f.finish(1);
    await b;
  });

  test('with the tab address: reused within the window at the same address; read again after it or elsewhere', async () => {
    const f = fakePages();
    f.setUrls({ 1: 'https://example.org/1.pdf' });
    const reads = new PageReads(f.env, f.now);
    const first = reads.read(1, { userAction: true });
    await tick();
    await f.finish(1);
    await first;
    f.advance(SHARED_READ_MS);
    expect(await reads.read(1)).toEqual(f.page(1));
    expect(f.reads).toHaveLength(1);
    // Past the window: a new read.
    f.advance(1);
    const late = reads.read(1);
    await tick();
    expect(f.reads).toHaveLength(2);
    await f.finish(1);
    await late;
    // The tab navigated: a new read, even within the window.
    f.setUrls({ 1: 'https://example.org/other' });
    const moved = reads.read(1);
    await tick();
    expect(f.reads).toHaveLength(3);
    await f.finish(3);
    expect(await moved).toEqual(f.page(3));
  });

  test('an automatic read never stands in for the user’s read; the user’s read serves an automatic request', async () => {
    const f = fakePages();
    const reads = new PageReads(f.env, f.now);
    const auto = reads.read(1);
    const user = reads.read(1, { userAction: true });
    const autoAgain = reads.read(1);
    await tick();
    expect(f.reads.map((r) => r.userAction)).toEqual([false, true]);
    await f.finish(1);
    await f.finish(2);
    expect(await auto).toEqual(f.page(1));
    expect(await user).toEqual(f.page(2));
    expect(await autoAgain).toEqual(f.page(2));
  });

  test('a failed read fails every caller waiting on it and is not kept', async () => {
    const f = fakePages();
    f.setUrls({ 1: 'https://example.org/1.pdf' });
    const reads = new PageReads(f.env, f.now);
    const a = reads.read(1);
    const b = reads.read(1);
    await tick();
    const failed = Promise.all([
      expect(a).rejects.toThrow('The PDF could not be downloaded.'),
      expect(b).rejects.toThrow('The PDF could not be downloaded.'),
    ]);
    await f.fail(new ProtocolError('page-unreadable', 'The PDF could not be downloaded.'));
    await failed;
    const c = reads.read(1);
    await tick();
    expect(f.reads).toHaveLength(2);
    await f.finish(1);
    expect(await c).toEqual(f.page(1));
  });

  test('one caller’s abort leaves the read to the others; the read stops when every caller aborted', async () => {
    const f = fakePages();
    const reads = new PageReads(f.env, f.now);
    const stopA = new AbortController();
    const a = reads.read(1, { signal: stopA.signal });
    const b = reads.read(1);
    await tick();
    stopA.abort(new Error('pre-read cancelled'));
    await expect(a).rejects.toThrow('pre-read cancelled');
    expect(f.reads[0].signal.aborted).toBe(false);
    await f.finish(1);
    expect(await b).toEqual(f.page(1));

    const stopC = new AbortController();
    const c = reads.read(1, { signal: stopC.signal });
    await tick();
    expect(f.reads).toHaveLength(2);
    stopC.abort(new Error('cancelled'));
    await expect(c).rejects.toThrow('cancelled');
    expect(f.reads[1].signal.aborted).toBe(true);
    // The aborted read is not joined: the next request reads again.
    const d = reads.read(1);
    await tick();
    expect(f.reads).toHaveLength(3);
    await f.fail(new Error('aborted'));
    await f.finish(1);
    expect(await d).toEqual(f.page(1));
  });

  test('an aborted signal refuses at once, without a read', async () => {
    const f = fakePages();
    const reads = new PageReads(f.env, f.now);
    await expect(reads.read(1, { signal: AbortSignal.abort(new Error('gone')) })).rejects.toThrow('gone');
    expect(f.reads).toHaveLength(0);
  });
});
