// Shared fixtures for the snapshot store tests: one harness per backend (IndexedDB via fake-indexeddb, a temp
// directory), deterministic slab data, and a backend wrapper that simulates a full disk.
import 'fake-indexeddb/auto';
import { mkdtemp, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deleteDB, openDB } from 'idb';
import { DirSnapshotBackend } from '../../core/node/dirSnapshotStore';
import type { SnapshotBackend, StoredMetaRecord } from '../../core/snapshot/backend';
import type { SnapshotMeta } from '../../core/snapshot/format';
import { IdbSnapshotBackend } from '../../core/snapshot/idbBackend';
import { SNAPSHOT_LAYOUT_VERSION, type SnapshotIdentity } from '../../core/snapshot/key';
import type { SnapshotStore } from '../../core/snapshot/store';

export interface Harness {
  name: string;
  /** Opens the same underlying storage (a new handle each call, like a new session after a restart). */
  openBackend(): Promise<SnapshotBackend>;
  /** Deletes one chunk behind the store's back. */
  removeChunk(writeId: string, index: number): Promise<void>;
  /** The error this backend's storage throws when full. */
  quotaError(): Error;
  dispose(): Promise<void>;
}

let idbCounter = 0;

export function idbHarness(): Harness {
  const name = `snapshot-test-${process.pid}-${idbCounter++}`;
  const opened: SnapshotBackend[] = [];
  return {
    name: 'indexeddb',
    async openBackend() {
      const b = await IdbSnapshotBackend.open(name);
      opened.push(b);
      return b;
    },
    async removeChunk(writeId, index) {
      const db = await openDB(name);
      await db.delete('chunks', [writeId, index]);
      db.close();
    },
    quotaError: () => new DOMException('The quota has been exceeded.', 'QuotaExceededError'),
    async dispose() {
      for (const b of opened) await b.close();
      await deleteDB(name);
    },
  };
}

export async function dirHarness(): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'snapshot-test-'));
  return {
    name: 'dir',
    openBackend: () => DirSnapshotBackend.open(dir),
    removeChunk: (writeId, index) => unlink(join(dir, 'chunks', writeId, `${index}.bin`)),
    quotaError: () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }),
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
}

export const HARNESSES: Array<[string, () => Promise<Harness>]> = [
  ['indexeddb', async () => idbHarness()],
  ['dir', dirHarness],
];

export function identity(over: Partial<SnapshotIdentity> = {}): SnapshotIdentity {
  return {
    modelId: 'Tiny-Llama-test-q4f16_1',
    manifestHash: 'a'.repeat(64),
    kvDtype: 'f16',
    layoutVersion: SNAPSHOT_LAYOUT_VERSION,
    numLayers: 3,
    kvHeads: 2,
    headDim: 8,
    ...over,
  };
}

export function tokens(n: number, seed = 1): number[] {
  const out: number[] = [];
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out.push(x % 32000);
  }
  return out;
}

/** Deterministic pseudo-random bytes (xorshift32), different per seed. */
export function randomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

export interface LayerSlabs {
  k: Uint8Array;
  v: Uint8Array;
}

/** One K and V slab per layer, each `slabBytes` long, all different. */
export function makeLayers(numLayers: number, slabBytes: number, seed: number): LayerSlabs[] {
  const layers: LayerSlabs[] = [];
  for (let l = 0; l < numLayers; l++) {
    layers.push({
      k: randomBytes(slabBytes, seed * 1000 + 2 * l + 1),
      v: randomBytes(slabBytes, seed * 1000 + 2 * l + 2),
    });
  }
  return layers;
}

/** Saves a whole snapshot; throws if the store reports a failure. */
export async function save(
  store: SnapshotStore,
  id: SnapshotIdentity,
  toks: number[],
  layers: LayerSlabs[],
  label?: string,
): Promise<string> {
  const begun = await store.beginSave(id, toks, { label });
  if (!begun.ok) throw new Error(`beginSave failed: ${begun.reason} ${begun.detail}`);
  for (let l = 0; l < layers.length; l++) {
    const step = await begun.writer.writeLayer(l, layers[l].k, layers[l].v);
    if (!step.ok) throw new Error(`writeLayer failed: ${step.reason} ${step.detail}`);
  }
  const done = await begun.writer.commit();
  if (!done.ok) throw new Error(`commit failed: ${done.reason} ${done.detail}`);
  return done.summary.key;
}

/** Loads into an array of layers (in the order received). */
export async function loadAll(store: SnapshotStore, key: string, id: SnapshotIdentity, toks: number[]) {
  const received: Array<{ layer: number } & LayerSlabs> = [];
  const result = await store.load(key, { identity: id, tokenIds: toks }, (layer, k, v) => {
    received.push({ layer, k, v });
  });
  return { result, received };
}

/**
 * Simulates a storage device of `capacity` chunk bytes: a put that would go above it throws the harness's quota
 * error (IndexedDB: DOMException QuotaExceededError; dir: ENOSPC). `failNextMeta` makes the next putMeta fail once.
 */
export class FullDiskBackend implements SnapshotBackend {
  readonly description = 'full-disk wrapper';
  capacity: number;
  failNextMeta = false;
  quotaErrors = 0;
  private readonly inner: SnapshotBackend;
  private readonly makeError: () => Error;
  private readonly sizes = new Map<string, number>();

  constructor(inner: SnapshotBackend, capacity: number, makeError: () => Error) {
    this.inner = inner;
    this.capacity = capacity;
    this.makeError = makeError;
  }

  usedBytes(): number {
    let sum = 0;
    for (const n of this.sizes.values()) sum += n;
    return sum;
  }

  async putChunk(writeId: string, index: number, bytes: Uint8Array): Promise<void> {
    const id = `${writeId}/${index}`;
    if (this.usedBytes() - (this.sizes.get(id) ?? 0) + bytes.byteLength > this.capacity) {
      this.quotaErrors++;
      throw this.makeError();
    }
    await this.inner.putChunk(writeId, index, bytes);
    this.sizes.set(id, bytes.byteLength);
  }
  getChunk(writeId: string, index: number): Promise<Uint8Array | null> {
    return this.inner.getChunk(writeId, index);
  }
  async deleteChunks(writeId: string): Promise<void> {
    await this.inner.deleteChunks(writeId);
    for (const id of [...this.sizes.keys()]) if (id.startsWith(`${writeId}/`)) this.sizes.delete(id);
  }
  listChunkWriteIds(): Promise<string[]> {
    return this.inner.listChunkWriteIds();
  }
  async putMeta(meta: SnapshotMeta): Promise<void> {
    if (this.failNextMeta) {
      this.failNextMeta = false;
      this.quotaErrors++;
      throw this.makeError();
    }
    await this.inner.putMeta(meta);
  }
  getMeta(key: string): Promise<StoredMetaRecord | null> {
    return this.inner.getMeta(key);
  }
  listMeta(): Promise<StoredMetaRecord[]> {
    return this.inner.listMeta();
  }
  deleteMeta(key: string, onlyIfWriteId?: string): Promise<void> {
    return this.inner.deleteMeta(key, onlyIfWriteId);
  }
  async clear(): Promise<void> {
    await this.inner.clear();
    this.sizes.clear();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
