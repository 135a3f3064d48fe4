// The Recycled Reader UI, shared by the popup, the side panel and a tab opened on popup.html?tab=ID.
import { useCallback, useEffect, useMemo, useReducer, useRef, useState } from 'preact/hooks';
import type { HostApi } from '../core/protocol/client';
import type {
  Citation,
  ErrorInfo,
  HostEvent,
  JobView,
  ModelEntry,
  PageContent,
  RequestOf,
  RequestType,
  ResponseMap,
} from '../core/protocol/messages';
import { ProtocolError } from '../core/protocol/messages';
import { History } from './History';
import { readPdfFile } from './pdfFile';
import { SettingsPanel } from './SettingsPanel';
import { ThreadTurns } from './Thread';
import { applyEvent, coverageLine, formatBytes, INITIAL_UI_STATE, statusLine, type UiState } from './uiState';

export interface AppProps {
  api: HostApi;
  /** The tab to act on: fixed (?tab=ID, the popup's tab) or the active tab at each call (side panel). */
  resolveTab: () => Promise<number | null>;
  surface: 'popup' | 'sidepanel' | 'tab';
  copyText?: (text: string) => Promise<void>;
  openSidePanel?: () => void;
  /** The side panel: calls back when the active tab changes or navigates (returns the unsubscribe). */
  watchTab?: (onChange: () => void) => () => void;
}

type Action = { event: HostEvent; tabId: number | null } | { notice: ErrorInfo | null } | { reset: UiState };

function reducer(s: UiState, a: Action): UiState {
  if ('reset' in a) return a.reset;
  if ('notice' in a) return { ...s, notice: a.notice };
  return applyEvent(s, a.event, a.tabId);
}

export function modelOptionLabel(m: ModelEntry): string {
  const parts = [m.label];
  if (m.downloadBytesEstimate !== null) parts.push(`≈${formatBytes(m.downloadBytesEstimate)}`);
  if (m.vramRequiredMB !== null) parts.push(`${(m.vramRequiredMB / 1024).toFixed(1)} GB VRAM`);
  if (m.cached) parts.push('downloaded');
  return parts.join(' · ');
}

