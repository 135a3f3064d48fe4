// Streaming save of one snapshot. The engine hands layer slabs one by one (as its GPU read-backs finish); each call
// does a bounded amount of work (copy into the current chunk; hash + store each chunk that fills up) and is async,
// so the engine can interleave saving with answering. Chunks are written first, the metadata record last: until
// commit() has stored it, nothing of this save is visible, and a crash leaves only orphan chunks (cleaned up later).

import type { SnapshotBackend } from './backend';
import { type SnapshotMeta, type SnapshotSummary, summarize } from './format';
import { type SnapshotIdentity, sha256Hex } from './key';

export type SaveFailureReason =
  /** The snapshot alone is bigger than the store's byte budget. */
  | 'too-large'
  /** Other snapshots that cannot be evicted right now (being loaded or saved) leave no room under the budget. */
  | 'budget'
  /** The storage is full (QuotaExceededError / ENOSPC) even after evicting every evictable snapshot. */
  | 'quota'
  /** Any other storage failure (message in `detail`). */
  | 'storage-error'
  /** abort() was called. */
  | 'aborted'
  /** The store was cleared while saving. */
  | 'cleared';

export interface SaveFailure {
  ok: false;
  reason: SaveFailureReason;
  detail: string;
}

export type SaveStep = { ok: true } | SaveFailure;
export type SaveResult = { ok: true; summary: SnapshotSummary } | SaveFailure;

/** What a writer needs from its store (kept narrow so the writer cannot reach the store's other state). */
export interface WriterHost {
  backend: SnapshotBackend;
  now(): number;
  /** Runs a storage write; on a quota error evicts the least-recently-used snapshot and retries. */
  writeWithEviction(write: () => Promise<void>): Promise<SaveStep>;
  /** Stores the metadata record (with eviction on quota) and removes an older version of the same key. */
  publish(meta: SnapshotMeta): Promise<SaveStep>;
  /** Releases the writer's byte reservation; called once, when it finishes either way. */
  finished(writer: SnapshotWriter): void;
}

export interface WriterPlan {
  key: string;
  writeId: string;
  identity: SnapshotIdentity;
  tokenIds: Uint32Array;
  slabBytes: number;
  totalBytes: number;
  chunkBytes: number;
  label?: string;
}

export class SnapshotWriter {
  readonly key: string;
  readonly writeId: string;
  readonly prefixLen: number;
  /** Bytes each of `k` and `v` must have in writeLayer: kvHeads × prefixLen × headDim × dtype bytes. */
  readonly slabBytes: number;
  readonly totalBytes: number;
  private readonly plan: WriterPlan;
  private readonly host: WriterHost;
  private pending: Uint8Array;
  private pendingLen = 0;
  private readonly chunkSizes: number[] = [];
  private readonly chunkHashes: string[] = [];
  private layersWritten = 0;
  private busy = false;
  private done = false;
  private failed: SaveFailure | null = null;

  constructor(plan: WriterPlan, host: WriterHost) {
    this.plan = plan;
    this.host = host;
    this.key = plan.key;
    this.writeId = plan.writeId;
    this.prefixLen = plan.tokenIds.length;
    this.slabBytes = plan.slabBytes;
    this.totalBytes = plan.totalBytes;
    this.pending = new Uint8Array(Math.min(plan.chunkBytes, plan.totalBytes));
  }

  /** Set once the save has failed or was aborted; every later call returns it without doing work. */
  get failure(): SaveFailure | null {
    return this.failed;
  }

  /** Index of the layer writeLayer expects next (= numLayers when all are written). */
  get nextLayer(): number {
    return this.layersWritten;
  }

  /**
   * Appends one layer's K and V slabs ([kvHeads][prefixLen][headDim], raw bytes of the KV dtype). Layers must come
   * in order 0, 1, ...; await each call before the next. The slabs must stay unchanged until the promise resolves.
   * Storage problems come back as a SaveFailure (the save is then over); misuse throws.
   */
  async writeLayer(layer: number, k: Uint8Array, v: Uint8Array): Promise<SaveStep> {
    if (this.failed) return this.failed;
    this.enter('writeLayer');
    try {
      const numLayers = this.plan.identity.numLayers;
      if (layer !== this.layersWritten) {
        throw new Error(`snapshot writer: expected layer ${this.layersWritten} of ${numLayers}, got ${layer}`);
      }
      for (const [name, slab] of [
        ['k', k],
        ['v', v],
      ] as const) {
        if (!(slab instanceof Uint8Array))
          throw new Error(`snapshot writer: layer ${layer} ${name} is not a Uint8Array`);
        if (slab.byteLength !== this.slabBytes) {
          throw new Error(
            `snapshot writer: layer ${layer} ${name} slab has ${slab.byteLength} bytes, expected ${this.slabBytes} ` +
              `(kvHeads × prefixLen × headDim × dtype bytes)`,
          );
        }
      }
      for (const slab of [k, v]) {
        const step = await this.append(slab);
        if (!step.ok) return step;
      }
      this.layersWritten++;
      return { ok: true };
    } finally {
      this.busy = false;
    }
  }

