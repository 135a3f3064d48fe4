// The one place the background constructs its engine: our LocalEngine over HTTP weights (shared with WebLLM through
// the Cache API store), the WebGPU model, and KV snapshots in IndexedDB.
import '../../core/tokenizer/webTokenizersStatic'; // a service worker cannot import() the tokenizer lazily
import { LocalEngine } from '../../core/engine/engine';
import { GpuModel } from '../../core/engine/gpuModel';
import { SnapshotCoordinator } from '../../core/engine/snapshots';
import type { Engine, ModelSourceSpec } from '../../core/engine/types';
import type { EngineOptions } from '../../core/host/env';
import { HttpSource } from '../../core/model/sources';
import { openIdbSnapshotStore, type SnapshotStore } from '../../core/snapshot';
import type { GpuContext } from '../../kernels/gpuContext';

const MIB = 1024 * 1024;

/** The snapshot store of the engine built last: budget changes and "clear" go through it, so they see its saves. */
let engineStore: SnapshotStore | null = null;

export function currentSnapshotStore(): SnapshotStore | null {
  return engineStore;
}

function log(message: string, error?: unknown): void {
  console.warn(`[Recycled Reader] ${message}`, error ?? '');
}

export async function createEngine(gpu: GpuContext, opts: EngineOptions): Promise<Engine> {
  let snapshots: SnapshotCoordinator | undefined;
  if (opts.snapshotBudgetMB > 0) {
    try {
      const store = await openIdbSnapshotStore(undefined, { maxBytes: opts.snapshotBudgetMB * MIB });
      snapshots = new SnapshotCoordinator(store);
      if (opts.onSnapshotEvent) snapshots.onEvent(opts.onSnapshotEvent);
      engineStore = store;
    } catch (e) {
      // Answers still work without snapshots; only the reuse across worker restarts is lost.
      log('KV snapshots are off: the IndexedDB store did not open', e);
    }
  }
  return new LocalEngine({
    openSource: (spec: ModelSourceSpec) => {
      if (spec.kind !== 'url') throw new Error('The extension loads models from http(s) URLs only.');
      return new HttpSource(spec.baseUrl);
    },
    createRunner: (model, contextWindow) => GpuModel.create(gpu, model.config, model.weights, { contextWindow }),
    snapshots,
  });
}
