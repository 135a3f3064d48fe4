// The job lifecycle: start a job (one at a time), read its page, get its model from Models, plan the prompt, run the
// generation(s) — the one `runGeneration` of the host — and finish it (status, stats, persistence). Each tab keeps its
// last job (JobStore).
import type { AttentionPolicy } from '../attention/policy';
import { DEFAULT_MODEL_ID } from '../catalog/catalog';
import { describeStep, findCitations, runMapReduce } from '../document';
import type { ChatMessage, Engine, GenerationStats } from '../engine/types';
import type { ErrorInfo, HostEvent, JobKind, JobStage, JobView, PageContent, PreReadView } from '../protocol/messages';
import { ProtocolError, toErrorInfo } from '../protocol/messages';
import type { Settings } from '../protocol/settings';
import type { HostEnv } from './env';
import { doneStatsFrom, JobStore } from './jobs';
import type { Models } from './models';
import { type JobPrompt, mapReduceStepPrompt, planJobPrompt, type SinglePrompt, SUMMARY_REQUEST } from './prompt';
import type { ThreadBook } from './threads';

const PROGRESS_INTERVAL_MS = 250;
const JOBS_KEY = 'jobs';
const SPEEDUP_KEY = 'lastFastModeSpeedup';

/** What JobRunner needs from the host around it. */
export interface JobRunnerDeps {
  env: HostEnv;
  models: Models;
  settings(): Settings;
  emit(event: HostEvent): void;
  /** The state changed: the host broadcasts it with this job. */
  changed(job: JobView | null): void;
  threads: ThreadBook;
}

/** Reserve for the instruction, the question's role markers and the document header when turns are budgeted. */
const TURN_PLAN_SLACK_TOKENS = 64;

/** What a job's work leaves for its end: the page (citations are matched in it) and the answer's generated ids. */
interface JobOutput {
  page: PageContent | null;
  answerIds: number[] | null;
}

export class JobRunner {
  readonly jobs = new JobStore();
  private running: {
    job: JobView;
    controller: AbortController;
    /** Why the job was failed from outside (a lost GPU device), and the rejection that ends it at once. */
    failure?: ErrorInfo;
    rejectFailed: (e: unknown) => void;
  } | null = null;
  private preread: { tabId: number; controller: AbortController; done: Promise<void> } | null = null;
  lastSpeedup: number | null = null;
  /** The last pre-read's outcome (HostState.preRead). */
  lastPreRead: PreReadView | null = null;
  /** Mean decode step with fast mode off, per model and window: the baseline fast mode's speed-up is measured on. */
  private readonly fullMsPerStep = new Map<string, number>();
  private nextJob = 1;

  constructor(private readonly deps: JobRunnerDeps) {}

  /** Restores what a previous worker persisted (finished jobs, the last measured speed-up). */
  async restore(): Promise<void> {
    const [jobs, speedup] = await Promise.all([
      this.deps.env.sessionStore.get(JOBS_KEY).catch(() => undefined),
      this.deps.env.localStore.get(SPEEDUP_KEY).catch(() => undefined),
    ]);
    this.jobs.restore(jobs);
    if (typeof speedup === 'number' && Number.isFinite(speedup)) this.lastSpeedup = speedup;
  }

  get runningJob(): JobView | null {
    return this.running?.job ?? null;
  }

  /** Ends the running job with `error` (the GPU device was lost under it). */
  fail(error: ErrorInfo): void {
    if (!this.running) return;
    this.running.failure = error;
    this.running.controller.abort();
    // Work on a lost device may never settle (a readback that never maps): the job ends now, not when it returns.
    this.running.rejectFailed(new ProtocolError(error.code, error.message));
  }

  /** Stops the job `jobId` if it is the one running. */
  stop(jobId: string): boolean {
    if (!this.running || this.running.job.jobId !== jobId) return false;
    this.running.controller.abort();
    return true;
  }