  /** Writes the last chunk and then the metadata record; only now does the snapshot become visible. */
  async commit(): Promise<SaveResult> {
    if (this.failed) return this.failed;
    this.enter('commit');
    try {
      const numLayers = this.plan.identity.numLayers;
      if (this.layersWritten !== numLayers) {
        throw new Error(`snapshot writer: commit after ${this.layersWritten} of ${numLayers} layers`);
      }
      if (this.pendingLen > 0) {
        const step = await this.flush();
        if (!step.ok) return step;
      }
      const now = this.host.now();
      const meta: SnapshotMeta = {
        ...this.plan.identity,
        key: this.key,
        writeId: this.writeId,
        prefixLen: this.prefixLen,
        tokenIds: Array.from(this.plan.tokenIds),
        slabBytes: this.slabBytes,
        totalBytes: this.totalBytes,
        chunkBytes: this.plan.chunkBytes,
        chunkCount: this.chunkSizes.length,
        chunkSizes: this.chunkSizes.slice(),
        chunkHashes: this.chunkHashes.slice(),
        createdAt: now,
        lastUsedAt: now,
      };
      if (this.plan.label !== undefined) meta.label = this.plan.label;
      // A failure (e.g. clear()) may have arrived while the last chunk was being stored.
      if (this.failed) return this.failed;
      const step = await this.host.publish(meta);
      if (!step.ok) return this.fail(step);
      if (this.failed) {
        // Cancelled while the record was being stored: the chunks are gone, so the record must go too.
        await this.host.backend.deleteMeta(this.key, this.writeId).catch(() => undefined);
        return this.failed;
      }
      this.done = true;
      this.pending = new Uint8Array(0);
      this.host.finished(this);
      return { ok: true, summary: summarize(meta) };
    } finally {
      this.busy = false;
    }
  }

  /** Gives up this save and deletes what it wrote. Safe to call at any time, any number of times. */
  async abort(): Promise<void> {
    await this.cancel('aborted', 'save aborted by the caller');
  }

  /** Ends the save with a failure (used by abort() and by the store's clear()). */
  async cancel(reason: SaveFailureReason, detail: string): Promise<void> {
    if (this.done || this.failed) return;
    await this.fail({ ok: false, reason, detail });
  }

  private enter(what: string): void {
    if (this.busy) throw new Error(`snapshot writer: ${what} called while a previous call is still running`);
    if (this.done) throw new Error(`snapshot writer: ${what} called after commit`);
    this.busy = true;
  }

  private async append(slab: Uint8Array): Promise<SaveStep> {
    let offset = 0;
    while (offset < slab.byteLength) {
      const n = Math.min(this.pending.byteLength - this.pendingLen, slab.byteLength - offset);
      this.pending.set(slab.subarray(offset, offset + n), this.pendingLen);
      this.pendingLen += n;
      offset += n;
      if (this.pendingLen === this.pending.byteLength) {
        const step = await this.flush();
        if (!step.ok) return step;
      }
    }
    return { ok: true };
  }

  private async flush(): Promise<SaveStep> {
    const bytes = this.pending.subarray(0, this.pendingLen);
    const index = this.chunkSizes.length;
    const hash = await sha256Hex(bytes);
    if (this.failed) return this.failed;
    const step = await this.host.writeWithEviction(() => this.host.backend.putChunk(this.writeId, index, bytes));
    if (this.failed) {
      // Cancelled (clear()/abort()) while this chunk was being stored: it may have landed after the clean-up.
      await this.deleteOwnChunks();
      return this.failed;
    }
    if (!step.ok) return this.fail(step);
    this.chunkSizes.push(bytes.byteLength);
    this.chunkHashes.push(hash);
    this.pendingLen = 0;
    return { ok: true };
  }

  private async fail(failure: SaveFailure): Promise<SaveFailure> {
    if (this.failed) return this.failed;
    this.failed = failure;
    this.pending = new Uint8Array(0);
    this.pendingLen = 0;
    this.host.finished(this);
    await this.deleteOwnChunks();
    return failure;
  }

  private async deleteOwnChunks(): Promise<void> {
    try {
      await this.host.backend.deleteChunks(this.writeId);
    } catch {
      // Left for the orphan clean-up at the next open: without a metadata record these chunks are unreachable.
    }
  }
}
