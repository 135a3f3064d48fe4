// SnapshotStore: saved KV-cache prefixes on any SnapshotBackend, with verification on every load, LRU eviction
// under a byte budget, and eviction-and-retry when the storage itself is full. One implementation for IndexedDB
// (extension) and directories (Node CLI).

import { isQuotaError, type SnapshotBackend } from './backend';
import {
  DEFAULT_CHUNK_BYTES,
  errorText,
  isWriteId,
  miss,
  newWriteId,
  type SnapshotMeta,
  type SnapshotMiss,
  type SnapshotSummary,
  summarize,
} from './format';
import {
  checkIdentity,
  isHexSha256,
  pickIdentity,
  SNAPSHOT_LAYOUT_VERSION,
  type SnapshotIdentity,
  sameIdentity,
  slabBytes,
  snapshotBytes,
  snapshotKey,
  toTokenArray,
} from './key';
import { compareMeta, type LayerSink, parseMeta, streamVerifiedLayers } from './verify';
import { type SaveFailure, type SaveStep, SnapshotWriter, type WriterHost } from './writer';

/**
 * Default byte budget: 2 GiB. Llama-3.2-1B with an f16 KV cache takes 32 KiB per token, so a 30K-token page is
 * ~0.94 GiB: 2 GiB keeps the last two long documents (or dozens of short pages) while staying far below what a
 * browser grants one origin on a typical laptop disk (Chrome: a share of free disk, usually tens of GiB).
 */
export const DEFAULT_SNAPSHOT_BUDGET_BYTES = 2 * 1024 * 1024 * 1024;

export interface SnapshotStoreOptions {
  /** Byte budget for all snapshots' KV bytes together (LRU eviction above it). */
  maxBytes?: number;
  /** Size of the binary chunks (default 8 MiB). */
  chunkBytes?: number;
  /** Clock for createdAt / lastUsedAt (ms); tests inject one. */
  now?: () => number;
}

export type LoadResult = { ok: true; summary: SnapshotSummary } | SnapshotMiss;

export type BeginSaveResult = { ok: true; writer: SnapshotWriter } | SaveFailure;

export interface CleanupReport {
  /** Unreadable/inconsistent records and records of another layout version, deleted. */
  badRecords: number;
  /** Saves without a metadata record (interrupted saves), whose chunks were deleted. */
  orphanSaves: number;
  /** Snapshots evicted to get back under the budget. */
  evicted: number;
}

export class SnapshotStore {
  readonly backend: SnapshotBackend;
  /** The byte budget; changed at once by setMaxBytes (the user's setting). */
  maxBytes: number;
  readonly chunkBytes: number;
  private readonly now: () => number;
  private readonly writers = new Map<SnapshotWriter, number>();
  private readonly pins = new Map<string, number>();
  private lockChain: Promise<unknown> = Promise.resolve();

  private constructor(backend: SnapshotBackend, opts: SnapshotStoreOptions) {
    this.backend = backend;
    this.maxBytes = opts.maxBytes ?? DEFAULT_SNAPSHOT_BUDGET_BYTES;
    this.chunkBytes = opts.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    this.now = opts.now ?? Date.now;
    if (!(this.maxBytes > 0)) throw new Error(`snapshot store: maxBytes must be positive, got ${this.maxBytes}`);
    if (!Number.isInteger(this.chunkBytes) || this.chunkBytes <= 0) {
      throw new Error(`snapshot store: chunkBytes must be a positive integer, got ${this.chunkBytes}`);
    }
  }

  /** Opens a store on a backend and cleans up leftovers of earlier sessions (see cleanup()). */
  static async open(backend: SnapshotBackend, opts: SnapshotStoreOptions = {}): Promise<SnapshotStore> {
    const store = new SnapshotStore(backend, opts);
    await store.cleanup();
    return store;
  }

