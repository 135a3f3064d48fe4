// Model ownership: the GPU device, the one Engine, which model is loaded (engine status), and the requests that
// change that — load, delete, add a custom model. A job asks `ensure` for its model; nothing here runs generations.

import type { GpuContext } from '../../kernels/gpuContext';
import { describeAdapter } from '../../kernels/gpuContext';
import type { SnapshotEvent } from '../engine/snapshots';
import type { Engine } from '../engine/types';
import { StorageFullError } from '../model/sources';
import type { EngineStatus, ErrorInfo, GpuStatus, JobView, ModelEntry, Progress } from '../protocol/messages';
import { ProtocolError, toErrorInfo } from '../protocol/messages';
import type { Settings } from '../protocol/settings';
import type { HostEnv } from './env';
import { customModelFor, findModel, listModelEntries, normalizeModelBaseUrl } from './modelList';

const PROGRESS_INTERVAL_MS = 250;
/** What a cancelled load leaves: the status line and the cancelled request say it. */
export const LOAD_CANCELLED = 'Loading the model was cancelled: no model is loaded.';

/** What Models needs from the host around it. */
export interface ModelsDeps {
  env: HostEnv;
  settings(): Settings;
  saveSettings(next: Settings): Promise<void>;
  /** The model id of the job that is running now, if any. */
  modelInUse(): string | null;
  /** The state changed (GPU, engine status): the host broadcasts it, with `job` when one is being served. */
  changed(job: JobView | null): void;
  progress(job: JobView | null, progress: Progress): void;
  /** The GPU device was lost: the running job (if any) must end with `error`. */
  deviceLost(error: ErrorInfo): void;
  /** What the engine's snapshot store did (failed saves reach the user). */
  snapshotEvent?(event: SnapshotEvent): void;
}

export class Models {
  gpu: GpuStatus = { state: 'unknown' };
  status: EngineStatus = { state: 'empty', modelId: null, contextWindow: null, error: null };
  private gpuContext: Promise<GpuContext> | null = null;
  /** The current device's `lost` promise: tells a GPU error from a lost device. */
  private deviceLost: Promise<GPUDeviceLostInfo> | null = null;
  private engine: Promise<Engine> | null = null;
  private loading: { key: string; promise: Promise<void>; controller: AbortController } | null = null;
  /** The loaded model's real context window (the setting, capped by what the model supports). */
  private loadedWindow: number | null = null;
  private loadedTemplate: string | null = null;

  constructor(private readonly deps: ModelsDeps) {}

  openGpu(): Promise<GpuContext> {
    this.gpuContext ??= this.deps.env.openGpu().then(
      (ctx) => {
        this.gpu = { state: 'ok', adapter: describeAdapter(ctx.adapterInfo), f16: ctx.f16 };
        this.deviceLost = ctx.device.lost ?? null;
        void this.deviceLost?.then((info) => this.onDeviceLost(ctx, info));
        this.deps.changed(null);
        return ctx;
      },
      (e: unknown) => {
        this.gpu = { state: 'unavailable', reason: e instanceof Error ? e.message : String(e) };
        this.deps.changed(null);
        throw new ProtocolError('no-webgpu', this.gpu.reason);
      },
    );
    return this.gpuContext;
  }

  /**
   * The device is gone with everything on it (weights, KV cache, pipelines). Forget the device and the engine built on
   * it: the next request opens a new device and loads the model again.
   */
  private async onDeviceLost(ctx: GpuContext, info: GPUDeviceLostInfo): Promise<void> {
    const current = await this.gpuContext?.catch(() => null);
    if (current !== ctx) return;
    this.gpuContext = null;
    this.engine = null;
    this.loadedWindow = null;
    const error = gpuLostError(info);
    this.status = { ...this.status, state: 'error', error };
    this.deps.deviceLost(error);
    this.deps.changed(null);
  }

  /**
   * After a job failed: the gpu-lost error if the device is lost, or turns out lost within `graceMs` (the browser
   * rejects the GPU work before it resolves `device.lost`); null for any other failure.
   */
  async lostError(graceMs = 1000): Promise<ErrorInfo | null> {
    const lost = this.deviceLost;
    if (!lost) return null;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const info = await Promise.race([
      lost,
      new Promise<null>((resolve) => {
        timer = setTimeout(() => resolve(null), graceMs);
      }),
    ]);
    clearTimeout(timer);
    return info ? gpuLostError(info) : null;
  }

  /** Debug/e2e: destroys the device as a driver reset would; false when there is none. */
  async debugDestroyDevice(): Promise<boolean> {
    const ctx = await this.gpuContext?.catch(() => null);
    if (!ctx) return false;
    ctx.device.destroy();
    return true;
  }

  /** The context window of the loaded model: the setting, capped by what the model supports. */
  get contextWindow(): number | null {
    return this.loadedWindow;
  }

  /** The engine when `modelId` is loaded with `contextWindow` and ready; null otherwise (nothing is loaded here). */
  loadedEngine(modelId: string, contextWindow: number): Promise<Engine> | null {
    const s = this.status;
    return s.state === 'ready' && s.modelId === modelId && s.contextWindow === contextWindow ? this.engine : null;
  }

  /** The loaded model's conversation template name ('raw': a base model, no chat format); null when unknown. */
  get template(): string | null {
    return this.loadedTemplate;
  }