  /** `document`: text the UI already has (a PDF file the user opened) instead of the tab's page. */
  /** `replaceLast`: the answer replaces the thread's last turn (Regenerate, an edited last question). */
  start(kind: JobKind, tabId: number, question: string, document?: PageContent, replaceLast = false): string {
    if (this.running)
      throw new ProtocolError(
        'busy',
        `An answer is still being written (tab ${this.running.job.tabId}); stop it first.`,
      );
    const gpu = this.deps.models.gpu;
    if (gpu.state === 'unavailable') throw new ProtocolError('no-webgpu', gpu.reason);
    const job: JobView = {
      jobId: `job-${Date.now().toString(36)}-${this.nextJob++}`,
      tabId,
      kind,
      question,
      status: 'running',
      stage: 'reading-page',
      answer: '',
      pageTitle: '',
      pageUrl: '',
      modelId: this.deps.settings().modelId || DEFAULT_MODEL_ID,
      coverage: null,
      progress: null,
      stats: null,
      error: null,
      startedAt: Date.now(),
      finishedAt: null,
      threadId: null,
      citations: [],
      droppedTurns: 0,
    };
    const controller = new AbortController();
    let rejectFailed!: (e: unknown) => void;
    const failed = new Promise<never>((_, reject) => (rejectFailed = reject));
    failed.catch(() => {}); // observed through the race in run()
    this.running = { job, controller, rejectFailed };
    this.jobs.put(job);
    this.deps.env.keepAlive(true);
    this.deps.changed(job);
    // A pre-read still prefilling gives way: the job starts once it has stopped (its KV so far stays cached).
    const preread = this.preread;
    this.preread = null;
    preread?.controller.abort();
    void (preread?.done ?? Promise.resolve()).then(() =>
      this.run(job, controller.signal, failed, document, replaceLast),
    );
    return job.jobId;
  }

  /**
   * Pre-read: the tab's page goes into the model's KV cache before the question (the popup or side panel opened with
   * the model loaded), so Ask prefills only the question. Only when the page fits the window whole under the
   * settings' window and answer length (the prompt of a page read in parts depends on the question); cancelled by
   * any job, by cancelPreRead (its Cancel), and by a pre-read of another tab (the side panel followed a tab switch).
   * `userAction`: the user opened the popup or side panel on this tab, as for Ask: opening them grants activeTab, and
   * a page-supplied PDF address may be fetched; without it (a tab switch) the read is automatic and fetches none.
   */
  async preRead(tabId: number, userAction = false): Promise<{ started: boolean; reason?: string }> {
    if (this.running) return { started: false, reason: 'busy' };
    if (this.preread?.tabId === tabId) return { started: false, reason: 'already pre-reading this tab' };
    const settings = this.deps.settings();
    const loaded = this.deps.models.loadedEngine(settings.modelId || DEFAULT_MODEL_ID, settings.contextWindow);
    if (!loaded) return { started: false, reason: 'no model loaded' };
    const other = this.preread;
    if (other) {
      other.controller.abort();
      await other.done;
      if (this.running || this.preread) return { started: false, reason: 'busy' };
    }
    const engine = await loaded;
    const controller = new AbortController();
    let finish = () => {};
    const done = new Promise<void>((r) => {
      finish = r;
    });
    this.preread = { tabId, controller, done };
    const view: PreReadView = { tabId, status: 'running', cachedTokens: 0, prefilledTokens: 0, reason: null };
    this.setPreRead(view);
    void (async () => {
      try {
        const page = await this.deps.env.readPage(tabId, { userAction, signal: controller.signal });
        if (!page.text.trim()) return this.setPreRead({ ...view, status: 'skipped', reason: 'the page has no text' });
        controller.signal.throwIfAborted();
        const thread = await this.deps.threads.threadForJob(tabId, page);
        const contextWindow = this.deps.models.contextWindow ?? settings.contextWindow;
        const raw = this.deps.models.template === 'raw';
        // Planned as a summary: no question is needed to know whether the page fits whole (then its text is the same).
        const count = (t: string) => engine.countTokens(t);
        const prompt = planJobPrompt('summarize', page, '', contextWindow, settings.maxAnswerTokens, count, { raw });
        if (prompt.strategy !== 'whole')
          return this.setPreRead({ ...view, status: 'skipped', reason: 'the page is read in parts per question' });
        controller.signal.throwIfAborted();
        // The document and the thread so far, then an empty question: everything but that is what Ask will reuse.
        const turns = this.deps.threads.planTurns(thread, Math.floor(contextWindow / 4), count, (t) =>
          t.kind === 'summarize' ? SUMMARY_REQUEST : t.question,
        );
        let stats: GenerationStats | null = null;
        for await (const ev of engine.generate(
          {
            messages: [...turns.messages, { role: 'user', content: '' }],
            system: prompt.system,
            document: prompt.document,
          },
          { maxTokens: 0, signal: controller.signal },
        )) {
          if (ev.type === 'prefill-progress')
            this.deps.emit({
              type: 'progress',
              jobId: null,
              tabId,
              progress: {
                stage: 'prefill',
                label: 'Pre-reading the page',
                prefill: { fraction: ev.done / Math.max(1, ev.total), done: ev.done, total: ev.total },
              },
            });
          else if (ev.type === 'done') stats = ev.stats;
        }
        controller.signal.throwIfAborted();
        // The prompt's last token always runs with the question (a decode step): the rest is in the cache now.
        const s = stats as GenerationStats | null;
        this.setPreRead({
          ...view,
          status: 'done',
          cachedTokens: s ? s.promptTokens - 1 : 0,
          prefilledTokens: s ? Math.max(0, s.prefillTokens - 1) : 0,
        });
      } catch (e) {
        if (controller.signal.aborted) this.setPreRead({ ...view, status: 'stopped' });
        else {
          this.deps.env.log?.('Pre-read failed', e);
          this.setPreRead({ ...view, status: 'failed', reason: toErrorInfo(e).message });
        }
      } finally {
        if (this.preread?.controller === controller) this.preread = null;
        finish();
      }
    })();
    return { started: true };
  }

