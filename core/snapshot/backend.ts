// The storage a SnapshotStore runs on: a dumb key/value layer (IndexedDB, a directory, ...). All checking, budget
// and eviction logic lives in store.ts, once, for every backend.

import type { SnapshotMeta } from './format';

/** A stored metadata record as read back: `record` is untrusted (undefined when it could not even be parsed). */
export interface StoredMetaRecord {
  key: string;
  record: unknown;
}

export interface SnapshotBackend {
  /** For messages: 'indexeddb', 'dir:/path', ... */
  readonly description: string;
  /** Stores one chunk. Must not leave a readable partial chunk behind if it fails. */
  putChunk(writeId: string, index: number, bytes: Uint8Array): Promise<void>;
  /** The chunk's bytes, or null if there is no such chunk. */
  getChunk(writeId: string, index: number): Promise<Uint8Array | null>;
  /** Deletes every chunk of a save (no error if there are none). */
  deleteChunks(writeId: string): Promise<void>;
  /** writeIds that have chunk data stored (including leftovers of interrupted saves). */
  listChunkWriteIds(): Promise<string[]>;
  /** Atomically stores (or replaces) a metadata record: readers see the old record or the new one, never a mix. */
  putMeta(meta: SnapshotMeta): Promise<void>;
  /** The stored record for a key (undefined record = present but unreadable), or null if there is none. */
  getMeta(key: string): Promise<StoredMetaRecord | null>;
  listMeta(): Promise<StoredMetaRecord[]>;
  /** Deletes a metadata record; with `onlyIfWriteId`, only when the stored record is from that save. */
  deleteMeta(key: string, onlyIfWriteId?: string): Promise<void>;
  /** Deletes everything, including leftovers. */
  clear(): Promise<void>;
  close(): Promise<void>;
}

/**
 * True for "out of space" errors: a DOMException (or IndexedDB transaction error) named QuotaExceededError, or a
 * Node error with code ENOSPC / EDQUOT. Those are answered by evicting and retrying; any other error is not.
 */
export function isQuotaError(e: unknown): boolean {
  if (typeof e !== 'object' || e === null) return false;
  const err = e as { name?: unknown; code?: unknown; cause?: unknown };
  if (err.name === 'QuotaExceededError') return true;
  if (err.code === 'ENOSPC' || err.code === 'EDQUOT') return true;
  return err.cause !== undefined && err.cause !== e && isQuotaError(err.cause);
}
