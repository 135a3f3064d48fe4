// The stored record of a snapshot and the checks shared by every backend: a metadata record (identity, tokens,
// sizes, per-chunk SHA-256) plus binary chunks. Anything stored is untrusted until these checks pass.

import type { KvDtype, SnapshotIdentity } from './key';

/** Default size of a binary chunk: small enough for one IndexedDB put / file write to be a short step. */
export const DEFAULT_CHUNK_BYTES = 8 * 1024 * 1024;

export interface SnapshotMeta extends SnapshotIdentity {
  /** snapshotKey(identity, tokenIds). */
  key: string;
  /** Random id of the save that wrote the chunks; chunks are stored under (writeId, index). A re-save of the same
   * key writes under a new writeId, so it never disturbs the version being read. */
  writeId: string;
  prefixLen: number;
  tokenIds: number[];
  /** Bytes of one layer's K (or V) slab, [kvHeads][prefixLen][headDim]. */
  slabBytes: number;
  /** All KV bytes = 2 × numLayers × slabBytes = sum of chunkSizes. */
  totalBytes: number;
  /** Nominal chunk size used when writing (every chunk but the last has exactly this size). */
  chunkBytes: number;
  chunkCount: number;
  chunkSizes: number[];
  /** Hex SHA-256 of each chunk. */
  chunkHashes: string[];
  createdAt: number;
  lastUsedAt: number;
  /** Free text for a UI ("saved documents"), e.g. the page title. */
  label?: string;
}

/** What `list()` shows: the record without token ids and hashes. */
export interface SnapshotSummary {
  key: string;
  modelId: string;
  kvDtype: KvDtype;
  label?: string;
  prefixLen: number;
  totalBytes: number;
  createdAt: number;
  lastUsedAt: number;
}

export function summarize(m: SnapshotMeta): SnapshotSummary {
  const s: SnapshotSummary = {
    key: m.key,
    modelId: m.modelId,
    kvDtype: m.kvDtype,
    prefixLen: m.prefixLen,
    totalBytes: m.totalBytes,
    createdAt: m.createdAt,
    lastUsedAt: m.lastUsedAt,
  };
  if (m.label !== undefined) s.label = m.label;
  return s;
}

/** Why a load did not return a snapshot. Every reason except 'not-found' and 'storage-error' deletes the entry. */
export type SnapshotMissReason =
  | 'not-found'
  | 'corrupt-meta'
  | 'key-mismatch'
  | 'model-mismatch'
  | 'manifest-mismatch'
  | 'dtype-mismatch'
  | 'layout-mismatch'
  | 'shape-mismatch'
  | 'tokens-mismatch'
  | 'missing-chunk'
  | 'chunk-size'
  | 'chunk-hash'
  | 'storage-error';

export interface SnapshotMiss {
  ok: false;
  reason: SnapshotMissReason;
  detail: string;
}

export function miss(reason: SnapshotMissReason, detail: string): SnapshotMiss {
  return { ok: false, reason, detail };
}

const WRITE_ID = /^[0-9a-f]{32}$/;

export function isWriteId(s: unknown): s is string {
  return typeof s === 'string' && WRITE_ID.test(s);
}

export function newWriteId(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

export function errorText(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}