export function App({ api, resolveTab, surface, copyText, openSidePanel, watchTab }: AppProps) {
  const [ui, dispatch] = useReducer(reducer, INITIAL_UI_STATE);
  const [tabId, setTabId] = useState<number | null>(null);
  const [question, setQuestion] = useState('');
  const [models, setModels] = useState<ModelEntry[]>([]);
  const [showHistory, setShowHistory] = useState(false);
  /** Edit-and-resend: the next Ask replaces the thread's last turn. */
  const [editing, setEditing] = useState(false);
  const [suggestions, setSuggestions] = useState<string[]>([]);
  const questionRef = useRef<HTMLTextAreaElement>(null);
  const copy = copyText ?? ((t: string) => navigator.clipboard.writeText(t));
  /** A PDF file the user opened: asked about instead of the tab while it is set. */
  const [file, setFile] = useState<PageContent | null>(null);
  const [fileBusy, setFileBusy] = useState(false);

  const call = useCallback(
    async <T extends RequestType>(request: RequestOf<T>): Promise<ResponseMap[T] | null> => {
      try {
        dispatch({ notice: null });
        return await api.request(request);
      } catch (e) {
        const info = e instanceof ProtocolError ? e.toInfo() : { code: 'internal' as const, message: String(e) };
        dispatch({ notice: info });
        return null;
      }
    },
    [api],
  );

  /** `userAction`: the user opened this UI on the tab (activeTab granted); false when the side panel followed a
   * tab switch, which grants nothing: the pre-read it starts is an automatic read. */
  const refresh = useCallback(
    async (userAction = true) => {
      const tab = await resolveTab();
      setTabId(tab);
      const state = await call({ type: 'getState', tabId: tab ?? undefined });
      if (state) dispatch({ event: { type: 'state', state }, tabId: tab });
      const list = await call({ type: 'listModels' });
      if (list) setModels(list.models);
      // Suggested first questions from the page's headings (no model call); quietly none when the page is unreadable.
      setSuggestions([]);
      // Pre-read: with the model loaded and nothing running, the page goes into the KV cache while the user types.
      if (tab !== null && state?.engine.state === 'ready' && state.runningJobId === null && !file)
        void api.request({ type: 'preRead', tabId: tab, userAction }).catch(() => null);
      if (tab !== null && state && !state.thread?.turns.length && !state.job) {
        const s = await api.request({ type: 'suggestQuestions', tabId: tab }).catch(() => null);
        setSuggestions(s?.questions ?? []);
      }
    },
    [api, call, resolveTab, file],
  );

  useEffect(() => {
    void refresh();
    questionRef.current?.focus();
  }, [refresh]);

  // The side panel follows the active tab: its thread and job.
  useEffect(() => watchTab?.(() => void refresh(false)), [watchTab, refresh]);

  useEffect(() => api.onEvent((event) => dispatch({ event, tabId })), [api, tabId]);

  // The background came back (a restarted worker): what it sent meanwhile is lost, so ask for the state again.
  useEffect(() => api.onReconnect?.(() => void refresh()), [api, refresh]);

  const host = ui.host;
  const job = ui.job;
  const running = host?.runningJobId != null;
  const settings = host?.settings;

  const start = async (kind: 'ask' | 'summarize', text = question, replaceLast = editing) => {
    const tab = await resolveTab();
    setTabId(tab);
    if (tab === null) {
      dispatch({ notice: { code: 'page-unreadable', message: 'There is no tab to read.' } });
      return;
    }
    const document = file ?? undefined;
    setSuggestions([]);
    if (kind === 'ask') {
      const r = await call({
        type: 'ask',
        tabId: tab,
        question: text,
        document,
        ...(replaceLast ? { replaceLast } : {}),
      });
      if (r) {
        setQuestion('');
        setEditing(false);
      }
    } else await call({ type: 'summarize', tabId: tab, document });
  };

  const newThread = async () => {
    const tab = await resolveTab();
    if (tab === null) return;
    if (await call({ type: 'newThread', tabId: tab })) {
      setEditing(false);
      await refresh();
    }
  };

  const showCitation = (citation: Citation) => {
    const pageUrl = ui.job?.pageUrl || ui.thread?.pageUrl || '';
    if (tabId === null) return;
    void call({ type: 'showCitation', tabId, pageUrl, citation }).then((r) => {
      if (r && !r.shown)
        dispatch({ notice: { code: 'page-unreadable', message: r.reason ?? 'The passage could not be shown.' } });
    });
  };

  /** Runs a failed job again (after a lost GPU device the host opens a new one and reloads the model). */
  const retry = async (j: JobView) => {
    if (j.kind === 'ask') await call({ type: 'ask', tabId: j.tabId, question: j.question });
    else await call({ type: 'summarize', tabId: j.tabId });
  };

  const openFile = async (picked: File | undefined) => {
    if (!picked) return;
    setFileBusy(true);
    dispatch({ notice: null });
    try {
      setFile(await readPdfFile(picked));
    } catch (e) {
      setFile(null);
      dispatch({ notice: { code: 'page-unreadable', message: `${picked.name}: ${(e as Error).message}` } });
    } finally {
      setFileBusy(false);
    }
  };

  // The host could not read the tab without a host permission: ask for it here (a click is a user gesture).
  const permission = ui.notice?.code === 'permission-needed' ? ui.notice.origins : undefined;
  const grant = async () => {
    if (!permission) return;
    const granted = await browser.permissions.request({ origins: permission });
    dispatch({ notice: null });
    if (!granted)
      dispatch({ notice: { code: 'page-unreadable', message: 'Without that permission the PDF cannot be read.' } });
  };

  const modelId = settings?.modelId || host?.defaultModelId || '';
  const selectedModel = useMemo(() => models.find((m) => m.modelId === modelId) ?? null, [models, modelId]);

  if (host?.gpu.state === 'unavailable')
    return (
      <main class={`app ${surface}`}>
        <section class="no-gpu" data-testid="status">
          <h1>WebGPU is not available</h1>
          <p class="reason">{host.gpu.reason}</p>
          <p>Recycled Reader runs its language model on your GPU through WebGPU. To use it:</p>
          <ul>
            <li>use a recent Chrome or Edge (113+) on a machine with a supported GPU and driver</li>
            <li>
              on Linux, enable <code>chrome://flags/#enable-unsafe-webgpu</code> and <code>#enable-vulkan</code>
            </li>
            <li>
              in Firefox, WebGPU must be enabled (<code>dom.webgpu.enabled</code>)
            </li>
          </ul>
        </section>
      </main>
    );

  const progress = job?.status === 'running' ? job.progress : ui.loadProgress;
  const barFraction = progress?.download?.fraction ?? progress?.prefill?.fraction ?? null;
  const coverage = job?.coverage ?? null;
  const prereading = host?.preRead?.status === 'running' && host.preRead.tabId === tabId && !running;
  const speedup = job?.stats?.fastModeSpeedup ?? host?.lastFastModeSpeedup ?? null;

  return (
    <main class={`app ${surface}`}>
      <header>
        <h1>Recycled Reader</h1>
        <button
          type="button"
          class="link"
          data-testid="new-thread"
          title="Start a new conversation about this page"
          disabled={running}
          onClick={() => void newThread()}
        >
          New thread
        </button>
        <button
          type="button"
          class="link"
          data-testid="history-toggle"
          aria-pressed={showHistory}
          onClick={() => setShowHistory(!showHistory)}
        >
          History
        </button>
        <select
          data-testid="model-select"
          value={modelId}
          onChange={(e) => void call({ type: 'setSettings', settings: { modelId: e.currentTarget.value } })}
        >
          {models.map((m) => (
            <option key={m.modelId} value={m.modelId}>
              {modelOptionLabel(m)}
            </option>
          ))}
        </select>
      </header>

      <div class="status-row">
        <span class={`status ${job?.status ?? ''}`} data-testid="status">
          {statusLine(ui)}
        </span>
        {barFraction !== null && (
          <div class="bar" role="progressbar" aria-valuenow={Math.round(barFraction * 100)}>
            <div style={{ width: `${Math.min(100, barFraction * 100)}%` }} />
          </div>
        )}
        {host?.engine.state === 'loading' && (
          <button
            type="button"
            class="link"
            data-testid="cancel-load"
            title="Stop downloading the model"
            onClick={() =>
              void (job?.status === 'running' && job.stage === 'loading-model'
                ? call({ type: 'stop', jobId: job.jobId })
                : call({ type: 'cancelLoad' }))
            }
          >
            Cancel
          </button>
        )}
        {prereading && (
          <button
            type="button"
            class="link"
            data-testid="cancel-preread"
            title="Stop reading the page ahead of the question"
            onClick={() => void call({ type: 'cancelPreRead' })}
          >
            Cancel
          </button>
        )}
      </div>

      {editing && (
        <div class="editing muted" data-testid="editing">
          Editing the last question: the new answer replaces the last turn.{' '}
          <button type="button" class="link" onClick={() => setEditing(false)}>
            Cancel
          </button>
        </div>
      )}
      <textarea
        ref={questionRef}
        data-testid="question"
        placeholder={ui.thread?.turns.length || job ? 'Ask a follow-up…' : 'Ask about this page…'}
        rows={3}
        value={question}
        onInput={(e) => setQuestion(e.currentTarget.value)}
        onKeyDown={(e) => {
          if (e.key === 'Enter' && !e.shiftKey && question.trim() && !running) {
            e.preventDefault();
            void start('ask');
          }
        }}
      />
      <div class="actions">
        <button
          type="button"
          class="primary"
          data-testid="ask"
          disabled={running || !question.trim()}
          onClick={() => void start('ask')}
        >
          Ask
        </button>
        <button type="button" data-testid="summarize" disabled={running} onClick={() => void start('summarize')}>
          Summarize
        </button>
        <button
          type="button"
          data-testid="stop"
          disabled={job?.status !== 'running'}
          onClick={() => job && void call({ type: 'stop', jobId: job.jobId })}
        >
          {job?.status === 'running' && job.stage === 'loading-model' ? 'Cancel' : 'Stop'}
        </button>
        <label class="toggle" title="Recycled Attention: faster answers on long pages">
          <input
            type="checkbox"
            data-testid="fast-mode"
            checked={settings?.fastMode ?? true}
            onChange={(e) => void call({ type: 'setSettings', settings: { fastMode: e.currentTarget.checked } })}
          />
          <span>Fast mode</span>
          {speedup !== null && <span class="speedup">{speedup.toFixed(2)}× last</span>}
        </label>
      </div>

      <div class="file-row">
        <label class="file-pick">
          <input
            type="file"
            accept="application/pdf,.pdf"
            data-testid="pdf-file"
            disabled={running || fileBusy}
            onChange={(e) => void openFile(e.currentTarget.files?.[0])}
          />
          <span>{fileBusy ? 'Reading the PDF…' : 'Open a PDF file…'}</span>
        </label>
        {file && (
          <span class="file-name" data-testid="pdf-name">
            {file.title}
            <button type="button" class="link" title="Ask about the tab again" onClick={() => setFile(null)}>
              ×
            </button>
          </span>
        )}
      </div>

      <div class="coverage" data-testid="coverage" data-fraction={coverage ? coverage.fraction.toFixed(4) : ''}>
        {coverage ? (
          <>
            <div class="meter">
              <div style={{ width: `${coverage.fraction * 100}%` }} />
            </div>
            <span>{coverageLine(coverage)}</span>
          </>
        ) : (
          <span class="muted">Page coverage appears here</span>
        )}
      </div>

      {ui.notice && ui.notice.message !== job?.error?.message && (
        <div class="notice" role="alert" data-code={ui.notice.code}>
          {ui.notice.message}
          {permission && (
            <button type="button" data-testid="grant-permission" onClick={() => void grant()}>
              Allow
            </button>
          )}
        </div>
      )}

      {job?.status === 'error' && job.error?.code === 'gpu-lost' && (
        <div class="notice" role="alert" data-code="gpu-lost">
          {job.error.message}
          <button type="button" data-testid="retry" disabled={running} onClick={() => void retry(job)}>
            Retry
          </button>
        </div>
      )}

      {host?.storageWarning && (
        <div class="notice" role="alert" data-code={host.storageWarning.code} data-testid="storage-warning">
          {host.storageWarning.message}
        </div>
      )}

      {job?.status === 'interrupted' && (
        <div class="notice" role="alert" data-code="interrupted" data-testid="interrupted">
          The background stopped while writing this answer; what was written is kept.
          <button
            type="button"
            data-testid="continue"
            disabled={running}
            onClick={() => void call({ type: 'continueAnswer', tabId: job.tabId, jobId: job.jobId })}
          >
            Continue
          </button>
        </div>
      )}

      {suggestions.length > 0 && !job && (
        <div class="suggestions">
          {suggestions.map((q) => (
            <button
              type="button"
              key={q}
              class="suggestion"
              data-testid="suggestion"
              disabled={running}
              onClick={() => void start('ask', q, false)}
            >
              {q}
            </button>
          ))}
        </div>
      )}

      {showHistory && (
        <History
          call={call}
          tabId={tabId}
          onOpened={() => {
            setShowHistory(false);
            void refresh();
          }}
        />
      )}

      <ThreadTurns
        thread={ui.thread}
        job={job}
        running={running}
        actions={{
          copyText: copy,
          showCitation,
          // An interrupted answer is not a turn of the thread yet: Regenerate would replace the turn before it.
          regenerate:
            job && job.kind === 'ask' && job.status !== 'interrupted'
              ? () => void start('ask', job.question, true)
              : undefined,
          editQuestion:
            job && job.kind === 'ask' && job.status !== 'interrupted'
              ? () => {
                  setQuestion(job.question);
                  setEditing(true);
                  questionRef.current?.focus();
                }
              : undefined,
        }}
      />

      {settings && (
        <SettingsPanel
          settings={settings}
          selectedModel={selectedModel}
          engine={host.engine}
          gpu={host.gpu}
          call={call}
          onModelsChanged={refresh}
          openSidePanel={surface === 'popup' ? openSidePanel : undefined}
        />
      )}
    </main>
  );
}
