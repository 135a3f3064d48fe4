// The engine host: answers the UI's requests, owns the settings, and fans events out to every connected UI. Model
// ownership lives in Models (models.ts), the job lifecycle in JobRunner (jobRunner.ts). It touches no browser API:
// the background passes a HostEnv (env.ts) that does.

import { describeAdapter } from '../../kernels/gpuContext';
import { DEFAULT_MODEL_ID } from '../catalog/catalog';
import { suggestQuestions } from '../document';
import type { SnapshotEvent } from '../engine/snapshots';
import { pageKeyOf } from '../history/historyStore';
import { exportFileName, threadToMarkdown } from '../history/markdown';
import type { ErrorInfo, HostEvent, HostState, JobView, Request, RequestType, ResponseMap } from '../protocol/messages';
import { PROTOCOL_VERSION, ProtocolError } from '../protocol/messages';
import { applySettingsPatch, type Settings, settingsFromStorage } from '../protocol/settings';
import type { HostEnv } from './env';
import { runGpuSelfTest } from './gpuSelfTest';
import { JobRunner } from './jobRunner';
import { findModel } from './modelList';
import { Models } from './models';
import { PageReads } from './pageReads';
import { historyStorageError, snapshotStorageError } from './storageErrors';
import { lazyHistory, ThreadBook } from './threads';

type Listener = (event: HostEvent) => void;
const SETTINGS_KEY = 'settings';

export class EngineHost {
  private settings: Settings = settingsFromStorage(undefined);
  private readonly listeners = new Set<Listener>();
  private ready: Promise<void> | null = null;
  private readonly models: Models;
  private readonly runner: JobRunner;
  private readonly threads: ThreadBook;
  /** The last storage failure the user should act on (a full disk for snapshots or the history), and which store
   * failed: a save that works in that store clears it. */
  private storageWarning: ErrorInfo | null = null;
  private storageWarningFrom: 'snapshots' | 'history' | null = null;
  /** The pre-read and suggestQuestions share one read of the page (pageReads.ts). */
  private readonly pageReads: PageReads;

  constructor(private readonly env: HostEnv) {
    const settings = () => this.settings;
    const changed = (job: JobView | null) => this.emitState(job);
    this.models = new Models({
      env,
      settings,
      saveSettings: (next) => this.saveSettings(next),
      modelInUse: () => this.runner.runningJob?.modelId ?? null,
      changed,
      deviceLost: (error) => this.runner.fail(error),
      snapshotEvent: (event) => this.snapshotEvent(event),
      progress: (job, progress) => {
        if (job) job.progress = progress;
        this.emit({ type: 'progress', jobId: job?.jobId ?? null, tabId: job?.tabId ?? null, progress });
      },
    });
    this.threads = new ThreadBook(env.openHistory ? lazyHistory(() => env.openHistory!()) : null, env.log, (e) =>
      this.setStorageWarning(e === null ? null : historyStorageError(e), 'history'),
    );
    this.pageReads = new PageReads(env);
    this.runner = new JobRunner({
      env,
      pageReads: this.pageReads,
      models: this.models,
      settings,
      emit: (e) => this.emit(e),
      changed,
      threads: this.threads,
    });
  }

