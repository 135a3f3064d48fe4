// The typed conversation between the UI (popup, side panel, a tab opened on popup.html) and the engine host
// (background service worker in Chrome, an extension page in Firefox), over a `runtime.connect` port.
//
//   UI → host:  RequestMessage  = { id, ...Request }           (each answered by exactly one reply or error)
//   host → UI:  HostEvent       = reply | error | state | delta | progress | coverage | done

import type { Citation } from '../document/citations';
import type { Settings, SettingsPatch } from './settings';

export type { Citation } from '../document/citations';

export const PROTOCOL_VERSION = 1;
/** Name of the UI port (`runtime.connect({name})`). */
export const UI_PORT_NAME = 'recycled-reader-ui';

export type Request =
  /** `document`: text the UI already has (a PDF file the user opened), read instead of the tab. */
  /** `replaceLast`: the answer replaces the thread's last turn (Regenerate, or the last question edited). */
  | { type: 'ask'; tabId: number; question: string; document?: PageContent; replaceLast?: boolean }
  | { type: 'summarize'; tabId: number; document?: PageContent }
  /** Finishes an answer a worker restart interrupted (the job's status is `interrupted`), from where it stopped. */
  | { type: 'continueAnswer'; tabId: number; jobId: string }
  /** Stops that job only (Stop in one tab never ends another tab's answer). */
  | { type: 'stop'; jobId: string }
  | { type: 'getState'; tabId?: number }
  | { type: 'setSettings'; settings: SettingsPatch }
  | { type: 'loadModel'; modelId: string }
  /** Cancels the model download in progress ("Download & load", or the one a job started). */
  | { type: 'cancelLoad' }
  | { type: 'deleteModel'; modelId: string }
  | { type: 'listModels' }
  | { type: 'clearSnapshots' }
  | { type: 'addCustomModel'; baseUrl: string }
  /** Debug/e2e: obtain the GPU device and run a small compute kernel with a checked result. */
  | { type: 'debugGpuSelfTest' }
  /** Debug/e2e: destroy the GPU device, as a driver reset would (the device-lost path). */
  | { type: 'debugLoseGpu' }
  /** The tab's next question starts a new thread. */
  | { type: 'newThread'; tabId: number }
  /** Threads of the tab's page (with tabId), or all. */
  | { type: 'listHistory'; tabId?: number }
  | { type: 'openThread'; tabId: number; threadId: string }
  | { type: 'deleteThread'; threadId: string }
  | { type: 'clearHistory' }
  | { type: 'exportThread'; threadId: string }
  /** Scroll the tab to a citation's passage and highlight it (a PDF: open it at the page). */
  | { type: 'showCitation'; tabId: number; pageUrl: string; citation: Citation }
  /** First questions from the page's headings (no model call). */
  | { type: 'suggestQuestions'; tabId: number }
  /**
   * Put the tab's page into the model's KV cache now (the model is loaded), so Ask prefills only the question.
   * `userAction`: the user opened the popup or side panel on this tab (activeTab is granted); false for a read the
   * user did not ask for (the side panel following a tab switch).
   */
  | { type: 'preRead'; tabId: number; userAction?: boolean }
  /** Stops the pre-read in progress (what it prefilled so far stays cached). */
  | { type: 'cancelPreRead' };

/** A page's readable text: what the content script extracts, a PDF's text, or a file the UI opened. */
export interface PageContent {
  title: string;
  url: string;
  text: string;
  /** Set when the text is not the whole page (extraction cap, PDF page cap or deadline, garbled parts dropped). */
  truncated?: PageTruncation | null;
}

export interface PageTruncation {
  /** Share of the page that is not in `text` (0..1). */
  fraction: number;
  /** Why, for the coverage line ("Only the first 2000 pages of 2400 were read."). */
  reason: string;
}

export type RequestType = Request['type'];
export type RequestOf<T extends RequestType> = Extract<Request, { type: T }>;
export type RequestMessage = Request & { id: number };

export type ErrorCode =
  /** The message does not follow this protocol (wrong shape, unknown type). */
  | 'bad-request'
  /** The port to the host closed (worker restarted, extension reloaded) before the reply. */
  | 'disconnected'
  | 'no-webgpu'
  /** The GPU device was lost (driver reset, GPU process crash) mid-answer: Retry creates a new one and reloads. */
  | 'gpu-lost'
  /** The page cannot be read: chrome://, the Web Store, file:// without permission, a closed tab. */
  | 'page-unreadable'
  | 'page-empty'
  /** Reading the page needs a host permission the user has not granted (ErrorInfo.origins says which). */
  | 'permission-needed'
  | 'no-model'
  | 'model-unknown'
  | 'model-load-failed'
  /** The engine is not available in this build. */
  | 'engine-unavailable'
  | 'generation-failed'
  /** Another job is running; stop it first. */
  | 'busy'
  | 'bad-url'
  | 'storage-failed'
  | 'internal';