  async list(): Promise<ModelEntry[]> {
    const cached = await this.deps.env.modelFiles.cachedBaseUrls().catch(() => new Set<string>());
    return listModelEntries(this.deps.settings().customModels, cached);
  }

  /**
   * Loads `modelId` with `contextWindow` unless it is already loaded; one load at a time. Returns the engine with the
   * model ready.
   */
  async ensure(modelId: string, contextWindow: number, job: JobView | null, signal?: AbortSignal): Promise<Engine> {
    const key = `${modelId}|${contextWindow}`;
    const s = this.status;
    if (s.state === 'ready' && s.modelId === modelId && s.contextWindow === contextWindow && this.engine)
      return this.engine;
    if (this.loading) {
      if (this.loading.key !== key) throw new ProtocolError('busy', 'Another model is loading; wait or stop it.');
      await this.loading.promise;
      return this.engine!;
    }
    const entry = findModel(modelId, this.deps.settings().customModels);
    // Stop (the job's signal) or cancelLoad (this controller) ends the download.
    const controller = new AbortController();
    const loadSignal = signal ? AbortSignal.any([signal, controller.signal]) : controller.signal;
    const promise = (async () => {
      const gpu = await this.openGpu();
      this.engine ??= this.deps.env.createEngine(gpu, {
        snapshotBudgetMB: this.deps.settings().snapshotBudgetMB,
        onSnapshotEvent: this.deps.snapshotEvent,
      });
      let engine: Engine;
      try {
        engine = await this.engine;
      } catch (e) {
        this.engine = null;
        throw e;
      }
      if (s.state === 'ready') await engine.unload();
      this.status = { state: 'loading', modelId, contextWindow, error: null };
      this.deps.changed(job);
      let lastEmit = 0;
      try {
        this.loadedWindow = null;
        this.loadedTemplate = null;
        const info = await engine.load(
          { kind: 'url', baseUrl: entry.baseUrl, modelId },
          {
            contextWindow,
            signal: loadSignal,
            onProgress: (p) => {
              const now = Date.now();
              if (now - lastEmit < PROGRESS_INTERVAL_MS && p.loadedBytes < p.totalBytes) return;
              lastEmit = now;
              const fraction = p.totalBytes > 0 ? p.loadedBytes / p.totalBytes : 0;
              this.deps.progress(job, {
                stage: 'loading-model',
                download: { fraction, loadedBytes: p.loadedBytes, totalBytes: p.totalBytes },
              });
            },
          },
        );
        this.loadedWindow = Math.min(contextWindow, info.contextWindow);
        this.loadedTemplate = info.template ?? null;
        this.status = { state: 'ready', modelId, contextWindow, error: null };
      } catch (e) {
        const cancelled = loadSignal.aborted;
        const error = cancelled
          ? { code: 'model-load-failed' as const, message: LOAD_CANCELLED }
          : toErrorInfo(e, e instanceof StorageFullError ? 'storage-failed' : 'model-load-failed');
        // Cancelled (Cancel, or Stop on the job that loads it): nothing is loaded, which is not a failure.
        this.status = cancelled
          ? { state: 'empty', modelId: null, contextWindow: null, error }
          : { state: 'error', modelId, contextWindow, error };
        throw new ProtocolError(error.code, error.message);
      } finally {
        this.loading = null;
        this.deps.changed(job);
      }
    })();
    this.loading = { key, promise, controller };
    await promise;
    return this.engine!;
  }

  /** Cancels the model download/load in progress; false when none runs. */
  cancelLoad(): boolean {
    if (!this.loading) return false;
    this.loading.controller.abort();
    return true;
  }

  async delete(modelId: string): Promise<number> {
    const entry = findModel(modelId, this.deps.settings().customModels);
    if (this.loading?.key.startsWith(`${modelId}|`) || this.deps.modelInUse() === modelId)
      throw new ProtocolError('busy', 'This model is in use; stop the running answer first.');
    if (this.engine && this.status.modelId === modelId) {
      await (await this.engine).unload();
      this.status = { state: 'empty', modelId: null, contextWindow: null, error: null };
    }
    const deleted = await this.deps.env.modelFiles.delete(entry.baseUrl);
    this.deps.changed(null);
    return deleted;
  }

  async addCustom(input: string): Promise<ModelEntry> {
    const baseUrl = normalizeModelBaseUrl(input);
    const configUrl = `${baseUrl}mlc-chat-config.json`;
    let config: unknown;
    try {
      config = JSON.parse(await this.deps.env.fetchText(configUrl));
    } catch (e) {
      throw new ProtocolError('bad-url', `No readable mlc-chat-config.json at ${configUrl}: ${(e as Error).message}`);
    }
    if (typeof config !== 'object' || config === null || !('model_type' in config || 'model_config' in config))
      throw new ProtocolError('bad-url', `${configUrl} is not an MLC model config (no model_type / model_config).`);
    const model = customModelFor(baseUrl);
    const settings = this.deps.settings();
    const others = settings.customModels.filter((m) => m.modelId !== model.modelId);
    await this.deps.saveSettings({ ...settings, customModels: [...others, model] });
    return listModelEntries([model], new Set()).at(-1)!;
  }
}

function gpuLostError(info: GPUDeviceLostInfo): ErrorInfo {
  const reason = info.message ? ` (${info.message})` : '';
  return {
    code: 'gpu-lost',
    message: `The GPU device was lost${reason}; the model has to be loaded again. Retry to continue.`,
  };
}
