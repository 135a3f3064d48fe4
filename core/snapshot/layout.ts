// Where each head's first prefixLen positions sit in a layer's [kvHeads][capacity][headDim] cache buffer and in the
// packed [kvHeads][prefixLen][headDim] slab a snapshot stores: one copy per head, both ways (save and restore).

import { KV_DTYPE_BYTES, type SnapshotIdentity } from './key';

export interface HeadCopyRange {
  head: number;
  /** Byte offset of position 0 of this head in the cache buffer. */
  cacheOffset: number;
  /** Byte offset of this head in the packed slab. */
  slabOffset: number;
  byteLength: number;
}

/**
 * The per-head copies between a cache buffer of `capacity` positions and a slab of `prefixLen` positions. WebGPU
 * copies need offsets and sizes that are multiples of 4 bytes: true whenever headDim is even (f16) or always (f32);
 * the function throws otherwise so the caller never issues an invalid copy.
 */
export function slabCopyRanges(id: SnapshotIdentity, capacity: number, prefixLen: number): HeadCopyRange[] {
  if (!Number.isInteger(prefixLen) || prefixLen <= 0 || prefixLen > capacity) {
    throw new Error(`snapshot layout: prefixLen must be in 1..capacity (${capacity}), got ${prefixLen}`);
  }
  const rowBytes = id.headDim * KV_DTYPE_BYTES[id.kvDtype];
  if (rowBytes % 4 !== 0) {
    throw new Error(`snapshot layout: a ${id.kvDtype} head row of ${id.headDim} values is not a multiple of 4 bytes`);
  }
  const ranges: HeadCopyRange[] = [];
  for (let h = 0; h < id.kvHeads; h++) {
    ranges.push({
      head: h,
      cacheOffset: h * capacity * rowBytes,
      slabOffset: h * prefixLen * rowBytes,
      byteLength: prefixLen * rowBytes,
    });
  }
  return ranges;
}