export interface ErrorInfo {
  code: ErrorCode;
  message: string;
  /** permission-needed: the origin patterns to request (`permissions.request({ origins })`). */
  origins?: string[];
}

export type GpuStatus =
  | { state: 'unknown' }
  | { state: 'ok'; adapter: string; f16: boolean }
  | { state: 'unavailable'; reason: string };

export interface EngineStatus {
  state: 'empty' | 'loading' | 'ready' | 'error';
  /** The model loaded or being loaded. */
  modelId: string | null;
  contextWindow: number | null;
  error: ErrorInfo | null;
}

export type JobKind = 'ask' | 'summarize';
export type JobStage = 'reading-page' | 'loading-model' | 'prefill' | 'generating' | 'finished';
/** `interrupted`: the worker stopped mid-answer (MV3 restarts it at will); Continue finishes the answer. */
export type JobStatus = 'running' | 'done' | 'stopped' | 'error' | 'interrupted';

export interface Progress {
  stage: JobStage;
  /** Model download/load, 0..1, with bytes when known. */
  download?: { fraction: number; loadedBytes: number; totalBytes: number };
  /** Prompt processing, 0..1. */
  prefill?: { fraction: number; done: number; total: number };
  /** Decode speed so far. */
  tokensPerSec?: number;
  /** Long documents summarized in parts: e.g. "Summarizing part 3 of 12", with steps done / in all. */
  label?: string;
  steps?: { done: number; total: number };
}

/**
 * How much of the page the model read. `whole`: all of it in one prompt; `retrieval`: the parts most relevant to the
 * question; `map-reduce`: all of it, summarized part by part.
 */
export interface Coverage {
  strategy: 'whole' | 'retrieval' | 'map-reduce';
  includedChars: number;
  totalChars: number;
  includedTokens: number;
  totalTokens: number;
  /** includedTokens / totalTokens (1 = the whole page). */
  fraction: number;
  /** Chunks of the page read, and in all. */
  partsUsed: number;
  partsTotal: number;
  /** The page's text itself was cut before planning (extraction cap, PDF caps, garbled parts dropped); null if not. */
  truncated: PageTruncation | null;
}

export interface DoneStats {
  promptTokens: number;
  generatedTokens: number;
  prefillMs: number;
  decodeMs: number;
  prefillTokensPerSec: number;
  /** From Ask (the job's start: reading the page, loading the model, prefill) to the first answer token; null or
   * absent when no token came. */
  timeToFirstTokenMs?: number | null;
  decodeTokensPerSec: number;
  stopReason: 'stop-token' | 'max-tokens' | 'aborted' | 'context-full';
  /** Tokens run through the model for this answer's prompt (the rest came from memory or a snapshot). */
  prefillTokens: number;
  /** Prompt positions read back from a saved KV snapshot instead of prefilled. */
  restoredTokens: number;
  /** Prompt positions whose KV was still in memory (the document, earlier turns of the thread). */
  reusedTokens: number;
  fastMode: boolean;
  /** Fast mode: measured full-step time / mean step time (how much faster decode ran); null if not measured. */
  fastModeSpeedup: number | null;
  /** Fast mode asked for: whether decode ran it (false: the engine predicted it could not pay off on this model at
   * this length and ran full attention), with the predicted step-time ratio to full attention; absent = unknown. */
  fastModeActive?: boolean | null;
  fastModePredicted?: number | null;
  /** Fast mode: KV positions read per step vs what full attention would read. */
  positionsReadFraction: number | null;
  /** The attention policy decode ran with, and its full-attention steps (the rest were recycled); null if unknown. */
  attentionPolicy: string | null;
  fullSteps: number | null;
  /** Summaries written before the answer (map-reduce over a long document); 0 for one-prompt answers. */
  partSummaries: number;
}

export interface JobView {
  jobId: string;
  tabId: number;
  kind: JobKind;
  question: string;
  status: JobStatus;
  stage: JobStage;
  answer: string;
  pageTitle: string;
  pageUrl: string;
  modelId: string;
  coverage: Coverage | null;
  progress: Progress | null;
  stats: DoneStats | null;
  error: ErrorInfo | null;
  startedAt: number;
  finishedAt: number | null;
  /** The thread this job is a turn of. */
  threadId: string | null;
  /** Quotes of the answer matched against the page (set when the job ends). */
  citations: Citation[];
  /** Earlier turns of the thread left out of this prompt to fit the context window. */
  droppedTurns: number;
}

/** One question and its answer, as a thread keeps it. */
export interface TurnView {
  jobId: string;
  kind: JobKind;
  question: string;
  answer: string;
  status: JobStatus;
  citations: Citation[];
  stats: DoneStats | null;
  error: ErrorInfo | null;
  startedAt: number;
  finishedAt: number | null;
  droppedTurns: number;
}

