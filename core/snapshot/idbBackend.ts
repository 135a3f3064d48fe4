// IndexedDB backend (extension): object store `meta` (record per snapshot key) and `chunks` (binary chunks keyed by
// [writeId, index]). Each call is one transaction, so a record is stored whole or not at all.

import { type DBSchema, type IDBPDatabase, openDB } from 'idb';
import type { SnapshotBackend, StoredMetaRecord } from './backend';
import type { SnapshotMeta } from './format';
import { SnapshotStore, type SnapshotStoreOptions } from './store';

export const DEFAULT_SNAPSHOT_DB_NAME = 'recycled-reader-snapshots';
const DB_VERSION = 1;

interface SnapshotDb extends DBSchema {
  meta: { key: string; value: unknown };
  chunks: { key: [string, number]; value: unknown };
}

export class IdbSnapshotBackend implements SnapshotBackend {
  readonly description: string;
  private readonly db: IDBPDatabase<SnapshotDb>;

  private constructor(db: IDBPDatabase<SnapshotDb>, name: string) {
    this.db = db;
    this.description = `indexeddb:${name}`;
  }

  /** Opens (creating if needed) the database; uses the global `indexedDB`. */
  static async open(name = DEFAULT_SNAPSHOT_DB_NAME): Promise<IdbSnapshotBackend> {
    if (typeof indexedDB === 'undefined') throw new Error('snapshot store: IndexedDB is not available in this context');
    const db = await openDB<SnapshotDb>(name, DB_VERSION, {
      upgrade(database) {
        if (!database.objectStoreNames.contains('meta')) database.createObjectStore('meta');
        if (!database.objectStoreNames.contains('chunks')) database.createObjectStore('chunks');
      },
      // Another context wants a newer schema: let it, this connection is reopened by whoever needs it.
      blocking() {
        db.close();
      },
    });
    return new IdbSnapshotBackend(db, name);
  }

  async putChunk(writeId: string, index: number, bytes: Uint8Array): Promise<void> {
    // Structured clone copies a view's whole underlying buffer: store exactly the chunk's bytes.
    const exact = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
    const tx = this.db.transaction('chunks', 'readwrite');
    await Promise.all([tx.store.put(exact, [writeId, index]), tx.done]);
  }

  async getChunk(writeId: string, index: number): Promise<Uint8Array | null> {
    const value = await this.db.get('chunks', [writeId, index]);
    if (value === undefined) return null;
    // Anything but bytes is damage: an empty array makes the store report a size mismatch and discard it.
    if (!ArrayBuffer.isView(value)) return new Uint8Array(0);
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }

  async deleteChunks(writeId: string): Promise<void> {
    const tx = this.db.transaction('chunks', 'readwrite');
    await Promise.all([tx.store.delete(IDBKeyRange.bound([writeId, 0], [writeId, Number.POSITIVE_INFINITY])), tx.done]);
  }

  async listChunkWriteIds(): Promise<string[]> {
    const keys = await this.db.getAllKeys('chunks');
    return [...new Set(keys.map((k) => k[0]))];
  }

  async putMeta(meta: SnapshotMeta): Promise<void> {
    const tx = this.db.transaction('meta', 'readwrite');
    await Promise.all([tx.store.put(meta, meta.key), tx.done]);
  }

  async getMeta(key: string): Promise<StoredMetaRecord | null> {
    const record = await this.db.get('meta', key);
    return record === undefined ? null : { key, record };
  }

  async listMeta(): Promise<StoredMetaRecord[]> {
    // Keys and values from one transaction come in the same (key) order.
    const tx = this.db.transaction('meta', 'readonly');
    const [keys, records] = await Promise.all([tx.store.getAllKeys(), tx.store.getAll(), tx.done]);
    return keys.map((key, i) => ({ key, record: records[i] }));
  }

  async deleteMeta(key: string, onlyIfWriteId?: string): Promise<void> {
    const tx = this.db.transaction('meta', 'readwrite');
    const current = (await tx.store.get(key)) as { writeId?: unknown } | undefined;
    if (current !== undefined && (onlyIfWriteId === undefined || current?.writeId === onlyIfWriteId)) {
      await tx.store.delete(key);
    }
    await tx.done;
  }

  async clear(): Promise<void> {
    const tx = this.db.transaction(['meta', 'chunks'], 'readwrite');
    await Promise.all([tx.objectStore('meta').clear(), tx.objectStore('chunks').clear(), tx.done]);
  }

  async close(): Promise<void> {
    this.db.close();
  }
}

/** A SnapshotStore on IndexedDB (the extension's background). */
export async function openIdbSnapshotStore(
  name = DEFAULT_SNAPSHOT_DB_NAME,
  opts: SnapshotStoreOptions = {},
): Promise<SnapshotStore> {
  return SnapshotStore.open(await IdbSnapshotBackend.open(name), opts);
}