  /** Loads settings and persisted jobs, and probes the GPU. Safe to call more than once. */
  init(): Promise<void> {
    this.ready ??= (async () => {
      const [settings] = await Promise.all([
        this.env.localStore.get(SETTINGS_KEY).catch(() => undefined),
        this.runner.restore(),
      ]);
      this.settings = settingsFromStorage(settings);
      void this.models.openGpu().catch(() => {}); // status lands in models.gpu
    })();
    return this.ready;
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  state(tabId?: number): HostState {
    const jobs = this.runner.jobs;
    return {
      protocolVersion: PROTOCOL_VERSION,
      settings: this.settings,
      defaultModelId: DEFAULT_MODEL_ID,
      gpu: this.models.gpu,
      engine: this.models.status,
      job: tabId === undefined ? jobs.latest() : jobs.forTab(tabId),
      runningJobId: this.runner.runningJob?.jobId ?? null,
      lastFastModeSpeedup: this.runner.lastSpeedup,
      tabId: tabId ?? null,
      thread: tabId === undefined ? null : this.threads.forTab(tabId),
      preRead: this.runner.lastPreRead,
      storageWarning: this.storageWarning,
    };
  }

  /** The tab of a job this host knows (running or recent); null if none. */
  tabOfJob(jobId: string): number | null {
    return this.runner.jobs.byId(jobId)?.tabId ?? null;
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
        return { jobId: this.runner.start('ask', r.tabId, r.question.trim(), r.document, r.replaceLast === true) };
      case 'summarize':
        return { jobId: this.runner.start('summarize', r.tabId, '', r.document) };
      case 'continueAnswer':
        return { jobId: this.runner.resume(r.tabId, r.jobId) };
      case 'stop':
        // That job only: a pre-read has its own cancelPreRead.
        return { stopped: this.runner.stop(r.jobId) };
      case 'setSettings': {
        if (r.settings.modelId) findModel(r.settings.modelId, r.settings.customModels ?? this.settings.customModels);
        const budget = this.settings.snapshotBudgetMB;
        await this.saveSettings(applySettingsPatch(this.settings, r.settings));
        if (this.settings.snapshotBudgetMB !== budget) {
          await this.env.snapshotBudgetChanged?.(this.settings.snapshotBudgetMB);
          this.setStorageWarning(null, 'snapshots'); // the user did what the warning asked
        }
        return this.settings;
      }
      case 'loadModel': {
        // Loading replaces the model under a running answer: refused until it ends.
        if (this.runner.runningJob)
          throw new ProtocolError('busy', 'An answer is being written; stop it or wait before loading a model.');
        const contextWindow = this.settings.contextWindow;
        await this.models.ensure(r.modelId, contextWindow, null, undefined);
        return { modelId: r.modelId, contextWindow };
      }
      case 'cancelLoad':
        return { cancelled: this.models.cancelLoad() };
      case 'deleteModel':
        return { deletedFiles: await this.models.delete(r.modelId) };
      case 'listModels':
        return { models: await this.models.list() };
      case 'clearSnapshots': {
        const cleared = await this.env.clearSnapshots();
        this.setStorageWarning(null, 'snapshots');
        return { cleared };
      }
      case 'addCustomModel':
        return this.models.addCustom(r.baseUrl);
      case 'debugLoseGpu':
        return { destroyed: await this.models.debugDestroyDevice() };
      case 'debugGpuSelfTest': {
        const gpu = await this.models.openGpu();
        return runGpuSelfTest(gpu.device, describeAdapter(gpu.adapterInfo), gpu.f16);
      }
      case 'newThread':
        this.tabChangesThread(r.tabId);
        this.threads.startNew(r.tabId);
        this.emitTab(r.tabId);
        return { ok: true };
      case 'openThread': {
        this.tabChangesThread(r.tabId);
        const thread = await this.threads.open(r.tabId, r.threadId);
        if (!thread) throw new ProtocolError('bad-request', 'That thread is not in the history any more.');
        this.emitTab(r.tabId);
        return thread;
      }
      case 'listHistory': {
        if (r.tabId === undefined) return { threads: await this.threads.list() };
        const url = this.threads.forTab(r.tabId)?.pageUrl ?? (await this.env.tabUrl?.(r.tabId).catch(() => null));
        return { threads: url ? await this.threads.list(pageKeyOf(url)) : [] };
      }
      case 'deleteThread':
        return { deleted: await this.threads.delete(r.threadId) };
      case 'clearHistory':
        return { cleared: await this.threads.clear() };
      case 'exportThread': {
        const thread = await this.threads.find(r.threadId);
        if (!thread) throw new ProtocolError('bad-request', 'That thread is not in the history any more.');
        return { markdown: threadToMarkdown(thread), fileName: exportFileName(thread) };
      }
      case 'showCitation':
        if (!this.env.showCitation) return { shown: false, reason: 'Showing passages is not available here.' };
        return this.env.showCitation(r.tabId, r.pageUrl, r.citation);
      case 'preRead':
        return this.runner.preRead(r.tabId, r.userAction === true);
      case 'cancelPreRead':
        return { cancelled: this.runner.cancelPreRead() };
      case 'suggestQuestions': {
        const page = await this.pageReads.read(r.tabId);
        return { questions: page.text.trim() ? suggestQuestions(page.text, page.title) : [] };
      }
    }
  }

  /** A new or reopened thread: the tab's last job belongs to the old one (a running job keeps going). */
  private tabChangesThread(tabId: number): void {
    if (this.runner.runningJob?.tabId === tabId)
      throw new ProtocolError('busy', 'An answer is still being written on this tab; stop it first.');
    this.runner.jobs.forget(tabId);
  }

  private emitTab(tabId: number): void {
    this.emit({ type: 'state', state: this.state(tabId) });
  }

  /** A snapshot save failed on a full disk (or broken storage): every UI shows it until a save works again. */
  private snapshotEvent(event: SnapshotEvent): void {
    if (event.kind === 'saved') this.setStorageWarning(null, 'snapshots');
    const warning = snapshotStorageError(event, this.settings.snapshotBudgetMB);
    if (warning) {
      this.env.log?.(`Snapshot save failed: ${event.detail ?? event.reason}`);
      this.setStorageWarning(warning, 'snapshots');
    }
  }

  /** Sets the warning of store `from`; null clears it only if that store's warning is the one shown. */
  private setStorageWarning(warning: ErrorInfo | null, from: 'snapshots' | 'history'): void {
    if (!warning && this.storageWarningFrom !== from) return;
    if (warning?.message === this.storageWarning?.message) return;
    this.storageWarning = warning;
    this.storageWarningFrom = warning ? from : null;
    this.emitState(null);
  }

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
    // About a job: its tab's thread goes along (a finished job has just become its last turn).
    this.emit({ type: 'state', state: job ? { ...this.state(job.tabId), job } : { ...this.state(), job } });
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
}
