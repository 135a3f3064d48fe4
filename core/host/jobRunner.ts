// The job lifecycle: start a job (one at a time), read its page, get its model from Models, plan the prompt, run the
// generation(s) (generation.ts) and finish it (status, stats, persistence); and when a pre-read runs (preRead.ts does
// the reading). Each tab keeps its last job (JobStore).
import { DEFAULT_MODEL_ID } from '../catalog/catalog';
import { DocumentWorkStopped, describeStep, findCitations, runMapReduce } from '../document';
import type { ChatMessage, GenerationStats } from '../engine/types';
import type { ErrorInfo, HostEvent, JobKind, JobStage, JobView, PageContent, PreReadView } from '../protocol/messages';
import { ProtocolError, toErrorInfo } from '../protocol/messages';
import type { Settings } from '../protocol/settings';
import type { HostEnv } from './env';
import { chatInput, fastModePolicy, type GenerationOptions, runGeneration } from './generation';
import { doneStatsFrom, JobStore } from './jobs';
import type { Models } from './models';
import type { PageReads } from './pageReads';
import { preReadPage } from './preRead';
import { type JobPrompt, mapReduceStepPrompt, planJobPromptInSlices, SUMMARY_REQUEST } from './prompt';
import {
  type ChatInput,
  continuationInput,
  type InterruptedAnswer,
  interruptedAnswer,
  RUNNING_JOB_KEY,
  RUNNING_PROMPT_KEY,
  type RunningJobRecord,
  type RunningPromptRecord,
  storablePage,
  ThrottledSaver,
} from './resume';
import type { ThreadBook } from './threads';

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
  /** Page reads the pre-read shares with suggestQuestions (opening the popup asks for both). */
  pageReads: PageReads;
}

/** Reserve for the instruction, the question's role markers and the document header when turns are budgeted. */
const TURN_PLAN_SLACK_TOKENS = 64;

/** What a job's work leaves for its end: the page (citations are matched in it) and the answer's generated ids. */
interface JobOutput {
  page: PageContent | null;
  answerIds: number[] | null;
}

interface RunningJob {
  job: JobView;
  controller: AbortController;
  /** Why the job was failed from outside (a lost GPU device), and the rejection that ends it at once. */
  failure?: ErrorInfo;
  rejectFailed: (e: unknown) => void;
  /** The streamed answer's ids (after a Continue: the interrupted answer's first). */
  answerIds: number[];
  /** Persists the job and its answer so far for a worker restart (resume.ts). */
  saver: ThrottledSaver<RunningJobRecord>;
}

export class JobRunner {
  readonly jobs = new JobStore();
  private running: RunningJob | null = null;
  /** Answers a worker restart cut short, by job id: Continue resumes them. */
  private readonly interrupted = new Map<string, InterruptedAnswer>();
  private preread: { tabId: number; controller: AbortController; done: Promise<void> } | null = null;
  lastSpeedup: number | null = null;
  /** The last pre-read's outcome (HostState.preRead). */
  lastPreRead: PreReadView | null = null;
  /** Mean decode step with fast mode off, per model and window: the baseline fast mode's speed-up is measured on. */
  private readonly fullMsPerStep = new Map<string, number>();
  private nextJob = 1;

  constructor(private readonly deps: JobRunnerDeps) {}

  /**
   * Restores what a previous worker persisted: finished jobs, the last measured speed-up, and the answer it was
   * writing when it stopped (shown as interrupted, with its thread, until Continue).
   */
  async restore(): Promise<void> {
    const session = this.deps.env.sessionStore;
    const [jobs, speedup, runningJob, runningPrompt] = await Promise.all([
      session.get(JOBS_KEY).catch(() => undefined),
      this.deps.env.localStore.get(SPEEDUP_KEY).catch(() => undefined),
      session.get(RUNNING_JOB_KEY).catch(() => undefined),
      session.get(RUNNING_PROMPT_KEY).catch(() => undefined),
    ]);
    this.jobs.restore(jobs);
    if (typeof speedup === 'number' && Number.isFinite(speedup)) this.lastSpeedup = speedup;
    const finishedIds = new Set(
      this.jobs
        .finished()
        .filter((j) => j.status !== 'interrupted')
        .map((j) => j.jobId),
    );
    const cut = interruptedAnswer(runningJob, runningPrompt, finishedIds);
    if (!cut) return;
    this.interrupted.set(cut.job.jobId, cut);
    this.jobs.put(cut.job);
    if (cut.job.threadId)
      await this.deps.threads
        .open(cut.job.tabId, cut.job.threadId)
        .catch((e) => this.deps.env.log?.('The interrupted answer’s thread could not be read', e));
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
    const { signal, failed } = this.begin(job, []);
    this.savePrompt({ jobId: job.jobId, page: document ? storablePage(document) : null, generation: null });
    // A pre-read still prefilling gives way: the job starts once it has stopped (its KV so far stays cached).
    const preread = this.preread;
    this.preread = null;
    preread?.controller.abort();
    void (preread?.done ?? Promise.resolve()).then(() =>
      this.run(job, signal, failed, (out) => this.work(job, signal, this.deps.settings(), out, document, replaceLast)),
    );
    return job.jobId;
  }

