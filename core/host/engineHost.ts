// The engine host: owns one Engine, runs one job at a time, keeps each tab's last job, fans events out to every
// connected UI. It touches no browser API: the background (Chrome service worker, Firefox extension page) passes a
// HostEnv that does.
import { DEFAULT_MODEL_ID } from '../catalog/catalog';
import { describeStep, runMapReduce } from '../document';
import type { AttentionPolicy, Engine, GenerationStats } from '../engine/types';
import type { GpuContext } from '../gpu/context';
import { describeAdapter } from '../gpu/context';
import type {
  EngineStatus,
  GpuStatus,
  HostEvent,
  HostState,
  JobKind,
  JobStage,
  JobView,
  Progress,
  Request,
  RequestType,
  ResponseMap,
} from '../protocol/messages';
import { PROTOCOL_VERSION, ProtocolError, toErrorInfo } from '../protocol/messages';
import { runGeneration } from './generation';
import { runGpuSelfTest } from './gpuSelfTest';
import { doneStatsFrom, JobStore } from './jobs';
import { customModelFor, findModel, listModelEntries, normalizeModelBaseUrl } from './models';
import { type JobPrompt, mapReduceStepPrompt, type PageContent, planJobPrompt } from './prompt';
import { applySettingsPatch, type Settings, settingsFromStorage } from './settings';

export interface KeyValueStore {
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown): Promise<void>;
}

/** What the engine factory needs from the settings (read when the engine is first created). */
export interface EngineOptions {
  /** Byte budget of the KV snapshot store, in MiB; 0 = no snapshots. */
  snapshotBudgetMB: number;
}

export interface HostEnv {
  /** The GPU device; throws GpuUnavailableError with the reason when there is none. */
  openGpu(): Promise<GpuContext>;
  /** The engine factory (entrypoints/background/engineFactory.ts). May throw ProtocolError('engine-unavailable'). */
  createEngine(gpu: GpuContext, opts: EngineOptions): Engine;
  /** The tab's readable text; throws ProtocolError('page-unreadable') with the reason. */
  readPage(tabId: number): Promise<PageContent>;
  /** Survives browser restarts (settings). */
  localStore: KeyValueStore;
  /** Survives worker restarts within a browser session (finished jobs). */
  sessionStore: KeyValueStore;
  /** The browser's model file cache (shared with WebLLM). */
  modelFiles: { cachedBaseUrls(): Promise<Set<string>>; delete(baseUrl: string): Promise<number> };
  clearSnapshots(): Promise<number>;
  fetchText(url: string): Promise<string>;
  /** Keep the worker alive while work runs (MV3 stops idle workers after 30 s). */
  keepAlive(active: boolean): void;
  log?(message: string, error?: unknown): void;
}

type Listener = (event: HostEvent) => void;
const SETTINGS_KEY = 'settings';
const JOBS_KEY = 'jobs';
const SPEEDUP_KEY = 'lastFastModeSpeedup';
const PROGRESS_INTERVAL_MS = 250;

export class EngineHost {
  private settings: Settings = settingsFromStorage(undefined);
  private gpu: GpuStatus = { state: 'unknown' };
  private gpuContext: Promise<GpuContext> | null = null;
  private engine: Engine | null = null;
  private engineStatus: EngineStatus = { state: 'empty', modelId: null, contextWindow: null, error: null };
  private loading: { key: string; promise: Promise<void> } | null = null;
  /** The loaded model's real context window (the setting, capped by what the model supports). */
  private loadedContextWindow: number | null = null;
  private readonly jobs = new JobStore();
  private running: { job: JobView; controller: AbortController } | null = null;
  private lastSpeedup: number | null = null;
  /** Mean decode step with fast mode off, per model and window: the baseline fast mode's speed-up is measured on. */
  private readonly fullMsPerStep = new Map<string, number>();
  private readonly listeners = new Set<Listener>();
  private nextJob = 1;
  private ready: Promise<void> | null = null;

  constructor(private readonly env: HostEnv) {}

