// Snapshot identity and key: what a saved KV cache belongs to, and the SHA-256 name it is stored under.
// A snapshot is only valid for the exact model weights, KV dtype, runtime layout and token prefix it was made from,
// so all of these go into the key; a change in any of them makes a different key (and a miss).

/**
 * Version of the KV layout this runtime writes into snapshots: one K and one V slab per layer, each
 * [kvHeads][prefixLen][headDim] (the first prefixLen positions of every head of the [kvHeads][capacity][headDim]
 * cache), raw little-endian bytes of the cache dtype, slabs in the order L0.K, L0.V, L1.K, ... Also covers the
 * metadata record's fields. Bump it whenever any of that, or the meaning of a cached K (e.g. rope applied or not),
 * changes: old snapshots then miss and get deleted.
 */
export const SNAPSHOT_LAYOUT_VERSION = 1;

export type KvDtype = 'f16' | 'f32';

export const KV_DTYPE_BYTES: Record<KvDtype, number> = { f16: 2, f32: 4 };

/** Everything besides the token ids that a snapshot must match to be usable. */
export interface SnapshotIdentity {
  modelId: string;
  /** Hex SHA-256 of the weight manifest (tensor-cache.json bytes): `await sha256Hex(manifestBytes)`. */
  manifestHash: string;
  kvDtype: KvDtype;
  /** Pass SNAPSHOT_LAYOUT_VERSION. */
  layoutVersion: number;
  numLayers: number;
  kvHeads: number;
  headDim: number;
  /**
   * The code that computed the K/V (core/snapshot/engineVersion.ts: a hash of the kernels, GPU model, KV cache and
   * layout sources). Snapshots of other code miss.
   */
  engineVersion?: string;
}

const HEX_SHA256 = /^[0-9a-f]{64}$/;

export function isHexSha256(s: unknown): s is string {
  return typeof s === 'string' && HEX_SHA256.test(s);
}

function isPositiveInt(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n > 0;
}

/** Throws a specific error for a malformed identity (bad input from the engine is a bug, not a miss). */
export function checkIdentity(id: SnapshotIdentity): void {
  if (typeof id.modelId !== 'string' || id.modelId.length === 0) throw new Error('snapshot: modelId must be non-empty');
  if (typeof id.manifestHash !== 'string' || id.manifestHash.length === 0) {
    throw new Error('snapshot: manifestHash must be a non-empty string (hex SHA-256 of the manifest)');
  }
  if (id.kvDtype !== 'f16' && id.kvDtype !== 'f32') {
    throw new Error(`snapshot: kvDtype must be 'f16' or 'f32', got ${String(id.kvDtype)}`);
  }
  for (const field of ['layoutVersion', 'numLayers', 'kvHeads', 'headDim'] as const) {
    if (!isPositiveInt(id[field])) throw new Error(`snapshot: ${field} must be a positive integer, got ${id[field]}`);
  }
}

/** Copies token ids into a Uint32Array, checking each is an integer in [0, 2^32). */
export function toTokenArray(tokenIds: ArrayLike<number>): Uint32Array {
  const out = new Uint32Array(tokenIds.length);
  for (let i = 0; i < tokenIds.length; i++) {
    const t = tokenIds[i];
    if (!Number.isInteger(t) || t < 0 || t > 0xffffffff) {
      throw new Error(`snapshot: token id at index ${i} is not a uint32: ${t}`);
    }
    out[i] = t;
  }
  return out;
}

/** Bytes of one layer's K (or V) slab: kvHeads × prefixLen × headDim elements of the KV dtype. */
export function slabBytes(id: SnapshotIdentity, prefixLen: number): number {
  return id.kvHeads * prefixLen * id.headDim * KV_DTYPE_BYTES[id.kvDtype];
}

/** All KV bytes of a snapshot: K and V slabs of every layer. */
export function snapshotBytes(id: SnapshotIdentity, prefixLen: number): number {
  return 2 * id.numLayers * slabBytes(id, prefixLen);
}

export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += bytes[i].toString(16).padStart(2, '0');
  return s;
}

function subtle(): SubtleCrypto {
  const s = globalThis.crypto?.subtle;
  if (!s) throw new Error('snapshot: WebCrypto (crypto.subtle) is not available in this context');
  return s;
}

/** Hex SHA-256 of bytes or of a string's UTF-8 encoding. */
export async function sha256Hex(data: Uint8Array | string): Promise<string> {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  const digest = await subtle().digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return toHex(new Uint8Array(digest));
}

/** The identity fields in a fixed order, so the encoding does not depend on object key order. */
function identityHeader(id: SnapshotIdentity): string {
  return JSON.stringify([
    'recycled-reader-kv-snapshot',
    id.modelId,
    id.manifestHash,
    id.kvDtype,
    id.layoutVersion,
    id.numLayers,
    id.kvHeads,
    id.headDim,
    id.engineVersion ?? '',
  ]);
}

/**
 * Key = hex SHA-256 of: identity header (JSON), a 0 byte (JSON text never contains a raw 0 byte, so the split is
 * unambiguous), then the prefix token ids as uint32 little-endian.
 */
export async function snapshotKey(id: SnapshotIdentity, tokenIds: ArrayLike<number>): Promise<string> {
  checkIdentity(id);
  const tokens = toTokenArray(tokenIds);
  if (tokens.length === 0) throw new Error('snapshot: the token prefix must not be empty');
  const header = new TextEncoder().encode(identityHeader(id));
  const bytes = new Uint8Array(header.length + 1 + tokens.length * 4);
  bytes.set(header, 0);
  const view = new DataView(bytes.buffer, header.length + 1);
  for (let i = 0; i < tokens.length; i++) view.setUint32(i * 4, tokens[i], true);
  return sha256Hex(bytes);
}

/** Just the identity fields (the caller may pass a larger object; only these belong in a record). */
export function pickIdentity(id: SnapshotIdentity): SnapshotIdentity {
  const { modelId, manifestHash, kvDtype, layoutVersion, numLayers, kvHeads, headDim, engineVersion } = id;
  const out: SnapshotIdentity = { modelId, manifestHash, kvDtype, layoutVersion, numLayers, kvHeads, headDim };
  if (engineVersion !== undefined) out.engineVersion = engineVersion;
  return out;
}

/** True if both identities name the same model, weights, dtype, layout and shape. */
export function sameIdentity(a: SnapshotIdentity, b: SnapshotIdentity): boolean {
  return identityHeader(a) === identityHeader(b);
}