  /**
   * Continue: an answer a worker restart interrupted goes on from its stored prompt and the answer so far (the
   * document's KV comes back from its snapshot where there is one). Interrupted before its generation started, the
   * job is run again. Returns the id of the job that writes the rest.
   */
  resume(tabId: number, jobId: string): string {
    const job = this.jobs.byId(jobId);
    if (job?.status !== 'interrupted' || job.tabId !== tabId)
      throw new ProtocolError('bad-request', 'That answer was not interrupted, or it was already continued.');
    if (this.running)
      throw new ProtocolError(
        'busy',
        `An answer is still being written (tab ${this.running.job.tabId}); stop it first.`,
      );
    const gpu = this.deps.models.gpu;
    if (gpu.state === 'unavailable') throw new ProtocolError('no-webgpu', gpu.reason);
    const cut = this.interrupted.get(jobId);
    this.interrupted.delete(jobId);
    const generation = cut?.prompt?.generation;
    // Nothing was generated yet, or another job has since replaced the stored prompt: the question is asked again.
    if (!cut || !generation) return this.start(job.kind, tabId, job.question, cut?.prompt?.page ?? undefined);
    Object.assign(job, { status: 'running', stage: 'loading-model', error: null, finishedAt: null, stats: null });
    const { signal, failed } = this.begin(job, [...cut.answerIds]);
    this.savePrompt({ jobId, page: cut.prompt?.page ?? null, generation });
    const preread = this.preread;
    this.preread = null;
    preread?.controller.abort();
    void (preread?.done ?? Promise.resolve()).then(() =>
      this.run(job, signal, failed, (out) =>
        this.continueWork(job, signal, this.deps.settings(), out, cut.prompt?.page ?? null, generation),
      ),
    );
    return jobId;
  }

  /** Makes `job` the running one: its abort, its failure path, keep-alive, and its persistence for a restart. */
  private begin(job: JobView, answerIds: number[]): { signal: AbortSignal; failed: Promise<never> } {
    const controller = new AbortController();
    let rejectFailed!: (e: unknown) => void;
    const failed = new Promise<never>((_, reject) => (rejectFailed = reject));
    failed.catch(() => {}); // observed through the race in run()
    const saver = new ThrottledSaver<RunningJobRecord>(
      () => ({ job: { ...job, progress: null }, answerIds: [...answerIds] }),
      (record) => this.deps.env.sessionStore.set(RUNNING_JOB_KEY, record),
      undefined,
      (e) => this.deps.env.log?.('Could not save the answer so far', e),
    );
    this.running = { job, controller, rejectFailed, answerIds, saver };
    this.jobs.put(job);
    this.deps.env.keepAlive(true);
    this.deps.changed(job);
    saver.changed();
    return { signal: controller.signal, failed };
  }

