// The UI's view of the host, updated by host events. Pure: the popup's tests drive it directly.
import type {
  Coverage,
  DoneStats,
  ErrorInfo,
  HostEvent,
  HostState,
  JobView,
  Progress,
  ThreadView,
} from '../core/protocol/messages';

/** A rate measured from successive progress events of one phase (download bytes, prefill tokens). */
export interface RateClock {
  key: string;
  t0: number;
  value0: number;
  perSec: number | null;
}

export interface UiState {
  host: HostState | null;
  /** The job of the tab this UI acts on (the thread's latest turn). */
  job: JobView | null;
  /** The tab's thread (finished turns). */
  thread: ThreadView | null;
  /** Model download progress not tied to a job (a "Download" click). */
  loadProgress: Progress | null;
  /** The last error to show (request failures and job errors). */
  notice: ErrorInfo | null;
  rate: RateClock | null;
  /** The tab this UI acts on, as of the last event (the pre-read it reports must be this tab's). */
  tabId: number | null;
}

export const INITIAL_UI_STATE: UiState = {
  host: null,
  job: null,
  thread: null,
  loadProgress: null,
  notice: null,
  rate: null,
  tabId: null,
};

/** Advances the rate clock: a new phase (or a value going back) restarts it. */
export function trackRate(prev: RateClock | null, key: string, value: number, now: number): RateClock {
  if (!prev || prev.key !== key || value < prev.value0) return { key, t0: now, value0: value, perSec: null };
  const seconds = (now - prev.t0) / 1000;
  return { ...prev, perSec: seconds >= 0.2 ? (value - prev.value0) / seconds : prev.perSec };
}

function rateOf(s: UiState, jobId: string | null, p: Progress, now: number): RateClock | null {
  if (p.download) return trackRate(s.rate, `${jobId}|download`, p.download.loadedBytes, now);
  if (p.prefill) return trackRate(s.rate, `${jobId}|prefill|${p.label ?? ''}`, p.prefill.done, now);
  // The prefill stage begins: the clock starts at 0 tokens, so the first chunk's report already gives a rate (a page
  // prefilled in one chunk reports once).
  if (p.stage === 'prefill' && !p.label) return { key: `${jobId}|prefill|`, t0: now, value0: 0, perSec: null };
  return s.rate;
}

export function applyEvent(s: UiState, e: HostEvent, tabId: number | null, now = Date.now()): UiState {
  const next = applyHostEvent(s, e, tabId, now);
  return next.tabId === tabId ? next : { ...next, tabId };
}

