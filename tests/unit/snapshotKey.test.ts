// Snapshot keys and record checks, against an independent SHA-256 (node:crypto) and hand-written records.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isQuotaError } from '../../core/snapshot/backend';
import {
  SNAPSHOT_LAYOUT_VERSION,
  type SnapshotIdentity,
  sha256Hex,
  slabBytes,
  snapshotBytes,
  snapshotKey,
} from '../../core/snapshot/key';
import { slabCopyRanges } from '../../core/snapshot/layout';
import { parseMeta } from '../../core/snapshot/verify';
import { identity } from './snapshotHarness';

describe('snapshot key', () => {
  it('sha256Hex matches the FIPS 180-2 test vector and node:crypto', async () => {
    expect(await sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    const bytes = new Uint8Array(100_003).map((_, i) => (i * 31) & 0xff);
    expect(await sha256Hex(bytes)).toBe(createHash('sha256').update(bytes).digest('hex'));
  });

  it('is SHA-256 of the identity header, a 0 byte and the tokens as uint32 LE (the documented encoding)', async () => {
    const id = identity();
    const toks = [1, 128000, 0xffffffff, 42];
    const header = JSON.stringify([
      'recycled-reader-kv-snapshot',
      id.modelId,
      id.manifestHash,
      'f16',
      SNAPSHOT_LAYOUT_VERSION,
      3,
      2,
      8,
      '', // engineVersion: none given
    ]);
    const tokenBytes = Buffer.alloc(16);
    toks.forEach((t, i) => {
      tokenBytes.writeUInt32LE(t, i * 4);
    });
    const expected = createHash('sha256')
      .update(Buffer.concat([Buffer.from(header, 'utf8'), Buffer.from([0]), tokenBytes]))
      .digest('hex');
    expect(await snapshotKey(id, toks)).toBe(expected);
    expect(await snapshotKey(id, Uint32Array.from(toks))).toBe(expected);
  });

  it('changes with every identity field and with the tokens', async () => {
    const base = await snapshotKey(identity(), [5, 6, 7]);
    const changes: Partial<SnapshotIdentity>[] = [
      { modelId: 'other' },
      { manifestHash: 'b'.repeat(64) },
      { kvDtype: 'f32' },
      { layoutVersion: SNAPSHOT_LAYOUT_VERSION + 1 },
      { numLayers: 4 },
      { kvHeads: 1 },
      { headDim: 16 },
    ];
    const keys = await Promise.all(changes.map((c) => snapshotKey(identity(c), [5, 6, 7])));
    keys.push(await snapshotKey(identity(), [5, 7, 6]), await snapshotKey(identity(), [5, 6, 7, 0]));
    expect(new Set([base, ...keys]).size).toBe(keys.length + 1);
  });

  it('rejects bad identities and token ids with specific errors', async () => {
    await expect(snapshotKey(identity({ modelId: '' }), [1])).rejects.toThrow('modelId must be non-empty');
    await expect(snapshotKey(identity({ kvDtype: 'bf16' as never }), [1])).rejects.toThrow("kvDtype must be 'f16'");
    await expect(snapshotKey(identity({ headDim: 2.5 }), [1])).rejects.toThrow('headDim must be a positive integer');
    await expect(snapshotKey(identity(), [1, 2 ** 32])).rejects.toThrow('index 1 is not a uint32');
    await expect(snapshotKey(identity(), [0.5])).rejects.toThrow('index 0 is not a uint32');
  });

  it('sizes: slab = kvHeads × prefixLen × headDim × dtype bytes, snapshot = 2 × layers × slab', () => {
    // Llama-3.2-1B: 16 layers, 8 kv heads, head dim 64, f16 → 32 KiB per token.
    const llama1b = identity({ numLayers: 16, kvHeads: 8, headDim: 64 });
    expect(slabBytes(llama1b, 1)).toBe(1024);
    expect(snapshotBytes(llama1b, 1)).toBe(32768);
    expect(snapshotBytes(identity({ kvDtype: 'f32' }), 10)).toBe(3 * 2 * 2 * 10 * 8 * 4);
  });
});

describe('snapshot record checks', () => {
  function record(over: Record<string, unknown> = {}): Record<string, unknown> {
    // 3 layers × 2 heads × 8 dims, f16, 2 tokens → slab 64 bytes, total 384, chunks of 100: 4 chunks.
    return {
      ...identity(),
      key: 'c'.repeat(64),
      writeId: 'd'.repeat(32),
      prefixLen: 2,
      tokenIds: [1, 2],
      slabBytes: 64,
      totalBytes: 384,
      chunkBytes: 100,
      chunkCount: 4,
      chunkSizes: [100, 100, 100, 84],
      chunkHashes: ['e'.repeat(64), 'e'.repeat(64), 'e'.repeat(64), 'e'.repeat(64)],
      createdAt: 1,
      lastUsedAt: 2,
      ...over,
    };
  }

  it('accepts a consistent record', () => {
    expect(typeof parseMeta(record())).toBe('object');
  });

  it.each([
    ['not an object', null, 'not an object'],
    ['bad key', record({ key: 'xyz' }), 'key is not a hex SHA-256'],
    ['bad writeId', record({ writeId: '../../etc' }), 'writeId is malformed'],
    ['tokens/prefixLen', record({ tokenIds: [1] }), 'tokenIds must be an array of prefixLen ids'],
    ['token value', record({ tokenIds: [1, -1] }), 'uint32'],
    ['slab size', record({ slabBytes: 63 }), 'slabBytes does not match'],
    ['total size', record({ totalBytes: 380 }), 'totalBytes does not match'],
    ['chunk count', record({ chunkCount: 3 }), 'chunkCount 3 != 4'],
    ['chunk size', record({ chunkSizes: [100, 100, 84, 100] }), 'chunk 2 size 84 != 100'],
    ['chunk hash', record({ chunkHashes: ['e'.repeat(64), 'e'.repeat(64), 'e'.repeat(64), 'E'] }), 'chunk 3 hash'],
    ['dtype', record({ kvDtype: 'q4' }), 'kvDtype'],
  ])('rejects a record with a wrong %s', (_what, rec, message) => {
    const result = parseMeta(rec);
    expect(typeof result).toBe('string');
    expect(result).toContain(message);
  });
});

describe('isQuotaError', () => {
  it('recognizes QuotaExceededError, ENOSPC, EDQUOT (also as a cause), and nothing else', () => {
    expect(isQuotaError(new DOMException('full', 'QuotaExceededError'))).toBe(true);
    expect(isQuotaError(Object.assign(new Error('x'), { code: 'ENOSPC' }))).toBe(true);
    expect(isQuotaError(Object.assign(new Error('x'), { code: 'EDQUOT' }))).toBe(true);
    expect(isQuotaError(new Error('wrapped', { cause: new DOMException('full', 'QuotaExceededError') }))).toBe(true);
    expect(isQuotaError(new DOMException('abort', 'AbortError'))).toBe(false);
    expect(isQuotaError(Object.assign(new Error('x'), { code: 'EACCES' }))).toBe(false);
    expect(isQuotaError('QuotaExceededError')).toBe(false);
  });
});

describe('slabCopyRanges', () => {
  it('maps each head of a [kvHeads][capacity][headDim] buffer to the packed [kvHeads][prefixLen][headDim] slab', () => {
    // 2 heads, head dim 8, f16 → 16-byte rows; capacity 100, prefix 37.
    expect(slabCopyRanges(identity(), 100, 37)).toEqual([
      { head: 0, cacheOffset: 0, slabOffset: 0, byteLength: 592 },
      { head: 1, cacheOffset: 1600, slabOffset: 592, byteLength: 592 },
    ]);
  });

  it('rejects a prefix longer than the cache and rows that WebGPU cannot copy', () => {
    expect(() => slabCopyRanges(identity(), 10, 11)).toThrow('prefixLen must be in 1..capacity (10)');
    expect(() => slabCopyRanges(identity({ headDim: 3 }), 10, 5)).toThrow('not a multiple of 4 bytes');
  });
});
