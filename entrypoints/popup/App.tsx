// The Recycled Reader UI, shared by the popup, the side panel and a tab opened on popup.html?tab=ID.
import { useCallback, useEffect, useMemo, useReducer, useState } from 'preact/hooks';
import type { HostApi } from '../../core/protocol/client';
import type {
  ErrorInfo,
  HostEvent,
  ModelEntry,
  RequestOf,
  RequestType,
  ResponseMap,
} from '../../core/protocol/messages';
import { ProtocolError } from '../../core/protocol/messages';
import { Markdown } from './markdown';
import { SettingsPanel } from './SettingsPanel';
import { applyEvent, formatBytes, formatPercent, INITIAL_UI_STATE, statusLine, type UiState } from './uiState';

export interface AppProps {
  api: HostApi;
  /** The tab to act on: fixed (?tab=ID, the popup's tab) or the active tab at each call (side panel). */
  resolveTab: () => Promise<number | null>;
  surface: 'popup' | 'sidepanel' | 'tab';
  copyText?: (text: string) => Promise<void>;
  openSidePanel?: () => void;
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

export function App({ api, resolveTab, surface, copyText, openSidePanel }: AppProps) {
  const [ui, dispatch] = useReducer(reducer, INITIAL_UI_STATE);
  const [tabId, setTabId] = useState<number | null>(null);
  const [question, setQuestion] = useState('');
  const [models, setModels] = useState<ModelEntry[]>([]);
  const [copied, setCopied] = useState(false);

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

  const refresh = useCallback(async () => {
    const tab = await resolveTab();
    setTabId(tab);
    const state = await call({ type: 'getState', tabId: tab ?? undefined });
    if (state) dispatch({ event: { type: 'state', state }, tabId: tab });
    const list = await call({ type: 'listModels' });
    if (list) setModels(list.models);
  }, [call, resolveTab]);

  useEffect(() => {
    void refresh();
  }, [refresh]);

  useEffect(() => api.onEvent((event) => dispatch({ event, tabId })), [api, tabId]);

  const host = ui.host;
  const job = ui.job;
  const running = host?.runningJobId != null;
  const settings = host?.settings;

  const start = async (kind: 'ask' | 'summarize') => {
    const tab = await resolveTab();
    setTabId(tab);
    if (tab === null) {
      dispatch({ notice: { code: 'page-unreadable', message: 'There is no tab to read.' } });
      return;
    }
    if (kind === 'ask') await call({ type: 'ask', tabId: tab, question });
    else await call({ type: 'summarize', tabId: tab });
  };

  const selectedModel = useMemo(
    () => models.find((m) => m.modelId === (settings?.modelId || host?.engine.modelId)) ?? null,
    [models, settings?.modelId, host?.engine.modelId],
  );

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
  const speedup = job?.stats?.fastModeSpeedup ?? host?.lastFastModeSpeedup ?? null;

  return (
    <main class={`app ${surface}`}>
      <header>
        <h1>Recycled Reader</h1>
        <select
          data-testid="model-select"
          value={settings?.modelId || selectedModel?.modelId || ''}
          onChange={(e) => void call({ type: 'setSettings', settings: { modelId: e.currentTarget.value } })}
        >
          {!settings?.modelId && <option value="">Choose a model…</option>}
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
      </div>

      <textarea
        data-testid="question"
        placeholder="Ask about this page…"
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
        <button type="button" data-testid="stop" disabled={!running} onClick={() => void call({ type: 'stop' })}>
          Stop
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

      <div class="coverage" data-testid="coverage" data-fraction={coverage ? coverage.fraction.toFixed(4) : ''}>
        {coverage ? (
          <>
            <div class="meter">
              <div style={{ width: `${coverage.fraction * 100}%` }} />
            </div>
            <span>
              {coverage.fraction >= 1
                ? `Read the whole page (${coverage.includedTokens.toLocaleString()} tokens)`
                : `Read ${formatPercent(coverage.fraction)} of the page (${coverage.includedTokens.toLocaleString()} of ${coverage.totalTokens.toLocaleString()} tokens): enlarge the context window to read more`}
            </span>
          </>
        ) : (
          <span class="muted">Page coverage appears here</span>
        )}
      </div>

      {ui.notice && ui.notice.message !== job?.error?.message && (
        <div class="notice" role="alert" data-code={ui.notice.code}>
          {ui.notice.message}
        </div>
      )}

      <section class="answer-box">
        {job?.question && <div class="question-echo">{job.kind === 'summarize' ? 'Summary' : job.question}</div>}
        <div class="answer" data-testid="answer" aria-live="polite">
          <Markdown text={job?.answer ?? ''} />
        </div>
        {!job?.answer && <div class="placeholder muted">The answer appears here. Nothing leaves your machine.</div>}
        {job?.answer && (
          <button
            type="button"
            class="copy"
            onClick={() => {
              void (copyText ?? ((t: string) => navigator.clipboard.writeText(t)))(job.answer).then(() => {
                setCopied(true);
                setTimeout(() => setCopied(false), 1200);
              });
            }}
          >
            {copied ? 'Copied' : 'Copy'}
          </button>
        )}
        {job?.stats && (
          <div class="stats muted">
            {job.stats.promptTokens.toLocaleString()} prompt tokens · prefill {job.stats.prefillTokensPerSec.toFixed(0)}{' '}
            tok/s · decode {job.stats.decodeTokensPerSec.toFixed(1)} tok/s
            {job.stats.fastModeSpeedup !== null && ` · fast mode ${job.stats.fastModeSpeedup.toFixed(2)}×`}
          </div>
        )}
      </section>

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
