// The UI's view of the host, updated by host events. Pure: the popup's tests drive it directly.
import type { Coverage, ErrorInfo, HostEvent, HostState, JobView, Progress } from '../core/protocol/messages';

export interface UiState {
  host: HostState | null;
  /** The job of the tab this UI acts on. */
  job: JobView | null;
  /** Model download progress not tied to a job (a "Download" click). */
  loadProgress: Progress | null;
  /** The last error to show (request failures and job errors). */
  notice: ErrorInfo | null;
}

export const INITIAL_UI_STATE: UiState = { host: null, job: null, loadProgress: null, notice: null };

export function applyEvent(s: UiState, e: HostEvent, tabId: number | null): UiState {
  const mine = (jobId: string | null) => jobId !== null && s.job?.jobId === jobId;
  switch (e.type) {
    case 'state': {
      const job = e.state.job && e.state.job.tabId === tabId ? e.state.job : s.job;
      const loading = e.state.engine.state === 'loading';
      return { ...s, host: e.state, job, loadProgress: loading ? s.loadProgress : null };
    }
    case 'delta':
      if (!mine(e.jobId) || !s.job) return s;
      return { ...s, job: { ...s.job, answer: s.job.answer + e.text, stage: 'generating' } };
    case 'progress':
      if (e.jobId === null) return { ...s, loadProgress: e.progress };
      if (!mine(e.jobId) || !s.job) return s;
      return { ...s, job: { ...s.job, progress: e.progress, stage: e.progress.stage } };
    case 'coverage':
      if (!mine(e.jobId) || !s.job) return s;
      return { ...s, job: { ...s.job, coverage: e.coverage } };
    case 'done':
      if (!mine(e.jobId) || !s.job) return s;
      return { ...s, job: { ...s.job, status: e.status, stats: e.stats, stage: 'finished', progress: null } };
    case 'error':
      if (e.jobId !== null && !mine(e.jobId)) return s;
      return { ...s, notice: e.error, job: s.job && mine(e.jobId) ? { ...s.job, error: e.error } : s.job };
    case 'reply':
      return s;
  }
}

export function formatBytes(bytes: number | null): string {
  if (bytes === null || !Number.isFinite(bytes)) return '?';
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(bytes >= 1e10 ? 0 : 1)} GB`;
  if (bytes >= 1e6) return `${Math.round(bytes / 1e6)} MB`;
  return `${Math.round(bytes / 1e3)} kB`;
}

export function formatPercent(fraction: number): string {
  const p = fraction * 100;
  return `${p >= 99.95 || p < 10 ? p.toFixed(p >= 99.95 ? 0 : 1) : Math.round(p)}%`;
}

/** What the coverage meter says: how much of the page the model read, and how. */
export function coverageLine(c: Coverage): string {
  // A page cut before the model saw it (long page, PDF caps) is never "the whole page".
  if (c.truncated) return `${c.truncated.reason} Read ${formatPercent(c.fraction)} of the page.`;
  const tokens = `${c.includedTokens.toLocaleString()} of ${c.totalTokens.toLocaleString()} tokens`;
  if (c.strategy === 'map-reduce')
    return `Read the whole page in ${c.partsTotal} parts, summarized part by part (${c.totalTokens.toLocaleString()} tokens)`;
  if (c.fraction >= 1) return `Read the whole page (${c.includedTokens.toLocaleString()} tokens)`;
  return `Read ${formatPercent(c.fraction)} of the page (${tokens}): the ${c.partsUsed} of ${c.partsTotal} parts most relevant to the question`;
}

/** One line that says what is happening, for the status bar. */
export function statusLine(s: UiState): string {
  const h = s.host;
  if (!h) return 'Connecting…';
  if (h.gpu.state === 'unavailable') return 'WebGPU unavailable';
  const j = s.job;
  if (j?.status === 'running') {
    const p = j.progress;
    if (j.stage === 'reading-page') return 'Reading the page…';
    if (p?.label) {
      const steps = p.steps ? ` (step ${p.steps.done + 1} of ${p.steps.total})` : '';
      return `${p.label}…${steps}`;
    }
    if (j.stage === 'loading-model')
      return p?.download ? `Loading model… ${formatPercent(p.download.fraction)}` : 'Loading model…';
    if (j.stage === 'prefill')
      return p?.prefill ? `Reading into the model… ${formatPercent(p.prefill.fraction)}` : 'Reading into the model…';
    return p?.tokensPerSec ? `Writing… ${p.tokensPerSec.toFixed(1)} tokens/s` : 'Writing…';
  }
  if (h.engine.state === 'loading')
    return s.loadProgress?.download
      ? `Loading model… ${formatPercent(s.loadProgress.download.fraction)}`
      : 'Loading model…';
  if (j?.status === 'error' && j.error) return `Error: ${j.error.message}`;
  if (j?.status === 'stopped') return 'Stopped';
  if (j?.status === 'done' && j.stats)
    return `Done · ${j.stats.generatedTokens} tokens at ${j.stats.decodeTokensPerSec.toFixed(1)} tokens/s`;
  if (h.engine.state === 'error' && h.engine.error) return `Model error: ${h.engine.error.message}`;
  if (h.engine.state === 'ready') return 'Ready';
  if (h.gpu.state === 'unknown') return 'Checking WebGPU…';
  return 'Ready · the model loads on first use';
}