  /**
   * Starts saving the KV cache of `tokenIds` (the prefix length = tokenIds.length). Evicts least-recently-used
   * snapshots to make room under the budget, and reserves the bytes. Then call writer.writeLayer() for each layer
   * and writer.commit(). Storage problems are returned as a SaveFailure, never thrown; bad arguments throw.
   */
  async beginSave(
    identity: SnapshotIdentity,
    tokenIds: ArrayLike<number>,
    opts: { label?: string } = {},
  ): Promise<BeginSaveResult> {
    const key = await snapshotKey(identity, tokenIds);
    const tokens = toTokenArray(tokenIds);
    const totalBytes = snapshotBytes(identity, tokens.length);
    if (totalBytes > this.maxBytes) {
      return saveFailure('too-large', `snapshot needs ${totalBytes} bytes, the budget is ${this.maxBytes}`);
    }
    const writer = new SnapshotWriter(
      {
        key,
        writeId: newWriteId(),
        identity: pickIdentity(identity),
        tokenIds: tokens,
        slabBytes: slabBytes(identity, tokens.length),
        totalBytes,
        chunkBytes: this.chunkBytes,
        label: opts.label,
      },
      this.writerHost(),
    );
    const fits = await this.locked(async () => {
      if (!(await this.evictUntilFits(totalBytes))) return false;
      this.writers.set(writer, totalBytes);
      return true;
    });
    if (!fits) {
      return saveFailure('budget', 'snapshots being loaded or saved leave no room under the budget right now');
    }
    return { ok: true, writer };
  }

  /**
   * The stored snapshot with the longest prefix of `tokenIds` for this identity, or null. Cheap: reads metadata
   * records only, and hashes the query's prefix once per distinct stored prefix length (longest first).
   */
  async findLongestPrefix(identity: SnapshotIdentity, tokenIds: ArrayLike<number>): Promise<SnapshotSummary | null> {
    checkIdentity(identity);
    const tokens = toTokenArray(tokenIds);
    const candidates = (await this.listValid()).filter(
      (m) => sameIdentity(m, identity) && m.prefixLen <= tokens.length,
    );
    const lengths = [...new Set(candidates.map((m) => m.prefixLen))].sort((a, b) => b - a);
    for (const len of lengths) {
      const key = await snapshotKey(identity, tokens.subarray(0, len));
      const found = candidates.find((m) => m.key === key);
      if (found) return summarize(found);
    }
    return null;
  }

  /**
   * Restores a snapshot: checks the record against `expected` (identity and exact token ids), then streams the
   * layers to `onLayer` in order, each chunk verified (size + SHA-256) before any of its bytes are handed out.
   * On any mismatch or damage the snapshot is deleted and a miss with the reason comes back; layers already handed
   * out before a miss are verified bytes, but the caller must not use a partial restore (prefill instead).
   * An exception thrown by onLayer is rethrown and the snapshot kept.
   */
  async load(
    key: string,
    expected: { identity: SnapshotIdentity; tokenIds: ArrayLike<number> },
    onLayer: LayerSink,
  ): Promise<LoadResult> {
    if (!isHexSha256(key)) throw new Error(`snapshot store: key must be a hex SHA-256, got ${JSON.stringify(key)}`);
    checkIdentity(expected.identity);
    const expectedTokens = toTokenArray(expected.tokenIds);
    this.pins.set(key, (this.pins.get(key) ?? 0) + 1);
    try {
      let stored: Awaited<ReturnType<SnapshotBackend['getMeta']>>;
      try {
        stored = await this.backend.getMeta(key);
      } catch (e) {
        return miss('storage-error', `reading the record failed: ${errorText(e)}`);
      }
      if (!stored) return miss('not-found', `no snapshot ${key}`);
      const meta = parseMeta(stored.record);
      if (typeof meta === 'string') {
        await this.discardRecord(key, stored.record).catch(() => undefined);
        return miss('corrupt-meta', meta);
      }
      const selfKey = await snapshotKey(meta, meta.tokenIds);
      if (meta.key !== key || selfKey !== key) {
        await this.discard(meta, key).catch(() => undefined);
        return miss('key-mismatch', `record under ${key} names ${meta.key}, its contents hash to ${selfKey}`);
      }
      const mismatch = compareMeta(meta, expected.identity, expectedTokens);
      if (mismatch) {
        await this.discard(meta).catch(() => undefined);
        return mismatch;
      }
      const streamed = await streamVerifiedLayers(this.backend, meta, onLayer);
      if (streamed) {
        if (streamed.reason !== 'storage-error') await this.discard(meta).catch(() => undefined);
        return streamed;
      }
      const touched = await this.touch(meta);
      return { ok: true, summary: summarize(touched) };
    } finally {
      const n = (this.pins.get(key) ?? 1) - 1;
      if (n === 0) this.pins.delete(key);
      else this.pins.set(key, n);
    }
  }

