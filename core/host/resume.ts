// What survives a worker restart mid-answer (MV3 stops a service worker at will): the running job with its answer so
// far and the answer's ids, saved as they stream but at most once per PARTIAL_SAVE_INTERVAL_MS, and what its
// generation was asked (the prompt and the answer budget, saved once when it starts). After a restart the job shows
// as interrupted; Continue generates from the stored prompt followed by the answer so far (core/engine AnswerPrefix).
import type { ChatMessage, GenerateInput } from '../engine/types';
import type { JobView, PageContent } from '../protocol/messages';
import { isRecord } from '../protocol/schema';

/** At most one write of the partial answer per this many ms: a restart loses at most the answer's last 500 ms. */
export const PARTIAL_SAVE_INTERVAL_MS = 500;
/** Session-store keys: the running job (rewritten as it streams) and its prompt (written at each stage). */
export const RUNNING_JOB_KEY = 'runningJob';
export const RUNNING_PROMPT_KEY = 'runningPrompt';
/**
 * A page longer than this is not stored for Continue (chrome.storage.session holds 10 MB in all, counted in UTF-8:
 * 500k characters of CJK text are 1.5 MB): Continue still resumes from the stored prompt, but the answer's quotes are
 * then not matched against the page.
 */
export const MAX_STORED_PAGE_CHARS = 500_000;

/** A chat generation's input: what the engine was asked for the answer that streams. */
export type ChatInput = Extract<GenerateInput, { messages: ChatMessage[] }>;

export interface RunningJobRecord {
  job: JobView;
  /** The answer's ids as generated, as many as `job.answer` holds the text of. */
  answerIds: number[];
}

export interface RunningPromptRecord {
  jobId: string;
  /** The page the job read; null before it was read, or when it is longer than MAX_STORED_PAGE_CHARS. */
  page: PageContent | null;
  /** The streaming generation's input and answer budget; null until it starts (Continue then runs the job again). */
  generation: { input: ChatInput; maxTokens: number } | null;
}

/** An answer a worker restart cut short, as the restarted host finds it. */
export interface InterruptedAnswer {
  job: JobView;
  answerIds: number[];
  prompt: RunningPromptRecord | null;
}

/** The page as stored for Continue (null when too long to keep in the session store). */
export function storablePage(page: PageContent): PageContent | null {
  return page.text.length <= MAX_STORED_PAGE_CHARS ? page : null;
}

function isChatInput(v: unknown): v is ChatInput {
  return (
    isRecord(v) &&
    Array.isArray(v.messages) &&
    v.messages.every((m) => isRecord(m) && typeof m.role === 'string' && typeof m.content === 'string') &&
    (v.system === undefined || typeof v.system === 'string') &&
    (v.document === undefined || typeof v.document === 'string')
  );
}

function isIds(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((x) => Number.isInteger(x) && x >= 0);
}

/**
 * The answer a previous worker was writing when it stopped, from the two records it left (null if none, or if they
 * do not look like ours). `finishedIds`: jobs that did finish (a worker stopped between the two last writes).
 */
export function interruptedAnswer(
  jobRaw: unknown,
  promptRaw: unknown,
  finishedIds: ReadonlySet<string>,
): InterruptedAnswer | null {
  if (!isRecord(jobRaw) || !isRecord(jobRaw.job) || !isIds(jobRaw.answerIds)) return null;
  const j = jobRaw.job;
  if (typeof j.jobId !== 'string' || typeof j.tabId !== 'number' || typeof j.answer !== 'string') return null;
  if (finishedIds.has(j.jobId) || j.status !== 'running') return null;
  const job = {
    ...(j as unknown as JobView),
    status: 'interrupted' as const,
    stage: 'finished' as const,
    progress: null,
  };
  let prompt: RunningPromptRecord | null = null;
  if (isRecord(promptRaw) && promptRaw.jobId === j.jobId) {
    const g = promptRaw.generation;
    const page = promptRaw.page;
    prompt = {
      jobId: j.jobId,
      page: isRecord(page) && typeof page.text === 'string' ? (page as unknown as PageContent) : null,
      generation:
        isRecord(g) && isChatInput(g.input) && Number.isInteger(g.maxTokens)
          ? { input: g.input, maxTokens: g.maxTokens as number }
          : null,
    };
  }
  return { job, answerIds: jobRaw.answerIds, prompt };
}

/** The input that continues an interrupted answer: the stored prompt, then the answer so far as the reply's start. */
export function continuationInput(input: ChatInput, answer: string, answerIds: readonly number[]): ChatInput {
  return { ...input, answerPrefix: answerIds.length > 0 ? { text: answer, tokenIds: answerIds } : { text: answer } };
}

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const SYSTEM_CLOCK: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/**
 * Writes a value that changes often (the answer as it streams) at a bounded rate: at most one write per
 * `intervalMs` (writes start at least that far apart, one at a time), and a change is written at the latest
 * `intervalMs` after it (plus the time a write in flight takes). Each write takes a fresh `snapshot()`.
 */
export class ThrottledSaver<T> {
  private lastWrite = Number.NEGATIVE_INFINITY;
  private dirty = false;
  private closed = false;
  private timer: unknown = null;
  private inFlight: Promise<void> | null = null;
  /** Writes started (for the tests and the log). */
  writes = 0;

  constructor(
    private readonly snapshot: () => T,
    private readonly write: (value: T) => Promise<void>,
    private readonly intervalMs = PARTIAL_SAVE_INTERVAL_MS,
    private readonly onError: (e: unknown) => void = () => {},
    private readonly clock: Clock = SYSTEM_CLOCK,
  ) {}

  /** The value changed: write it now if the last write is `intervalMs` old, else when it is. */
  changed(): void {
    if (this.closed) return;
    this.dirty = true;
    this.schedule();
  }

  /** Writes what changed now (the rate bound aside) and waits for it. */
  async flush(): Promise<void> {
    this.clearTimer();
    while (this.inFlight) await this.inFlight;
    if (this.dirty && !this.closed) await this.writeNow();
  }

  /** No more writes; waits for the one in flight (so a later write of the same key lands after it). */
  async close(): Promise<void> {
    this.closed = true;
    this.dirty = false;
    this.clearTimer();
    while (this.inFlight) await this.inFlight;
  }

  private schedule(): void {
    if (this.timer !== null || this.inFlight || !this.dirty || this.closed) return;
    const wait = this.lastWrite + this.intervalMs - this.clock.now();
    if (wait <= 0) void this.writeNow();
    else
      this.timer = this.clock.setTimeout(() => {
        this.timer = null;
        this.schedule();
      }, wait);
  }

  private writeNow(): Promise<void> {
    this.dirty = false;
    this.lastWrite = this.clock.now();
    this.writes++;
    const done = this.write(this.snapshot())
      .catch((e) => this.onError(e))
      .finally(() => {
        this.inFlight = null;
        this.schedule();
      });
    this.inFlight = done;
    return done;
  }

  private clearTimer(): void {
    if (this.timer === null) return;
    this.clock.clearTimeout(this.timer);
    this.timer = null;
  }
}
