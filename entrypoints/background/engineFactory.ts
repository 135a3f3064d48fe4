// The one place the background constructs its engine: our LocalEngine over HTTP weights (shared with WebLLM through
// the Cache API store), the WebGPU model, and KV snapshots in IndexedDB. The snapshot store opens asynchronously, so
// the engine is built on the first load() (createEngine itself must be synchronous).
import '../../core/tokenizer/webTokenizersStatic'; // a service worker cannot import() the tokenizer lazily
import { LocalEngine } from '../../core/engine/engine';
import { GpuModel } from '../../core/engine/gpuModel';
import { SnapshotCoordinator } from '../../core/engine/snapshots';
import type {
  Engine,
  GenerateEvent,
  GenerateInput,
  GenerateOptions,
  LoadOptions,
  ModelInfo,
  ModelSourceSpec,
} from '../../core/engine/types';
import type { GpuContext } from '../../core/gpu/context';
import type { EngineOptions } from '../../core/host/engineHost';
import { HttpSource } from '../../core/model/sources';
import { openIdbSnapshotStore } from '../../core/snapshot';

const MIB = 1024 * 1024;

/** Builds the real engine on first use; until then calls that need a model fail as LocalEngine's would. */
class BackgroundEngine implements Engine {
  private engine: Promise<LocalEngine> | null = null;
  private ready: LocalEngine | null = null;

  constructor(
    private readonly gpu: GpuContext,
    private readonly opts: EngineOptions,
    private readonly log: (message: string, error?: unknown) => void,
  ) {}

  private build(): Promise<LocalEngine> {
    this.engine ??= (async () => {
      let snapshots: SnapshotCoordinator | undefined;
      if (this.opts.snapshotBudgetMB > 0) {
        try {
          const store = await openIdbSnapshotStore(undefined, { maxBytes: this.opts.snapshotBudgetMB * MIB });
          snapshots = new SnapshotCoordinator(store);
        } catch (e) {
          // Answers still work without snapshots; only the reuse across worker restarts is lost.
          this.log('KV snapshots are off: the IndexedDB store did not open', e);
        }
      }
      const engine = new LocalEngine({
        openSource: (spec: ModelSourceSpec) => {
          if (spec.kind !== 'url') throw new Error('The extension loads models from http(s) URLs only.');
          return new HttpSource(spec.baseUrl);
        },
        createRunner: (model, contextWindow) =>
          GpuModel.create(this.gpu, model.config, model.weights, { contextWindow }),
        snapshots,
      });
      this.ready = engine;
      return engine;
    })();
    return this.engine;
  }

  async load(source: ModelSourceSpec, opts?: LoadOptions): Promise<ModelInfo> {
    return (await this.build()).load(source, opts);
  }

  async *generate(input: GenerateInput, opts?: GenerateOptions): AsyncIterable<GenerateEvent> {
    yield* (await this.build()).generate(input, opts);
  }

  countTokens(text: string): number {
    if (!this.ready) throw new Error('No model is loaded.');
    return this.ready.countTokens(text);
  }

  async unload(): Promise<void> {
    await this.ready?.unload();
  }
}

export function createEngine(gpu: GpuContext, opts: EngineOptions): Engine {
  return new BackgroundEngine(gpu, opts, (m, e) => console.warn(`[Recycled Reader] ${m}`, e ?? ''));
}