  private setPreRead(view: PreReadView): void {
    this.lastPreRead = view;
    this.deps.changed(null);
  }

  /** Stops a pre-read; true if one was running. */
  cancelPreRead(): boolean {
    if (!this.preread) return false;
    this.preread.controller.abort();
    return true;
  }

  private setStage(job: JobView, stage: JobStage): void {
    job.stage = stage;
    job.progress = { stage };
    this.deps.emit({ type: 'progress', jobId: job.jobId, tabId: job.tabId, progress: job.progress });
  }

  private async run(
    job: JobView,
    signal: AbortSignal,
    failed: Promise<never>,
    document?: PageContent,
    replaceLast = false,
  ): Promise<void> {
    const settings = this.deps.settings();
    const out: JobOutput = { page: null, answerIds: null };
    try {
      await Promise.race([this.work(job, signal, settings, out, document, replaceLast), failed]);
      job.status = signal.aborted || job.stats?.stopReason === 'aborted' ? 'stopped' : 'done';
    } catch (e) {
      // The GPU work may fail before the device reports itself lost: ask, so the error says what happened.
      const failure =
        (this.running?.job === job ? this.running.failure : undefined) ??
        (signal.aborted || e instanceof ProtocolError ? null : await this.deps.models.lostError());
      if (failure) {
        job.status = 'error';
        job.error = failure;
      } else if (signal.aborted) job.status = 'stopped';
      else {
        job.status = 'error';
        job.error = toErrorInfo(e, 'generation-failed');
      }
    } finally {
      if (out.page && job.answer.trim()) job.citations = findCitations(job.answer, out.page.text);
      await this.deps.threads.addTurn(job, out.answerIds).catch((e) => this.deps.env.log?.('Thread not saved', e));
      await this.finish(job);
    }
  }