function applyHostEvent(s: UiState, e: HostEvent, tabId: number | null, now: number): UiState {
  const mine = (jobId: string | null) => jobId !== null && s.job?.jobId === jobId;
  switch (e.type) {
    case 'state': {
      // A state about this tab replaces its job and thread (a new or reopened thread clears the latest turn).
      const aboutMe = tabId !== null && e.state.tabId === tabId;
      const job = aboutMe
        ? e.state.job && e.state.job.tabId === tabId
          ? e.state.job
          : null
        : e.state.job && e.state.job.tabId === tabId
          ? e.state.job
          : s.job;
      const thread = aboutMe ? e.state.thread : s.thread;
      const loading = e.state.engine.state === 'loading';
      return { ...s, host: e.state, job, thread, loadProgress: loading ? s.loadProgress : null };
    }
    case 'delta':
      if (!mine(e.jobId) || !s.job) return s;
      return { ...s, job: { ...s.job, answer: s.job.answer + e.text, stage: 'generating' } };
    case 'progress':
      if (e.jobId === null) {
        // A pre-read of another tab (the side panel followed a tab switch meanwhile) is not this tab's progress.
        if (e.tabId !== null && tabId !== null && e.tabId !== tabId) return s;
        return { ...s, loadProgress: e.progress, rate: rateOf(s, null, e.progress, now) };
      }
      if (!mine(e.jobId) || !s.job) return s;
      return {
        ...s,
        job: { ...s.job, progress: e.progress, stage: e.progress.stage },
        rate: rateOf(s, e.jobId, e.progress, now),
      };
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
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(bytes >= 1e7 ? 0 : 1)} MB`;
  return `${Math.round(bytes / 1e3)} kB`;
}

export function formatPercent(fraction: number): string {
  const p = fraction * 100;
  return `${p >= 99.95 || p < 10 ? p.toFixed(p >= 99.95 ? 0 : 1) : Math.round(p)}%`;
}

/** What the coverage meter says: how much of the page the model read, and how. */
export function coverageLine(c: Coverage): string {
  // A summary of a very long page reads at most a fixed number of parts (MAX_MAP_STEPS): then it says which.
  const capped = c.strategy === 'map-reduce' && c.partsUsed < c.partsTotal;
  const cappedLine = `Summarized the first ${c.partsUsed} of ${c.partsTotal} parts (a summary reads at most that many).`;
  // A page cut before the model saw it (long page, PDF caps, garbled parts dropped) is never "the whole page".
  if (c.truncated)
    return `${c.truncated.reason}${capped ? ` ${cappedLine}` : ''} Read ${formatPercent(c.fraction)} of the page.`;
  const tokens = `${c.includedTokens.toLocaleString()} of ${c.totalTokens.toLocaleString()} tokens`;
  if (capped) return `${cappedLine} Read ${formatPercent(c.fraction)} of the page (${tokens}).`;
  if (c.strategy === 'map-reduce')
    return `Read the whole page in ${c.partsTotal} parts, summarized part by part (${c.totalTokens.toLocaleString()} tokens)`;
  if (c.fraction >= 1) return `Read the whole page (${c.includedTokens.toLocaleString()} tokens)`;
  return `Read ${formatPercent(c.fraction)} of the page (${tokens}): the ${c.partsUsed} of ${c.partsTotal} parts most relevant to the question`;
}

function downloadLine(p: Progress, rate: RateClock | null): string {
  const d = p.download!;
  const amount =
    d.totalBytes > 0
      ? `${formatBytes(d.loadedBytes)} of ${formatBytes(d.totalBytes)} (${formatPercent(d.fraction)})`
      : formatPercent(d.fraction);
  const speed = rate?.perSec ? ` · ${formatBytes(rate.perSec)}/s` : '';
  return `Loading model… ${amount}${speed}`;
}

function prefillFigures(p: Progress, rate: RateClock | null): string {
  const f = p.prefill!;
  const speed = rate?.perSec ? ` · ${Math.round(rate.perSec).toLocaleString()} tok/s` : '';
  return `${formatPercent(f.fraction)} (${f.done.toLocaleString()} of ${f.total.toLocaleString()} tokens)${speed}`;
}

function prefillLine(p: Progress, rate: RateClock | null): string {
  return `Reading into the model… ${prefillFigures(p, rate)}`;
}

/**
 * Where a finished answer's prompt came from. "Reused": KV still in memory (the document, earlier turns, a pre-read);
 * "restored": read back from a saved snapshot (IndexedDB); "prefilled": run through the model now.
 */
export function promptSource(st: DoneStats): string {
  const cached: string[] = [];
  if (st.reusedTokens > 0) cached.push(`${st.reusedTokens.toLocaleString()} tokens reused from memory`);
  if (st.restoredTokens > 0) cached.push(`${st.restoredTokens.toLocaleString()} restored from a snapshot`);
  // Only the last prompt token ran (always a decode step): say where the prompt came from, not "prefill 0 tok/s".
  if (cached.length > 0 && st.prefillTokens <= 1) return `${cached.join(', ')}, nothing to prefill`;
  const prefilled = `prefilled ${st.prefillTokens.toLocaleString()}${cached.length > 0 ? '' : ' tokens'} at ${st.prefillTokensPerSec.toFixed(0)} tok/s`;
  return cached.length > 0 ? `${cached.join(', ')}, ${prefilled}` : prefilled;
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
    if (j.stage === 'loading-model') return p?.download ? downloadLine(p, s.rate) : 'Loading model…';
    if (j.stage === 'prefill') return p?.prefill ? prefillLine(p, s.rate) : 'Reading into the model…';
    return p?.tokensPerSec ? `Writing… ${p.tokensPerSec.toFixed(1)} tokens/s` : 'Writing…';
  }
  if (h.engine.state === 'loading')
    return s.loadProgress?.download ? downloadLine(s.loadProgress, s.rate) : 'Loading model…';
  // This tab's pre-read (the popup or side panel opened with the model loaded): its progress, over the last answer.
  const pre = h.preRead && h.preRead.tabId === s.tabId ? h.preRead : null;
  if (h.engine.state === 'ready' && pre?.status === 'running') {
    const p = s.loadProgress;
    return p?.prefill && p.label ? `${p.label}… ${prefillFigures(p, s.rate)}` : 'Pre-reading the page…';
  }
  if (j?.status === 'error' && j.error) return `Error: ${j.error.message}`;
  const cancelledLoad = h.engine.state === 'empty' && h.engine.error ? h.engine.error.message : null;
  if (j?.status === 'stopped') return cancelledLoad ? `Stopped · ${cancelledLoad}` : 'Stopped';
  if (j?.status === 'interrupted') return 'Interrupted: the background stopped while writing this answer';
  if (j?.status === 'done' && j.stats) {
    const st = j.stats;
    return `Done · ${promptSource(st)} · ${st.generatedTokens} tokens at ${st.decodeTokensPerSec.toFixed(1)} tokens/s`;
  }
  if (h.engine.state === 'error' && h.engine.error) return `Model error: ${h.engine.error.message}`;
  if (cancelledLoad) return cancelledLoad;
  if (h.engine.state === 'ready' && pre?.status === 'done')
    return `Ready · page pre-read: ${pre.cachedTokens.toLocaleString()} tokens in memory, Ask prefills only the question`;
  if (h.engine.state === 'ready' && pre?.status === 'stopped') return 'Ready · pre-read stopped';
  if (h.engine.state === 'ready') return 'Ready';
  if (h.gpu.state === 'unknown') return 'Checking WebGPU…';
  return 'Ready · the model loads on first use';
}
