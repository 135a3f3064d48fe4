// Shared verification: a stored record is untrusted until parseMeta() accepts it, compareMeta() matches it with
// what the caller expects, and every chunk passes its size and SHA-256 check before any byte is handed out.

import type { SnapshotBackend } from './backend';
import { errorText, isWriteId, miss, type SnapshotMeta, type SnapshotMiss } from './format';
import {
  checkIdentity,
  isHexSha256,
  type SnapshotIdentity,
  sameIdentity,
  sha256Hex,
  slabBytes,
  snapshotBytes,
} from './key';

/** Receives one restored layer: K and V slabs, [kvHeads][prefixLen][headDim] raw bytes, owned by the callee. */
export type LayerSink = (layer: number, k: Uint8Array, v: Uint8Array) => void | Promise<void>;

function isNonNegInt(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0;
}

/**
 * Checks that a stored record is a well-formed, internally consistent SnapshotMeta (types, sizes, chunk table).
 * Returns the record, or a string saying what is wrong. Does not check the key hash (that is async: see store).
 */
export function parseMeta(raw: unknown): SnapshotMeta | string {
  if (typeof raw !== 'object' || raw === null) return 'record is not an object';
  const m = raw as Record<string, unknown>;
  if (!isHexSha256(m.key)) return 'key is not a hex SHA-256';
  if (!isWriteId(m.writeId)) return 'writeId is malformed';
  try {
    checkIdentity(m as unknown as SnapshotIdentity);
  } catch (e) {
    return (e as Error).message;
  }
  const meta = m as unknown as SnapshotMeta;
  if (!isNonNegInt(meta.prefixLen) || meta.prefixLen === 0) return 'prefixLen must be a positive integer';
  if (!Array.isArray(meta.tokenIds) || meta.tokenIds.length !== meta.prefixLen) {
    return 'tokenIds must be an array of prefixLen ids';
  }
  if (!meta.tokenIds.every((t) => isNonNegInt(t) && t <= 0xffffffff)) return 'tokenIds must be uint32 values';
  if (meta.slabBytes !== slabBytes(meta, meta.prefixLen)) return 'slabBytes does not match the shape';
  if (meta.totalBytes !== snapshotBytes(meta, meta.prefixLen)) return 'totalBytes does not match the shape';
  if (!isNonNegInt(meta.chunkBytes) || meta.chunkBytes === 0) return 'chunkBytes must be a positive integer';
  const expectedChunks = Math.ceil(meta.totalBytes / meta.chunkBytes);
  if (meta.chunkCount !== expectedChunks) return `chunkCount ${meta.chunkCount} != ${expectedChunks}`;
  if (!Array.isArray(meta.chunkSizes) || meta.chunkSizes.length !== meta.chunkCount) return 'chunkSizes length';
  if (!Array.isArray(meta.chunkHashes) || meta.chunkHashes.length !== meta.chunkCount) return 'chunkHashes length';
  for (let i = 0; i < meta.chunkCount; i++) {
    const expected = i < meta.chunkCount - 1 ? meta.chunkBytes : meta.totalBytes - meta.chunkBytes * i;
    if (meta.chunkSizes[i] !== expected) return `chunk ${i} size ${meta.chunkSizes[i]} != ${expected}`;
    if (!isHexSha256(meta.chunkHashes[i])) return `chunk ${i} hash is not a hex SHA-256`;
  }
  if (typeof meta.createdAt !== 'number' || typeof meta.lastUsedAt !== 'number') return 'timestamps must be numbers';
  if (meta.label !== undefined && typeof meta.label !== 'string') return 'label must be a string';
  return meta;
}

/** Compares a (well-formed) record with what the caller expects; null when it matches. */
export function compareMeta(
  meta: SnapshotMeta,
  expected: SnapshotIdentity,
  expectedTokens: Uint32Array,
): SnapshotMiss | null {
  if (meta.modelId !== expected.modelId) {
    return miss('model-mismatch', `stored for model ${meta.modelId}, expected ${expected.modelId}`);
  }
  if (meta.manifestHash !== expected.manifestHash) {
    return miss('manifest-mismatch', `stored for weights ${meta.manifestHash}, expected ${expected.manifestHash}`);
  }
  if (meta.kvDtype !== expected.kvDtype) {
    return miss('dtype-mismatch', `stored KV dtype ${meta.kvDtype}, expected ${expected.kvDtype}`);
  }
  if (meta.layoutVersion !== expected.layoutVersion) {
    return miss('layout-mismatch', `stored layout v${meta.layoutVersion}, expected v${expected.layoutVersion}`);
  }
  const shape = (x: SnapshotIdentity) => `${x.numLayers}x${x.kvHeads}x${x.headDim}`;
  if (!sameIdentity(meta, expected)) {
    return miss('shape-mismatch', `stored layers×kvHeads×headDim ${shape(meta)}, expected ${shape(expected)}`);
  }
  if (meta.prefixLen !== expectedTokens.length) {
    return miss('tokens-mismatch', `stored ${meta.prefixLen} tokens, expected ${expectedTokens.length}`);
  }
  for (let i = 0; i < expectedTokens.length; i++) {
    if (meta.tokenIds[i] !== expectedTokens[i]) {
      return miss('tokens-mismatch', `token ${i} is ${meta.tokenIds[i]}, expected ${expectedTokens[i]}`);
    }
  }
  return null;
}

/** Verifies every chunk and hands out the layers; returns a miss if a chunk is missing or damaged. */
export async function streamVerifiedLayers(
  backend: SnapshotBackend,
  meta: SnapshotMeta,
  onLayer: LayerSink,
): Promise<SnapshotMiss | null> {
  const slabCount = 2 * meta.numLayers;
  let slabsDone = 0;
  let slab = new Uint8Array(meta.slabBytes);
  let slabFill = 0;
  let kSlab: Uint8Array | null = null;
  for (let i = 0; i < meta.chunkCount; i++) {
    let bytes: Uint8Array | null;
    try {
      bytes = await backend.getChunk(meta.writeId, i);
    } catch (e) {
      return miss('storage-error', `reading chunk ${i} failed: ${errorText(e)}`);
    }
    if (!bytes) return miss('missing-chunk', `chunk ${i} of ${meta.chunkCount} is missing`);
    if (bytes.byteLength !== meta.chunkSizes[i]) {
      return miss('chunk-size', `chunk ${i} has ${bytes.byteLength} bytes, expected ${meta.chunkSizes[i]}`);
    }
    const hash = await sha256Hex(bytes);
    if (hash !== meta.chunkHashes[i]) return miss('chunk-hash', `chunk ${i} SHA-256 ${hash} != stored hash`);
    let offset = 0;
    while (offset < bytes.byteLength) {
      if (slabsDone === slabCount) return miss('corrupt-meta', 'chunks hold more bytes than the layers');
      const n = Math.min(meta.slabBytes - slabFill, bytes.byteLength - offset);
      slab.set(bytes.subarray(offset, offset + n), slabFill);
      slabFill += n;
      offset += n;
      if (slabFill < meta.slabBytes) continue;
      // Slabs alternate K, V per layer: L0.K, L0.V, L1.K, ...
      if (kSlab === null) {
        kSlab = slab;
      } else {
        await onLayer(slabsDone >> 1, kSlab, slab);
        kSlab = null;
      }
      slabsDone++;
      slab = new Uint8Array(slabsDone < slabCount ? meta.slabBytes : 0);
      slabFill = 0;
    }
  }
  return null;
}