  /** Saved snapshots, most recently used first. */
  async list(): Promise<SnapshotSummary[]> {
    const metas = await this.listValid();
    return metas.sort((a, b) => b.lastUsedAt - a.lastUsedAt).map(summarize);
  }

  /** Bytes of saved snapshots, bytes reserved by saves in progress, and the budget. */
  async usage(): Promise<{ usedBytes: number; reservedBytes: number; maxBytes: number; count: number }> {
    const metas = await this.listValid();
    return {
      usedBytes: metas.reduce((s, m) => s + m.totalBytes, 0),
      reservedBytes: this.reservedBytes(),
      maxBytes: this.maxBytes,
      count: metas.length,
    };
  }

  async delete(key: string): Promise<void> {
    const stored = await this.backend.getMeta(key);
    if (stored) await this.discardRecord(key, stored.record);
  }

  /**
   * A new byte budget, applied at once: snapshots above it are evicted (least recently used first). 0 keeps no
   * snapshots: everything is evicted and every save ends 'too-large'.
   */
  async setMaxBytes(maxBytes: number): Promise<void> {
    if (!(maxBytes >= 0)) throw new Error(`snapshot store: maxBytes must be >= 0, got ${maxBytes}`);
    this.maxBytes = maxBytes;
    await this.locked(() => this.evictUntilFits(0));
  }

  /** Deletes every snapshot ("clear saved documents"); saves in progress end with reason 'cleared'. */
  async clear(): Promise<void> {
    await Promise.all([...this.writers.keys()].map((w) => w.cancel('cleared', 'the snapshot store was cleared')));
    await this.backend.clear();
  }

  /**
   * Deletes records that are unreadable or of another layout version, chunks of saves that never wrote their
   * record (crash mid-save), and least-recently-used snapshots above the budget. Runs on open().
   */
  async cleanup(): Promise<CleanupReport> {
    return this.locked(async () => {
      const report: CleanupReport = { badRecords: 0, orphanSaves: 0, evicted: 0 };
      const live = new Set<string>();
      for (const { key, record } of await this.backend.listMeta()) {
        const meta = parseMeta(record);
        if (typeof meta === 'string' || meta.key !== key || meta.layoutVersion !== SNAPSHOT_LAYOUT_VERSION) {
          await this.discardRecord(key, record);
          report.badRecords++;
        } else {
          live.add(meta.writeId);
        }
      }
      for (const w of this.writers.keys()) live.add(w.writeId);
      for (const writeId of await this.backend.listChunkWriteIds()) {
        if (live.has(writeId)) continue;
        await this.backend.deleteChunks(writeId);
        report.orphanSaves++;
      }
      const before = (await this.listValid()).length;
      await this.evictUntilFits(0);
      report.evicted = before - (await this.listValid()).length;
      return report;
    });
  }

  async close(): Promise<void> {
    await Promise.all([...this.writers.keys()].map((w) => w.cancel('aborted', 'the snapshot store was closed')));
    await this.backend.close();
  }

  // ---- internals ----

  private writerHost(): WriterHost {
    return {
      backend: this.backend,
      now: this.now,
      writeWithEviction: (write) => this.writeWithEviction(write, () => this.locked(() => this.evictOldest())),
      publish: (meta) => this.locked(() => this.publish(meta)),
      finished: (writer) => {
        this.writers.delete(writer);
      },
    };
  }

