// One read of a tab's page serves the requests that want it at about the same time. Opening the popup starts the
// pre-read and asks for suggested questions, and both read the page: without sharing, a PDF is downloaded and parsed
// twice. A read is shared while it runs, and for a short window after it finished when the tab still shows the same
// address (known only where the environment has tabUrl; without it, only a read in flight is shared).
import type { PageContent } from '../protocol/messages';
import type { HostEnv, ReadPageOptions } from './env';

/** How long a finished read serves later requests for the same tab and address. */
export const SHARED_READ_MS = 3000;

interface SharedRead {
  /** The tab's address when the read started (null: unknown). */
  url: string | null;
  /** Read as the user's action: it may hold what only such a read fetches (a page-supplied PDF address). */
  userAction: boolean;
  finishedAt: number | null;
  result: Promise<PageContent>;
  /** Aborts the underlying read once every request waiting on it was aborted. */
  controller: AbortController;
  waiting: number;
}

export class PageReads {
  private readonly reads = new Map<number, SharedRead>();

  constructor(
    private readonly env: Pick<HostEnv, 'readPage' | 'tabUrl'>,
    private readonly now: () => number = Date.now,
    private readonly windowMs = SHARED_READ_MS,
  ) {}

  /** The tab's page, as env.readPage gives it, from a read shared with other requests where it may be. */
  async read(tabId: number, opts: ReadPageOptions = {}): Promise<PageContent> {
    opts.signal?.throwIfAborted();
    const userAction = opts.userAction === true;
    const url = this.env.tabUrl ? await this.env.tabUrl(tabId).catch(() => null) : null;
    opts.signal?.throwIfAborted();
    this.prune();
    let shared = this.reads.get(tabId);
    if (!shared || !this.serves(shared, url, userAction)) shared = this.start(tabId, url, userAction);
    // A copy: a caller that edits its page does not edit another's.
    return { ...(await this.wait(tabId, shared, opts.signal)) };
  }

  private serves(read: SharedRead, url: string | null, userAction: boolean): boolean {
    // An automatic read never fetches a page-supplied PDF address, so it cannot stand in for the user's read.
    if (userAction && !read.userAction) return false;
    if (read.url !== url) return false;
    if (read.finishedAt === null) return !read.controller.signal.aborted;
    return url !== null && this.now() - read.finishedAt <= this.windowMs;
  }

  private start(tabId: number, url: string | null, userAction: boolean): SharedRead {
    const controller = new AbortController();
    const read: SharedRead = {
      url,
      userAction,
      finishedAt: null,
      controller,
      waiting: 0,
      result: this.env.readPage(tabId, { userAction, signal: controller.signal }),
    };
    read.result.then(
      () => {
        read.finishedAt = this.now();
      },
      // A failed read is never shared after it failed: the next request reads again.
      () => {
        if (this.reads.get(tabId) === read) this.reads.delete(tabId);
      },
    );
    this.reads.set(tabId, read);
    return read;
  }

  private async wait(tabId: number, read: SharedRead, signal?: AbortSignal): Promise<PageContent> {
    read.waiting++;
    let onAbort = () => {};
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(signal?.reason ?? new DOMException('Aborted', 'AbortError'));
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([read.result, aborted]);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      read.waiting--;
      if (read.waiting === 0 && read.finishedAt === null && signal?.aborted) {
        read.controller.abort(signal.reason);
        if (this.reads.get(tabId) === read) this.reads.delete(tabId);
      }
    }
  }

  /** Drops finished reads past the window (their page text can be large). */
  private prune(): void {
    for (const [tabId, read] of this.reads)
      if (read.finishedAt !== null && this.now() - read.finishedAt > this.windowMs) this.reads.delete(tabId);
  }
}