  /** Loads settings and persisted jobs, and probes the GPU. Safe to call more than once. */
  init(): Promise<void> {
    this.ready ??= (async () => {
      const [settings, jobs, speedup] = await Promise.all([
        this.env.localStore.get(SETTINGS_KEY).catch(() => undefined),
        this.env.sessionStore.get(JOBS_KEY).catch(() => undefined),
        this.env.localStore.get(SPEEDUP_KEY).catch(() => undefined),
      ]);
      this.settings = settingsFromStorage(settings);
      this.jobs.restore(jobs);
      if (typeof speedup === 'number' && Number.isFinite(speedup)) this.lastSpeedup = speedup;
      void this.openGpu().catch(() => {}); // status lands in this.gpu
    })();
    return this.ready;
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  state(tabId?: number): HostState {
    return {
      protocolVersion: PROTOCOL_VERSION,
      settings: this.settings,
      defaultModelId: DEFAULT_MODEL_ID,
      gpu: this.gpu,
      engine: this.engineStatus,
      job: tabId === undefined ? this.jobs.latest() : this.jobs.forTab(tabId),
      runningJobId: this.running?.job.jobId ?? null,
      lastFastModeSpeedup: this.lastSpeedup,
    };
  }

  async handle<T extends RequestType>(request: Extract<Request, { type: T }>): Promise<ResponseMap[T]> {
    await this.init();
    return (await this.dispatch(request as Request)) as ResponseMap[T];
  }

  private async dispatch(r: Request): Promise<ResponseMap[RequestType]> {
    switch (r.type) {
      case 'getState':
        return this.state(r.tabId);
      case 'ask':
        return { jobId: this.startJob('ask', r.tabId, r.question.trim(), r.document) };
      case 'summarize':
        return { jobId: this.startJob('summarize', r.tabId, '', r.document) };
      case 'stop': {
        if (!this.running) return { stopped: false };
        this.running.controller.abort();
        return { stopped: true };
      }
      case 'setSettings': {
        if (r.settings.modelId) findModel(r.settings.modelId, r.settings.customModels ?? this.settings.customModels);
        await this.saveSettings(applySettingsPatch(this.settings, r.settings));
        return this.settings;
      }
      case 'loadModel': {
        const contextWindow = this.settings.contextWindow;
        await this.ensureModel(r.modelId, contextWindow, null, undefined);
        return { modelId: r.modelId, contextWindow };
      }
      case 'deleteModel':
        return { deletedFiles: await this.deleteModel(r.modelId) };
      case 'listModels': {
        const cached = await this.env.modelFiles.cachedBaseUrls().catch(() => new Set<string>());
        return { models: listModelEntries(this.settings.customModels, cached) };
      }
      case 'clearSnapshots':
        return { cleared: await this.env.clearSnapshots() };
      case 'addCustomModel':
        return this.addCustomModel(r.baseUrl);
      case 'debugGpuSelfTest': {
        const gpu = await this.openGpu();
        return runGpuSelfTest(gpu.device, describeAdapter(gpu.adapterInfo), gpu.f16);
      }
    }
  }

  private readonly emitter = (event: HostEvent) => this.emit(event);

  private emit(event: HostEvent): void {
    for (const l of this.listeners) {
      try {
        l(event);
      } catch (e) {
        this.env.log?.('A UI listener failed; dropping it', e);
        this.listeners.delete(l);
      }
    }
  }

  private emitState(job: JobView | null): void {
    this.emit({ type: 'state', state: { ...this.state(), job } });
  }

  private openGpu(): Promise<GpuContext> {
    this.gpuContext ??= this.env.openGpu().then(
      (ctx) => {
        this.gpu = { state: 'ok', adapter: describeAdapter(ctx.adapterInfo), f16: ctx.f16 };
        this.emitState(null);
        return ctx;
      },
      (e: unknown) => {
        this.gpu = { state: 'unavailable', reason: e instanceof Error ? e.message : String(e) };
        this.emitState(null);
        throw new ProtocolError('no-webgpu', this.gpu.reason);
      },
    );
    return this.gpuContext;
  }

  private async saveSettings(next: Settings): Promise<void> {
    this.settings = next;
    try {
      await this.env.localStore.set(SETTINGS_KEY, next);
    } catch (e) {
      throw new ProtocolError('storage-failed', `Settings could not be saved: ${(e as Error).message}`);
    }
    this.emitState(null);
  }

  private async addCustomModel(input: string) {
    const baseUrl = normalizeModelBaseUrl(input);
    const configUrl = `${baseUrl}mlc-chat-config.json`;
    let config: unknown;
    try {
      config = JSON.parse(await this.env.fetchText(configUrl));
    } catch (e) {
      throw new ProtocolError('bad-url', `No readable mlc-chat-config.json at ${configUrl}: ${(e as Error).message}`);
    }
    if (typeof config !== 'object' || config === null || !('model_type' in config || 'model_config' in config))
      throw new ProtocolError('bad-url', `${configUrl} is not an MLC model config (no model_type / model_config).`);
    const model = customModelFor(baseUrl);
    const others = this.settings.customModels.filter((m) => m.modelId !== model.modelId);
    await this.saveSettings({ ...this.settings, customModels: [...others, model] });
    return listModelEntries([model], new Set()).at(-1)!;
  }

  private async deleteModel(modelId: string): Promise<number> {
    const entry = findModel(modelId, this.settings.customModels);
    if (this.loading?.key.startsWith(`${modelId}|`) || this.running?.job.modelId === modelId)
      throw new ProtocolError('busy', 'This model is in use; stop the running answer first.');
    if (this.engine && this.engineStatus.modelId === modelId) {
      await this.engine.unload();
      this.engineStatus = { state: 'empty', modelId: null, contextWindow: null, error: null };
    }
    const deleted = await this.env.modelFiles.delete(entry.baseUrl);
    this.emitState(null);
    return deleted;
  }

  /** Loads `modelId` with `contextWindow` unless it is already loaded; one load at a time. */
  private async ensureModel(modelId: string, contextWindow: number, job: JobView | null, signal?: AbortSignal) {
    const key = `${modelId}|${contextWindow}`;
    const s = this.engineStatus;
    if (s.state === 'ready' && s.modelId === modelId && s.contextWindow === contextWindow) return;
    if (this.loading) {
      if (this.loading.key !== key) throw new ProtocolError('busy', 'Another model is loading; wait or stop it.');
      return this.loading.promise;
    }
    const entry = findModel(modelId, this.settings.customModels);
    const promise = (async () => {
      const gpu = await this.openGpu();
      this.engine ??= this.env.createEngine(gpu, { snapshotBudgetMB: this.settings.snapshotBudgetMB });
      if (s.state === 'ready') await this.engine.unload();
      this.engineStatus = { state: 'loading', modelId, contextWindow, error: null };
      this.emitState(job);
      let lastEmit = 0;
      try {
        this.loadedContextWindow = null;
        const info = await this.engine.load(
          { kind: 'url', baseUrl: entry.baseUrl, modelId },
          {
            contextWindow,
            signal,
            onProgress: (p) => {
              const now = Date.now();
              if (now - lastEmit < PROGRESS_INTERVAL_MS && p.loadedBytes < p.totalBytes) return;
              lastEmit = now;
              const fraction = p.totalBytes > 0 ? p.loadedBytes / p.totalBytes : 0;
              const progress: Progress = {
                stage: 'loading-model',
                download: { fraction, loadedBytes: p.loadedBytes, totalBytes: p.totalBytes },
              };
              if (job) job.progress = progress;
              this.emit({ type: 'progress', jobId: job?.jobId ?? null, tabId: job?.tabId ?? null, progress });
            },
          },
        );
        this.loadedContextWindow = Math.min(contextWindow, info.contextWindow);
        this.engineStatus = { state: 'ready', modelId, contextWindow, error: null };
      } catch (e) {
        const error = signal?.aborted
          ? { code: 'model-load-failed' as const, message: 'Loading was stopped.' }
          : toErrorInfo(e, 'model-load-failed');
        this.engineStatus = { state: 'error', modelId, contextWindow, error };
        throw new ProtocolError(error.code, error.message);
      } finally {
        this.loading = null;
        this.emitState(job);
      }
    })();
    this.loading = { key, promise };
    return promise;
  }

  /** `document`: text the UI already has (a PDF file the user opened) instead of the tab's page. */
  private startJob(kind: JobKind, tabId: number, question: string, document?: PageContent): string {
    if (this.running)
      throw new ProtocolError(
        'busy',
        `An answer is still being written (tab ${this.running.job.tabId}); stop it first.`,
      );
    if (this.gpu.state === 'unavailable') throw new ProtocolError('no-webgpu', this.gpu.reason);
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
      modelId: this.settings.modelId || DEFAULT_MODEL_ID,
      coverage: null,
      progress: null,
      stats: null,
      error: null,
      startedAt: Date.now(),
      finishedAt: null,
    };
    const controller = new AbortController();
    this.running = { job, controller };
    this.jobs.put(job);
    this.env.keepAlive(true);
    this.emitState(job);
    void this.runJob(job, controller.signal, document);
    return job.jobId;
  }