  /** Reads the page, gets the model, plans the prompt and generates; fills in the job's coverage and stats. */
  private async work(
    job: JobView,
    signal: AbortSignal,
    settings: Settings,
    out: JobOutput,
    document?: PageContent,
    replaceLast = false,
  ): Promise<void> {
    const emit = this.deps.emit;
    const page = document ?? (await this.deps.env.readPage(job.tabId, { userAction: true, signal }));
    out.page = page;
    job.pageTitle = page.title;
    job.pageUrl = page.url;
    if (!page.text.trim()) throw new ProtocolError('page-empty', 'This page has no readable text.');
    const thread = await this.deps.threads.threadForJob(job.tabId, page);
    job.threadId = thread.threadId;
    if (replaceLast) this.deps.threads.dropLastTurn(thread.threadId);
    signal.throwIfAborted();
    this.setStage(job, 'loading-model');
    const engine = await this.deps.models.ensure(job.modelId, settings.contextWindow, job, signal);
    signal.throwIfAborted();
    let prompt: JobPrompt;
    let history: ChatMessage[] = [];
    try {
      const contextWindow = this.deps.models.contextWindow ?? settings.contextWindow;
      const count = (t: string) => engine.countTokens(t);
      const raw = this.deps.models.template === 'raw';
      const plan = (answerTokens: number) =>
        planJobPrompt(job.kind, page, job.question, contextWindow, answerTokens, count, { raw });
      prompt = plan(settings.maxAnswerTokens);
      // Earlier turns go between the document and the question. The whole page keeps what the window has left;
      // a page read in parts gives the turns a quarter of the window and is planned again around them.
      if (prompt.strategy !== 'map-reduce' && thread.turns.length > 0) {
        const whole = prompt.strategy === 'whole';
        const budget = whole
          ? contextWindow -
            prompt.answerTokens -
            prompt.coverage.totalTokens -
            count(prompt.question) -
            TURN_PLAN_SLACK_TOKENS
          : Math.floor((contextWindow - prompt.answerTokens) / 4);
        const turns = this.deps.threads.planTurns(thread, Math.max(0, budget), count, (t) =>
          t.kind === 'summarize' ? SUMMARY_REQUEST : t.question,
        );
        history = turns.messages;
        job.droppedTurns = turns.dropped;
        if (!whole) prompt = plan(prompt.answerTokens + turns.tokens);
      }
    } catch (e) {
      throw new ProtocolError('generation-failed', (e as Error).message);
    }
    job.coverage = prompt.coverage;
    emit({ type: 'coverage', jobId: job.jobId, tabId: job.tabId, coverage: prompt.coverage });
    const attention = fastModePolicy(settings);
    let stats: GenerationStats | null = null;
    let parts = 0;
    let firstTokenAt: number | null = null;
    const onFirstToken = () => {
      firstTokenAt ??= Date.now();
    };
    if (prompt.strategy === 'map-reduce') {
      const { plan } = prompt;
      await runMapReduce(
        plan,
        prompt.chunks,
        async (input, step) => {
          const final = step.id === plan.finalStepId;
          const run = await runGeneration(job, engine, mapReduceStepPrompt(prompt, step, input), emit, {
            maxTokens: final ? prompt.answerTokens : plan.summaryTokens,
            attention,
            signal,
            stream: final,
            onFirstToken: final ? onFirstToken : undefined,
            label: describeStep(plan, step.id),
            steps: { done: step.id, total: plan.steps.length },
          });
          if (final) stats = run.stats;
          else parts++;
          return run.text;
        },
        { signal },
      );
    } else {
      this.setStage(job, 'prefill');
      const run = await runGeneration(job, engine, prompt, emit, {
        maxTokens: prompt.answerTokens,
        attention,
        signal,
        stream: true,
        history,
        onFirstToken,
      });
      stats = run.stats;
      out.answerIds = run.ids;
    }
    const done = stats as GenerationStats | null;
    if (done) {
      const key = `${job.modelId}|${settings.contextWindow}`;
      if (!settings.fastMode && done.msPerStep > 0 && done.generatedTokens > 1)
        this.fullMsPerStep.set(key, done.msPerStep);
      job.stats = doneStatsFrom(done, settings.fastMode, parts, this.fullMsPerStep.get(key));
      job.stats.timeToFirstTokenMs = firstTokenAt === null ? null : firstTokenAt - job.startedAt;
    }
  }