/** The conversation about one page (its URL without the fragment, or a PDF file's name). */
export interface ThreadView {
  threadId: string;
  pageKey: string;
  pageUrl: string;
  pageTitle: string;
  createdAt: number;
  updatedAt: number;
  /** Finished turns, oldest first (a running job is not in here yet). */
  turns: TurnView[];
}

/** A thread as the history list shows it. */
export interface ThreadSummary {
  threadId: string;
  pageKey: string;
  pageUrl: string;
  pageTitle: string;
  createdAt: number;
  updatedAt: number;
  turnCount: number;
  firstQuestion: string;
}

/** The last pre-read (the page put into the KV cache before the question): what the status line reports. */
export interface PreReadView {
  tabId: number;
  status: 'running' | 'done' | 'stopped' | 'failed' | 'skipped';
  /** Prompt tokens now in the cache for the next Ask (done), of which `prefilledTokens` ran in this pre-read. */
  cachedTokens: number;
  prefilledTokens: number;
  /** Why it was skipped or failed. */
  reason: string | null;
}

export interface HostState {
  protocolVersion: number;
  settings: Settings;
  /** The model used while settings.modelId is ''. */
  defaultModelId: string;
  gpu: GpuStatus;
  engine: EngineStatus;
  /** The job of the tab asked about (getState.tabId), else the most recent job; null if none. */
  job: JobView | null;
  /** The job that is running now, on any tab. */
  runningJobId: string | null;
  /** Speed-up measured on the last fast-mode answer (any tab). */
  lastFastModeSpeedup: number | null;
  /** The tab `job` and `thread` are about (getState.tabId, or the job's tab in a broadcast); null = none asked. */
  tabId: number | null;
  /** That tab's thread; null if none. */
  thread: ThreadView | null;
  /** The last pre-read (any tab: compare its tabId); null when none ran since the worker started. */
  preRead: PreReadView | null;
  /** A storage failure the user should act on (the disk filled up while saving a snapshot), with what to do; null
   * or absent when there is none. */
  storageWarning?: ErrorInfo | null;
}

export type ModelFamily = 'llama' | 'qwen2' | 'qwen3' | 'smollm';

export interface ModelEntry {
  modelId: string;
  label: string;
  baseUrl: string;
  family: ModelFamily | null;
  quantization: string | null;
  vramRequiredMB: number | null;
  /** Estimated from parameter count and quantization until the manifest is read. */
  downloadBytesEstimate: number | null;
  custom: boolean;
  /** Some of its files are in the browser's model cache. */
  cached: boolean;
}

export interface GpuSelfTestResult {
  adapter: string;
  f16: boolean;
  elements: number;
  mismatches: number;
  /** First values read back, for the report. */
  sample: number[];
  ms: number;
}

export interface ResponseMap {
  ask: { jobId: string };
  summarize: { jobId: string };
  continueAnswer: { jobId: string };
  stop: { stopped: boolean };
  getState: HostState;
  setSettings: Settings;
  loadModel: { modelId: string; contextWindow: number };
  cancelLoad: { cancelled: boolean };
  deleteModel: { deletedFiles: number };
  listModels: { models: ModelEntry[] };
  clearSnapshots: { cleared: number };
  addCustomModel: ModelEntry;
  debugGpuSelfTest: GpuSelfTestResult;
  debugLoseGpu: { destroyed: boolean };
  newThread: { ok: true };
  listHistory: { threads: ThreadSummary[] };
  openThread: ThreadView;
  deleteThread: { deleted: boolean };
  clearHistory: { cleared: number };
  exportThread: { markdown: string; fileName: string };
  showCitation: { shown: boolean; reason?: string };
  suggestQuestions: { questions: string[] };
  preRead: { started: boolean; reason?: string };
  cancelPreRead: { cancelled: boolean };
}

export type HostEvent =
  | { type: 'reply'; requestId: number; requestType: RequestType; result: unknown }
  | { type: 'error'; requestId: number | null; jobId: string | null; error: ErrorInfo }
  | { type: 'state'; state: HostState }
  | { type: 'delta'; jobId: string; tabId: number; text: string }
  | { type: 'progress'; jobId: string | null; tabId: number | null; progress: Progress }
  | { type: 'coverage'; jobId: string; tabId: number; coverage: Coverage }
  | { type: 'done'; jobId: string; tabId: number; status: JobStatus; stats: DoneStats | null };

export type HostEventType = HostEvent['type'];

/** An error that carries a protocol error code across layers. */
export class ProtocolError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly origins?: string[],
  ) {
    super(message);
    this.name = 'ProtocolError';
  }
  toInfo(): ErrorInfo {
    return this.origins
      ? { code: this.code, message: this.message, origins: this.origins }
      : { code: this.code, message: this.message };
  }
}

export function toErrorInfo(e: unknown, fallback: ErrorCode = 'internal'): ErrorInfo {
  if (e instanceof ProtocolError) return e.toInfo();
  if (e instanceof Error) return { code: fallback, message: e.message || e.name };
  return { code: fallback, message: String(e) };
}
