// The history view: this page's threads or all of them (title, URL, date); reopen, delete one, clear all, export a
// thread as Markdown.
import { useCallback, useEffect, useState } from 'preact/hooks';
import type { RequestOf, RequestType, ResponseMap, ThreadSummary } from '../core/protocol/messages';

type Call = <T extends RequestType>(request: RequestOf<T>) => Promise<ResponseMap[T] | null>;

export interface HistoryProps {
  call: Call;
  tabId: number | null;
  onOpened: () => void;
  /** Saves a file (the export); defaults to a download link. */
  saveFile?: (name: string, text: string) => void;
}

function downloadText(name: string, text: string): void {
  const url = URL.createObjectURL(new Blob([text], { type: 'text/markdown' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function History({ call, tabId, onOpened, saveFile = downloadText }: HistoryProps) {
  const [scope, setScope] = useState<'page' | 'all'>('page');
  const [threads, setThreads] = useState<ThreadSummary[] | null>(null);

  const load = useCallback(async () => {
    const r = await call({ type: 'listHistory', tabId: scope === 'page' ? (tabId ?? undefined) : undefined });
    setThreads(r?.threads ?? []);
  }, [call, scope, tabId]);

  useEffect(() => {
    void load();
  }, [load]);

  return (
    <section class="history" data-testid="history">
      <div class="history-head">
        <strong>History</strong>
        <label>
          <input type="radio" checked={scope === 'page'} onChange={() => setScope('page')} /> This page
        </label>
        <label>
          <input type="radio" data-testid="history-all" checked={scope === 'all'} onChange={() => setScope('all')} />{' '}
          All
        </label>
        <button
          type="button"
          class="link danger"
          data-testid="history-clear"
          disabled={!threads?.length}
          onClick={async () => {
            if (await call({ type: 'clearHistory' })) await load();
          }}
        >
          Clear all
        </button>
      </div>
      {threads === null ? (
        <div class="muted">Loading…</div>
      ) : threads.length === 0 ? (
        <div class="muted" data-testid="history-empty">
          {scope === 'page' ? 'No earlier threads about this page.' : 'No threads yet.'}
        </div>
      ) : (
        <ul>
          {threads.map((t) => (
            <li key={t.threadId} data-testid="history-item" data-thread-id={t.threadId}>
              <button
                type="button"
                class="link history-open"
                data-testid="history-open"
                disabled={tabId === null}
                onClick={async () => {
                  if (tabId !== null && (await call({ type: 'openThread', tabId, threadId: t.threadId }))) onOpened();
                }}
              >
                <span class="title">{t.pageTitle || t.pageUrl}</span>
                <span class="first muted">
                  {t.firstQuestion} · {t.turnCount} {t.turnCount === 1 ? 'turn' : 'turns'}
                </span>
              </button>
              <span class="meta muted">
                <span class="url">{t.pageUrl}</span> · <time>{new Date(t.updatedAt).toLocaleString()}</time>
              </span>
              <span class="item-actions">
                <button
                  type="button"
                  class="link"
                  data-testid="history-export"
                  onClick={async () => {
                    const r = await call({ type: 'exportThread', threadId: t.threadId });
                    if (r) saveFile(r.fileName, r.markdown);
                  }}
                >
                  Export
                </button>
                <button
                  type="button"
                  class="link danger"
                  data-testid="history-delete"
                  onClick={async () => {
                    if (await call({ type: 'deleteThread', threadId: t.threadId })) await load();
                  }}
                >
                  Delete
                </button>
              </span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
