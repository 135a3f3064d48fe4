// Threads: each page (URL without fragment, or a PDF file's name) has a conversation; a tab shows the thread of the
// page it is on. A follow-up's prompt is document + earlier turns + the new question; the answers keep the ids the
// model generated so the engine finds them in its cache and prefills only the new question. Turns that no longer fit
// the context window are dropped oldest first, and the job says how many. Finished threads go to the history store.
import type { ChatMessage } from '../engine/types';
import { pageKeyOf, summarize } from '../history/historyStore';
import type { JobView, ThreadSummary, ThreadView, TurnView } from '../protocol/messages';

/** What the host needs of the history store (core/history/historyStore.ts in the extension). */
export interface ThreadHistory {
  put(thread: ThreadView): Promise<string[]>;
  get(threadId: string): Promise<ThreadView | null>;
  list(pageKey?: string): Promise<ThreadSummary[]>;
  delete(threadId: string): Promise<boolean>;
  clear(): Promise<number>;
}

/** A history opened on first use (the IndexedDB open waits until a thread is saved or listed). */
export function lazyHistory(open: () => Promise<ThreadHistory>): ThreadHistory {
  let store: Promise<ThreadHistory> | null = null;
  const get = () => {
    store ??= open().catch((e) => {
      store = null;
      throw e;
    });
    return store;
  };
  return {
    put: async (t) => (await get()).put(t),
    get: async (id) => (await get()).get(id),
    list: async (key) => (await get()).list(key),
    delete: async (id) => (await get()).delete(id),
    clear: async () => (await get()).clear(),
  };
}

/** Role markers and separators around one turn, on top of its question and answer tokens. */
const TURN_OVERHEAD_TOKENS = 12;

interface LiveThread {
  view: ThreadView;
  /** jobId → the answer's ids as generated (kept in memory only: after a restart the answer text is re-encoded). */
  answerIds: Map<string, number[]>;
}

export interface ThreadTurnsPlan {
  /** The earlier turns as chat messages (user, assistant, …), oldest first, then nothing: the caller adds the
   * new question. */
  messages: ChatMessage[];
  /** Tokens those messages take (estimated for answers without ids). */
  tokens: number;
  /** Turns left out, oldest first, because they did not fit `budgetTokens`. */
  dropped: number;
}

export class ThreadBook {
  private readonly live = new Map<string, LiveThread>();
  /** tab → its thread; `null` = the user asked for a new thread (the next job starts one). */
  private readonly byTab = new Map<number, string | null>();
  private next = 1;

  constructor(
    private readonly history: ThreadHistory | null,
    private readonly log?: (message: string, error?: unknown) => void,
    /** Each save in the history: null when it worked, else the error (a full disk: the user is told). */
    private readonly saved?: (error: unknown) => void,
  ) {}

  /** The thread the tab shows now, or null. */
  forTab(tabId: number): ThreadView | null {
    const id = this.byTab.get(tabId);
    return id ? (this.live.get(id)?.view ?? null) : null;
  }

  /** A thread in memory or in the history. */
  find(threadId: string): Promise<ThreadView | null> {
    return this.load(threadId);
  }

  /** The next job on this tab starts a new thread (the document's KV is still reused: it is the same prefix). */
  startNew(tabId: number): void {
    this.byTab.set(tabId, null);
  }

  /**
   * The thread a job on `page` continues: the tab's thread when it is about the same page, else the page's most
   * recent thread (in memory or in the history), else a new one.
   */
  async threadForJob(tabId: number, page: { url: string; title: string }): Promise<ThreadView> {
    const pageKey = pageKeyOf(page.url);
    const current = this.byTab.get(tabId);
    if (current !== null) {
      const mine = current ? this.live.get(current) : undefined;
      if (mine && mine.view.pageKey === pageKey) return mine.view;
      const recent = await this.mostRecent(pageKey);
      if (recent) {
        this.byTab.set(tabId, recent.threadId);
        return recent;
      }
    }
    const now = Date.now();
    const view: ThreadView = {
      threadId: `thread-${now.toString(36)}-${this.next++}`,
      pageKey,
      pageUrl: page.url,
      pageTitle: page.title,
      createdAt: now,
      updatedAt: now,
      turns: [],
    };
    this.live.set(view.threadId, { view, answerIds: new Map() });
    this.byTab.set(tabId, view.threadId);
    return view;
  }

  /** Reopens a thread from the history on a tab. */
  async open(tabId: number, threadId: string): Promise<ThreadView | null> {
    const t = await this.load(threadId);
    if (t) this.byTab.set(tabId, threadId);
    return t;
  }

