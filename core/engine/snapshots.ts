// Connects the engine to a SnapshotStore: restores a saved document prefix instead of prefilling it, and saves a
// freshly prefilled prefix in the background so the answer that is streaming never waits for storage.
import type { LoadedModel } from '../model/load';
import {
  type SaveFailure,
  type SaveFailureReason,
  SNAPSHOT_LAYOUT_VERSION,
  type SnapshotIdentity,
  type SnapshotStore,
  sha256Hex,
} from '../snapshot';
import { bundledKvCodeVersion } from '../snapshot/engineVersion';
import type { ModelRunner } from './runner';

/** Prefixes shorter than this are cheaper to prefill than to store. */
export const MIN_SNAPSHOT_TOKENS = 64;

export interface SnapshotEvent {
  kind: 'restored' | 'restore-miss' | 'saved' | 'save-failed';
  tokens: number;
  /** save-failed: why (the store's SaveFailureReason, or 'error' for an exception). */
  reason?: SaveFailureReason | 'error';
  detail?: string;
}

export class SnapshotCoordinator {
  private pending = new Set<Promise<void>>();
  private manifestHashes = new WeakMap<LoadedModel, Promise<string>>();
  /** Where the coordinator reports what it did (the UI and tests read it). */
  readonly events: SnapshotEvent[] = [];
  private readonly listeners = new Set<(event: SnapshotEvent) => void>();

  /**
   * `engineVersion`: the version of the code that computes K/V (core/snapshot/engineVersion.ts); the extension's is
   * baked in at build time, Node passes nodeKvCodeVersion().
   */
  constructor(
    readonly store: SnapshotStore,
    private readonly minTokens = MIN_SNAPSHOT_TOKENS,
    private readonly engineVersion: string | null = bundledKvCodeVersion(),
  ) {}

  private async identity(runner: ModelRunner, model: LoadedModel, modelKey: string): Promise<SnapshotIdentity> {
    let hash = this.manifestHashes.get(model);
    if (!hash) {
      hash = sha256Hex(JSON.stringify(model.manifest));
      this.manifestHashes.set(model, hash);
    }
    const kv = runner.kvInfo;
    return {
      modelId: modelKey,
      manifestHash: await hash,
      kvDtype: kv.dtype,
      layoutVersion: SNAPSHOT_LAYOUT_VERSION,
      numLayers: kv.numLayers,
      kvHeads: kv.kvHeads,
      headDim: kv.headDim,
      ...(this.engineVersion ? { engineVersion: this.engineVersion } : {}),
    };
  }

  /** Calls `listener` with each event from now on (the host tells the user when a save hits a full disk). */
  onEvent(listener: (event: SnapshotEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private record(event: SnapshotEvent): void {
    this.events.push(event);
    for (const l of this.listeners) {
      try {
        l(event);
      } catch {
        // a listener's failure is its own; the store goes on
      }
    }
  }

  /** Uploads the longest saved prefix of `prefixIds` into the runner's cache; returns how many positions it holds. */
  async restore(runner: ModelRunner, model: LoadedModel, modelKey: string, prefixIds: number[]): Promise<number> {
    if (prefixIds.length < this.minTokens) return 0;
    await this.flush(); // a save of this very prefix may still be in flight
    const identity = await this.identity(runner, model, modelKey);
    const found = await this.store.findLongestPrefix(identity, prefixIds);
    if (!found || found.prefixLen < this.minTokens) return 0;
    const tokens = prefixIds.slice(0, found.prefixLen);
    const result = await this.store.load(found.key, { identity, tokenIds: tokens }, (layer, k, v) =>
      runner.writeKvLayer(layer, found.prefixLen, k, v),
    );
    if (!result.ok) {
      // Layers written before the miss hold verified but incomplete data; the caller prefills them all again.
      this.record({ kind: 'restore-miss', tokens: found.prefixLen, detail: `${result.reason}: ${result.detail}` });
      return 0;
    }
    this.record({ kind: 'restored', tokens: found.prefixLen });
    return found.prefixLen;
  }

  /** Starts saving the cache's first prefixIds.length positions; returns at once. */
  save(runner: ModelRunner, model: LoadedModel, modelKey: string, prefixIds: number[]): void {
    if (prefixIds.length < this.minTokens) return;
    const job = this.saveNow(runner, model, modelKey, prefixIds).catch((e) => {
      this.record({ kind: 'save-failed', tokens: prefixIds.length, reason: 'error', detail: String(e) });
    });
    this.pending.add(job);
    void job.finally(() => this.pending.delete(job));
  }

  private async saveNow(runner: ModelRunner, model: LoadedModel, modelKey: string, prefixIds: number[]): Promise<void> {
    const identity = await this.identity(runner, model, modelKey);
    const existing = await this.store.findLongestPrefix(identity, prefixIds);
    if (existing && existing.prefixLen === prefixIds.length) return;
    const begun = await this.store.beginSave(identity, prefixIds);
    if (!begun.ok) {
      this.record(saveFailed(prefixIds.length, begun));
      return;
    }
    const writer = begun.writer;
    // The GPU copies of all layers are queued now, before any later generation can overwrite these positions.
    const layers = Array.from({ length: runner.kvInfo.numLayers }, (_, l) => runner.readKvLayer(l, prefixIds.length));
    for (let l = 0; l < layers.length; l++) {
      const { k, v } = await layers[l];
      const step = await writer.writeLayer(l, k, v);
      if (!step.ok) {
        this.record(saveFailed(prefixIds.length, step));
        return;
      }
    }
    const done = await writer.commit();
    if (done.ok) this.record({ kind: 'saved', tokens: prefixIds.length });
    else this.record(saveFailed(prefixIds.length, done));
  }

  /** Waits for saves in flight (before unloading, or before a restore that might want them). */
  async flush(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }
}

function saveFailed(tokens: number, f: SaveFailure): SnapshotEvent {
  return { kind: 'save-failed', tokens, reason: f.reason, detail: `${f.reason}: ${f.detail}` };
}