  /** Under the lock: store the record (evicting on quota), then drop the chunks of an older version of the key. */
  private async publish(meta: SnapshotMeta): Promise<SaveStep> {
    let previous: unknown;
    try {
      previous = (await this.backend.getMeta(meta.key))?.record;
    } catch {
      previous = undefined;
    }
    const step = await this.writeWithEviction(
      () => this.backend.putMeta(meta),
      () => this.evictOldest(meta.key),
    );
    if (!step.ok) return step;
    const oldWriteId = (previous as { writeId?: unknown } | undefined)?.writeId;
    if (isWriteId(oldWriteId) && oldWriteId !== meta.writeId) {
      await this.backend.deleteChunks(oldWriteId).catch(() => undefined);
    }
    return { ok: true };
  }

  private async writeWithEviction(write: () => Promise<void>, evict: () => Promise<boolean>): Promise<SaveStep> {
    for (;;) {
      try {
        await write();
        return { ok: true };
      } catch (e) {
        if (!isQuotaError(e)) return saveFailure('storage-error', errorText(e));
        if (!(await evict())) {
          return saveFailure('quota', `storage is full and nothing is left to evict (${errorText(e)})`);
        }
      }
    }
  }

  /** Under the lock: evict LRU snapshots until `extraBytes` more fit under the budget; false if they cannot. */
  private async evictUntilFits(extraBytes: number): Promise<boolean> {
    const metas = await this.listValid();
    let used = metas.reduce((s, m) => s + m.totalBytes, 0) + this.reservedBytes();
    for (const victim of lruOrder(metas)) {
      if (used + extraBytes <= this.maxBytes) break;
      if (this.pins.has(victim.key)) continue;
      await this.discard(victim);
      used -= victim.totalBytes;
    }
    return used + extraBytes <= this.maxBytes;
  }

  /** Under the lock: evict the least-recently-used evictable snapshot (never `exceptKey`); false if none. */
  private async evictOldest(exceptKey?: string): Promise<boolean> {
    const victim = lruOrder(await this.listValid()).find((m) => !this.pins.has(m.key) && m.key !== exceptKey);
    if (!victim) return false;
    await this.discard(victim);
    return true;
  }

  private reservedBytes(): number {
    let sum = 0;
    for (const bytes of this.writers.values()) sum += bytes;
    return sum;
  }

  /** Well-formed records; malformed ones are deleted on the way (they can never be loaded). */
  private async listValid(): Promise<SnapshotMeta[]> {
    const out: SnapshotMeta[] = [];
    for (const { key, record } of await this.backend.listMeta()) {
      const meta = parseMeta(record);
      if (typeof meta === 'string' || meta.key !== key) await this.discardRecord(key, record);
      else out.push(meta);
    }
    return out;
  }

  /** Marks a snapshot as just used (for LRU); a failure to do so does not fail the load. */
  private async touch(meta: SnapshotMeta): Promise<SnapshotMeta> {
    const touched = { ...meta, lastUsedAt: this.now() };
    await this.locked(async () => {
      const current = await this.backend.getMeta(meta.key);
      if ((current?.record as { writeId?: unknown } | undefined)?.writeId === meta.writeId) {
        await this.backend.putMeta(touched);
      }
    }).catch(() => undefined);
    return touched;
  }

  /** Deletes the record (only if still this version) and its chunks. */
  private async discard(meta: SnapshotMeta, key = meta.key): Promise<void> {
    await this.backend.deleteMeta(key, meta.writeId);
    await this.backend.deleteChunks(meta.writeId);
  }

  /** Deletes a record that may be malformed, and its chunks if its writeId is readable. */
  private async discardRecord(key: string, record: unknown): Promise<void> {
    const writeId = (record as { writeId?: unknown } | undefined)?.writeId;
    await this.backend.deleteMeta(key);
    if (isWriteId(writeId)) await this.backend.deleteChunks(writeId);
  }

  /** Serializes budget decisions and record swaps (one async section at a time; not re-entrant). */
  private locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lockChain.then(fn, fn);
    this.lockChain = run.catch(() => undefined);
    return run;
  }
}

function lruOrder(metas: SnapshotMeta[]): SnapshotMeta[] {
  return [...metas].sort((a, b) => a.lastUsedAt - b.lastUsedAt || a.createdAt - b.createdAt);
}

function saveFailure(reason: SaveFailure['reason'], detail: string): SaveFailure {
  return { ok: false, reason, detail };
}