  private async finish(job: JobView): Promise<void> {
    job.stage = 'finished';
    job.finishedAt = Date.now();
    job.progress = null;
    this.running = null;
    this.deps.env.keepAlive(false);
    const speedup = job.stats?.fastModeSpeedup ?? null;
    if (speedup !== null) this.lastSpeedup = speedup;
    this.deps.emit({ type: 'done', jobId: job.jobId, tabId: job.tabId, status: job.status, stats: job.stats });
    if (job.error) this.deps.emit({ type: 'error', requestId: null, jobId: job.jobId, error: job.error });
    this.deps.changed(job);
    try {
      await this.deps.env.sessionStore.set(JOBS_KEY, this.jobs.finished());
      if (speedup !== null) await this.deps.env.localStore.set(SPEEDUP_KEY, speedup);
    } catch (e) {
      this.deps.env.log?.('Could not persist the finished job', e);
    }
  }
}

/**
 * One generation over [system + document] + question. `stream`: the tokens are the answer (deltas to the UI);
 * otherwise they are collected (a part summary) while the progress line names the step.
 */
export async function runGeneration(
  job: JobView,
  engine: Engine,
  prompt: SinglePrompt,
  emit: (event: HostEvent) => void,
  o: {
    maxTokens: number;
    attention: AttentionPolicy;
    signal: AbortSignal;
    stream: boolean;
    /** Called when the first token of this generation arrives. */
    onFirstToken?: () => void;
    label?: string;
    steps?: { done: number; total: number };
    /** Earlier turns of the thread (user, assistant, …), between the document and the question. */
    history?: ChatMessage[];
  },
): Promise<{ text: string; stats: GenerationStats | null; ids: number[] }> {
  const step = o.label ? { label: o.label, steps: o.steps } : {};
  if (o.label) {
    job.stage = 'prefill';
    job.progress = { stage: 'prefill', ...step };
    emit({ type: 'progress', jobId: job.jobId, tabId: job.tabId, progress: job.progress });
  }
  let text = '';
  const ids: number[] = [];
  let stats: GenerationStats | null = null;
  let decodeStart = 0;
  let tokens = 0;
  let lastEmit = 0;
  for await (const ev of engine.generate(
    {
      messages: [...(o.history ?? []), { role: 'user', content: prompt.question }],
      system: prompt.system,
      document: prompt.document,
    },
    { maxTokens: o.maxTokens, temperature: 0, signal: o.signal, attention: o.attention },
  )) {
    if (ev.type === 'prefill-progress') {
      const fraction = ev.total > 0 ? ev.done / ev.total : 1;
      job.progress = { stage: 'prefill', prefill: { fraction, done: ev.done, total: ev.total }, ...step };
      emit({ type: 'progress', jobId: job.jobId, tabId: job.tabId, progress: job.progress });
    } else if (ev.type === 'token') {
      if (tokens === 0) {
        o.onFirstToken?.();
        decodeStart = Date.now();
        job.stage = 'generating';
      }
      tokens++;
      ids.push(ev.tokenId);
      text += ev.text;
      if (o.stream) {
        job.answer += ev.text;
        emit({ type: 'delta', jobId: job.jobId, tabId: job.tabId, text: ev.text });
      }
      const now = Date.now();
      if (now - lastEmit >= PROGRESS_INTERVAL_MS && now > decodeStart) {
        lastEmit = now;
        const tokensPerSec = ((tokens - 1) * 1000) / (now - decodeStart);
        job.progress = { stage: 'generating', tokensPerSec, ...step };
        emit({ type: 'progress', jobId: job.jobId, tabId: job.tabId, progress: job.progress });
      }
    } else if (ev.type === 'done') {
      stats = ev.stats;
    }
  }
  return { text, stats, ids };
}

/** The attention policy of a job from the settings: fast mode's schedule (dynamic: threshold from the model family,
 * resolved by the engine) or full attention. */
export function fastModePolicy(
  settings: Pick<Settings, 'fastMode' | 'fastK' | 'fastSchedule' | 'fastStride' | 'fastQc'>,
): AttentionPolicy {
  if (!settings.fastMode) return { kind: 'full' };
  if (settings.fastSchedule === 'dynamic')
    return { kind: 'recycled', k: settings.fastK, dynamic: { qc: settings.fastQc } };
  return { kind: 'recycled', k: settings.fastK, stride: settings.fastStride };
}
