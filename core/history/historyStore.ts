// Thread history in IndexedDB (through idb): one record per thread, indexed by page and by last update, so the UI can
// list a page's threads or all of them, newest first. Bounded by a byte budget: the threads updated longest ago go
// first. Uses the global `indexedDB` (the extension's background; Node tests install fake-indexeddb).

import { type DBSchema, type IDBPDatabase, openDB } from 'idb';
import type { ThreadSummary, ThreadView } from '../protocol/messages';

export const DEFAULT_HISTORY_DB_NAME = 'recycled-reader-history';
/** Default budget: plenty for thousands of threads, small next to the model cache. */
export const DEFAULT_HISTORY_BUDGET_BYTES = 20 * 1024 * 1024;
const DB_VERSION = 1;

interface StoredThread {
  thread: ThreadView;
  /** UTF-16 length of the JSON, the unit the budget counts in (close to bytes for the text it mostly is). */
  size: number;
  pageKey: string;
  updatedAt: number;
}

interface HistoryDb extends DBSchema {
  threads: { key: string; value: StoredThread; indexes: { byPage: string; byUpdated: number } };
}

/** The page a thread belongs to: the URL without its fragment (a PDF opened from disk: its `file:` name). */
export function pageKeyOf(url: string): string {
  const hash = url.indexOf('#');
  return hash < 0 ? url : url.slice(0, hash);
}

export function summarize(t: ThreadView): ThreadSummary {
  return {
    threadId: t.threadId,
    pageKey: t.pageKey,
    pageUrl: t.pageUrl,
    pageTitle: t.pageTitle,
    createdAt: t.createdAt,
    updatedAt: t.updatedAt,
    turnCount: t.turns.length,
    firstQuestion: t.turns[0]?.kind === 'summarize' ? 'Summary' : (t.turns[0]?.question ?? ''),
  };
}

export interface HistoryStoreOptions {
  name?: string;
  budgetBytes?: number;
}

export class HistoryStore {
  private constructor(
    private readonly db: IDBPDatabase<HistoryDb>,
    readonly budgetBytes: number,
  ) {}

  static async open(opts: HistoryStoreOptions = {}): Promise<HistoryStore> {
    if (typeof indexedDB === 'undefined') throw new Error('history: IndexedDB is not available in this context');
    const db = await openDB<HistoryDb>(opts.name ?? DEFAULT_HISTORY_DB_NAME, DB_VERSION, {
      upgrade(database) {
        const store = database.createObjectStore('threads', { keyPath: 'thread.threadId' });
        store.createIndex('byPage', 'pageKey');
        store.createIndex('byUpdated', 'updatedAt');
      },
      // Another context wants a newer schema: let it.
      blocking() {
        db.close();
      },
    });
    return new HistoryStore(db, opts.budgetBytes ?? DEFAULT_HISTORY_BUDGET_BYTES);
  }

  /** Saves (replaces) a thread, then evicts the least recently updated threads beyond the budget. Returns the ids
   * evicted (never the thread just saved). */
  async put(thread: ThreadView): Promise<string[]> {
    const size = JSON.stringify(thread).length;
    await this.db.put('threads', { thread, size, pageKey: thread.pageKey, updatedAt: thread.updatedAt });
    return this.enforceBudget(thread.threadId);
  }

  async get(threadId: string): Promise<ThreadView | null> {
    return (await this.db.get('threads', threadId))?.thread ?? null;
  }

  /** Threads of one page (pageKey), or all when `pageKey` is undefined; newest update first. */
  async list(pageKey?: string): Promise<ThreadSummary[]> {
    const rows =
      pageKey === undefined
        ? await this.db.getAllFromIndex('threads', 'byUpdated')
        : await this.db.getAllFromIndex('threads', 'byPage', pageKey);
    return rows.map((r) => summarize(r.thread)).sort((a, b) => b.updatedAt - a.updatedAt);
  }

  async delete(threadId: string): Promise<boolean> {
    const had = (await this.db.getKey('threads', threadId)) !== undefined;
    await this.db.delete('threads', threadId);
    return had;
  }

  async clear(): Promise<number> {
    const n = await this.db.count('threads');
    await this.db.clear('threads');
    return n;
  }

  async usedBytes(): Promise<number> {
    let total = 0;
    for (const r of await this.db.getAll('threads')) total += r.size;
    return total;
  }

  close(): void {
    this.db.close();
  }

  private async enforceBudget(keep: string): Promise<string[]> {
    const tx = this.db.transaction('threads', 'readwrite');
    const rows = await tx.store.index('byUpdated').getAll(); // oldest update first
    let total = rows.reduce((n, r) => n + r.size, 0);
    const evicted: string[] = [];
    for (const r of rows) {
      if (total <= this.budgetBytes) break;
      if (r.thread.threadId === keep) continue;
      await tx.store.delete(r.thread.threadId);
      total -= r.size;
      evicted.push(r.thread.threadId);
    }
    await tx.done;
    return evicted;
  }
}