  /** What Continue needs after a restart (the page, the generation's input): written when it changes. */
  private savePrompt(record: RunningPromptRecord): void {
    this.deps.env.sessionStore
      .set(RUNNING_PROMPT_KEY, record)
      .catch((e) => this.deps.env.log?.('Could not save the prompt for Continue', e));
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
        const outcome = await preReadPage(this.deps, engine, settings, tabId, userAction, controller.signal);
        this.setPreRead({ ...view, ...outcome });
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
    work: (out: JobOutput) => Promise<void>,
  ): Promise<void> {
    const out: JobOutput = { page: null, answerIds: null };
    try {
      await Promise.race([work(out), failed]);
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
    if (!document) this.savePrompt({ jobId: job.jobId, page: storablePage(page), generation: null });
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
      // In slices Stop can interrupt: a 1M-character page takes seconds to count, chunk and index.
      const plan = (answerTokens: number) =>
        planJobPromptInSlices(job.kind, page, job.question, contextWindow, answerTokens, count, { raw, signal });
      prompt = await plan(settings.maxAnswerTokens);
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
        if (!whole) prompt = await plan(prompt.answerTokens + turns.tokens);
      }
    } catch (e) {
      if (e instanceof ProtocolError || e instanceof DocumentWorkStopped) throw e;
      throw new ProtocolError('generation-failed', (e as Error).message);
    }
    job.coverage = prompt.coverage;
    emit({ type: 'coverage', jobId: job.jobId, tabId: job.tabId, coverage: prompt.coverage });
    const attention = fastModePolicy(settings);
    const fastModeBreakEven = !settings.fastModeAlways;
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
          const run = await runGeneration(job, engine, chatInput(mapReduceStepPrompt(prompt, step, input)), emit, {
            maxTokens: final ? prompt.answerTokens : plan.summaryTokens,
            attention,
            fastModeBreakEven,
            signal,
            stream: final,
            onFirstToken: final ? onFirstToken : undefined,
            ...(final ? this.persistence(job, page) : {}),
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
      const run = await runGeneration(job, engine, chatInput(prompt, history), emit, {
        maxTokens: prompt.answerTokens,
        attention,
        fastModeBreakEven,
        signal,
        stream: true,
        onFirstToken,
        ...this.persistence(job, page),
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

  /** The streaming generation's hooks that persist its prompt (once) and its answer (as it streams). */
  private persistence(job: JobView, page: PageContent): Pick<GenerationOptions, 'onStart' | 'onToken'> {
    const running = this.running;
    return {
      onStart: (input, maxTokens) =>
        this.savePrompt({ jobId: job.jobId, page: storablePage(page), generation: { input, maxTokens } }),
      onToken: (id) => {
        if (running?.job !== job) return;
        running.answerIds.push(id);
        running.saver.changed();
      },
    };
  }

  /** Continue: the rest of an interrupted answer, from its stored prompt + the answer so far. */
  private async continueWork(
    job: JobView,
    signal: AbortSignal,
    settings: Settings,
    out: JobOutput,
    page: PageContent | null,
    generation: { input: ChatInput; maxTokens: number },
  ): Promise<void> {
    out.page = page;
    const threads = this.deps.threads;
    const thread =
      (job.threadId ? await threads.open(job.tabId, job.threadId).catch(() => null) : null) ??
      (await threads.threadForJob(job.tabId, { url: job.pageUrl, title: job.pageTitle }));
    job.threadId = thread.threadId;
    this.setStage(job, 'loading-model');
    const engine = await this.deps.models.ensure(job.modelId, settings.contextWindow, job, signal);
    signal.throwIfAborted();
    const running = this.running;
    const prefixIds = running?.job === job ? [...running.answerIds] : [];
    const remaining = generation.maxTokens - prefixIds.length;
    out.answerIds = prefixIds;
    if (remaining <= 0) return; // the answer had its whole budget already
    this.setStage(job, 'prefill');
    const run = await runGeneration(
      job,
      engine,
      continuationInput(generation.input, job.answer, prefixIds),
      this.deps.emit,
      {
        maxTokens: remaining,
        attention: fastModePolicy(settings),
        fastModeBreakEven: !settings.fastModeAlways,
        signal,
        stream: true,
        onToken: (id) => {
          if (running?.job !== job) return;
          running.answerIds.push(id);
          running.saver.changed();
        },
      },
    );
    out.answerIds = prefixIds.concat(run.ids);
    if (run.stats) {
      job.stats = doneStatsFrom(run.stats, settings.fastMode, 0);
      job.stats.timeToFirstTokenMs = null; // measured from the original Ask, it would count the interruption
    }
  }

  private async finish(job: JobView): Promise<void> {
    job.stage = 'finished';
    job.finishedAt = Date.now();
    job.progress = null;
    const saver = this.running?.job === job ? this.running.saver : null;
    this.running = null;
    this.deps.env.keepAlive(false);
    const speedup = job.stats?.fastModeSpeedup ?? null;
    if (speedup !== null) this.lastSpeedup = speedup;
    this.deps.emit({ type: 'done', jobId: job.jobId, tabId: job.tabId, status: job.status, stats: job.stats });
    if (job.error) this.deps.emit({ type: 'error', requestId: null, jobId: job.jobId, error: job.error });
    this.deps.changed(job);
    try {
      await saver?.close(); // its write in flight lands before the records are cleared
      await this.deps.env.sessionStore.set(JOBS_KEY, this.jobs.finished());
      await this.deps.env.sessionStore.set(RUNNING_JOB_KEY, null);
      await this.deps.env.sessionStore.set(RUNNING_PROMPT_KEY, null);
      if (speedup !== null) await this.deps.env.localStore.set(SPEEDUP_KEY, speedup);
    } catch (e) {
      this.deps.env.log?.('Could not persist the finished job', e);
    }
  }
}