  /** Regenerate / edit-and-resend: the thread forgets its last turn (the new answer takes its place). */
  dropLastTurn(threadId: string): void {
    const live = this.live.get(threadId);
    const last = live?.view.turns.pop();
    if (live && last) live.answerIds.delete(last.jobId);
  }

  private async load(threadId: string): Promise<ThreadView | null> {
    let t = this.live.get(threadId)?.view ?? null;
    if (!t && this.history) {
      t = await this.history.get(threadId);
      if (t) this.live.set(threadId, { view: t, answerIds: new Map() });
    }
    return t;
  }

  /**
   * The earlier turns that fit `budgetTokens`, newest kept first. Only turns with an answer take part (an error or an
   * empty stopped answer says nothing the model should build on).
   */
  planTurns(
    thread: ThreadView,
    budgetTokens: number,
    countTokens: (text: string) => number,
    questionOf: (t: TurnView) => string,
  ): ThreadTurnsPlan {
    const usable = thread.turns.filter((t) => t.answer.trim().length > 0 && t.status !== 'error');
    const ids = this.live.get(thread.threadId)?.answerIds;
    const kept: { turn: TurnView; tokens: number }[] = [];
    let tokens = 0;
    for (let i = usable.length - 1; i >= 0; i--) {
      const t = usable[i];
      const cost =
        countTokens(questionOf(t)) + (ids?.get(t.jobId)?.length ?? countTokens(t.answer)) + TURN_OVERHEAD_TOKENS;
      if (tokens + cost > budgetTokens) break;
      kept.unshift({ turn: t, tokens: cost });
      tokens += cost;
    }
    const messages: ChatMessage[] = [];
    for (const { turn } of kept) {
      messages.push({ role: 'user', content: questionOf(turn) });
      const answerIds = ids?.get(turn.jobId);
      messages.push(
        answerIds
          ? { role: 'assistant', content: turn.answer, tokenIds: answerIds }
          : { role: 'assistant', content: turn.answer },
      );
    }
    return { messages, tokens, dropped: usable.length - kept.length };
  }

  /** Appends a finished job to its thread and saves the thread in the history. */
  async addTurn(job: JobView, answerIds: number[] | null): Promise<void> {
    const live = job.threadId ? this.live.get(job.threadId) : undefined;
    if (!live) return;
    const turn: TurnView = {
      jobId: job.jobId,
      kind: job.kind,
      question: job.question,
      answer: job.answer,
      status: job.status,
      citations: job.citations,
      stats: job.stats,
      error: job.error,
      startedAt: job.startedAt,
      finishedAt: job.finishedAt,
      droppedTurns: job.droppedTurns,
    };
    live.view.turns.push(turn);
    live.view.updatedAt = Date.now();
    if (job.pageTitle) live.view.pageTitle = job.pageTitle;
    if (answerIds) live.answerIds.set(job.jobId, answerIds);
    if (!this.history) return;
    try {
      const evicted = await this.history.put(live.view);
      for (const id of evicted) if (id !== live.view.threadId) this.live.delete(id);
      this.saved?.(null);
    } catch (e) {
      this.log?.('Could not save the thread in the history', e);
      this.saved?.(e ?? new Error('unknown error'));
    }
  }

  async list(pageKey?: string): Promise<ThreadSummary[]> {
    if (this.history) return this.history.list(pageKey);
    const all = [...this.live.values()].map((t) => summarize(t.view)).filter((t) => t.turnCount > 0);
    return all.filter((t) => pageKey === undefined || t.pageKey === pageKey).sort((a, b) => b.updatedAt - a.updatedAt);
  }

  async delete(threadId: string): Promise<boolean> {
    const had = this.live.delete(threadId);
    for (const [tab, id] of this.byTab) if (id === threadId) this.byTab.delete(tab);
    return (await this.history?.delete(threadId)) || had;
  }

  async clear(): Promise<number> {
    const n = this.history ? await this.history.clear() : this.live.size;
    this.live.clear();
    this.byTab.clear();
    return n;
  }

  private async mostRecent(pageKey: string): Promise<ThreadView | null> {
    let best: ThreadView | null = null;
    for (const t of this.live.values())
      if (t.view.pageKey === pageKey && (!best || t.view.updatedAt > best.updatedAt)) best = t.view;
    if (best || !this.history) return best;
    try {
      const [latest] = await this.history.list(pageKey);
      return latest ? this.load(latest.threadId) : null;
    } catch (e) {
      this.log?.('Could not read the history', e);
      return null;
    }
  }
}