  private setStage(job: JobView, stage: JobStage): void {
    job.stage = stage;
    job.progress = { stage };
    this.emit({ type: 'progress', jobId: job.jobId, tabId: job.tabId, progress: job.progress });
  }

  private async runJob(job: JobView, signal: AbortSignal, document?: PageContent): Promise<void> {
    const settings = this.settings;
    try {
      const page = document ?? (await this.env.readPage(job.tabId));
      job.pageTitle = page.title;
      job.pageUrl = page.url;
      if (!page.text.trim()) throw new ProtocolError('page-empty', 'This page has no readable text.');
      signal.throwIfAborted();
      this.setStage(job, 'loading-model');
      await this.ensureModel(job.modelId, settings.contextWindow, job, signal);
      const engine = this.engine!;
      signal.throwIfAborted();
      let prompt: JobPrompt;
      try {
        const contextWindow = this.loadedContextWindow ?? settings.contextWindow;
        prompt = planJobPrompt(job.kind, page, job.question, contextWindow, settings.maxAnswerTokens, (t) =>
          engine.countTokens(t),
        );
      } catch (e) {
        throw new ProtocolError('generation-failed', (e as Error).message);
      }
      job.coverage = prompt.coverage;
      this.emit({ type: 'coverage', jobId: job.jobId, tabId: job.tabId, coverage: prompt.coverage });
      const attention: AttentionPolicy = settings.fastMode
        ? { kind: 'recycled', k: settings.fastK, stride: settings.fastStride }
        : { kind: 'full' };
      let stats: GenerationStats | null = null;
      let parts = 0;
      if (prompt.strategy === 'map-reduce') {
        const { plan } = prompt;
        await runMapReduce(
          plan,
          prompt.chunks,
          async (input, step) => {
            const final = step.id === plan.finalStepId;
            const run = await runGeneration(job, engine, mapReduceStepPrompt(prompt, step, input), this.emitter, {
              maxTokens: final ? settings.maxAnswerTokens : plan.summaryTokens,
              attention,
              signal,
              stream: final,
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
        stats = (
          await runGeneration(job, engine, prompt, this.emitter, {
            maxTokens: settings.maxAnswerTokens,
            attention,
            signal,
            stream: true,
          })
        ).stats;
      }
      const done = stats as GenerationStats | null;
      if (done) {
        const key = `${job.modelId}|${settings.contextWindow}`;
        if (!settings.fastMode && done.msPerStep > 0 && done.generatedTokens > 1)
          this.fullMsPerStep.set(key, done.msPerStep);
        job.stats = doneStatsFrom(done, settings.fastMode, parts, this.fullMsPerStep.get(key));
      }
      job.status = signal.aborted || job.stats?.stopReason === 'aborted' ? 'stopped' : 'done';
    } catch (e) {
      if (signal.aborted) job.status = 'stopped';
      else {
        job.status = 'error';
        job.error = toErrorInfo(e, 'generation-failed');
      }
    } finally {
      await this.finishJob(job);
    }
  }

  private async finishJob(job: JobView): Promise<void> {
    job.stage = 'finished';
    job.finishedAt = Date.now();
    job.progress = null;
    this.running = null;
    this.env.keepAlive(false);
    const speedup = job.stats?.fastModeSpeedup ?? null;
    if (speedup !== null) this.lastSpeedup = speedup;
    this.emit({ type: 'done', jobId: job.jobId, tabId: job.tabId, status: job.status, stats: job.stats });
    if (job.error) this.emit({ type: 'error', requestId: null, jobId: job.jobId, error: job.error });
    this.emitState(job);
    try {
      await this.env.sessionStore.set(JOBS_KEY, this.jobs.finished());
      if (speedup !== null) await this.env.localStore.set(SPEEDUP_KEY, speedup);
    } catch (e) {
      this.env.log?.('Could not persist the finished job', e);
    }
  }
}
