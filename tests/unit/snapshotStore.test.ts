// Snapshot store, run against every backend: exact round trips, prefix lookup, and every kind of damage or
// mismatch → a typed miss and the entry deleted.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SnapshotBackend } from '../../core/snapshot/backend';
import { SNAPSHOT_LAYOUT_VERSION } from '../../core/snapshot/key';
import { SnapshotStore } from '../../core/snapshot/store';
import { HARNESSES, type Harness, identity, loadAll, makeLayers, save, tokens } from './snapshotHarness';

describe.each(HARNESSES)('snapshot store on %s', (_name, makeHarness) => {
  let harness: Harness;
  let backend: SnapshotBackend;
  let store: SnapshotStore;
  let clock: number;

  beforeEach(async () => {
    harness = await makeHarness();
    backend = await harness.openBackend();
    clock = 1000;
    // 1000-byte chunks: slabs below are 1184 bytes, so chunks straddle slab and layer boundaries.
    store = await SnapshotStore.open(backend, { chunkBytes: 1000, now: () => clock });
  });
  afterEach(async () => {
    await harness.dispose();
  });

  it('round-trips f16 slabs exactly, in layer order, across chunk boundaries', async () => {
    const id = identity(); // 3 layers, 2 kv heads, head dim 8, f16
    const toks = tokens(37);
    // slab = 2 heads × 37 positions × 8 × 2 bytes
    const layers = makeLayers(3, 1184, 7);
    const key = await save(store, id, toks, layers, 'Persuasion, ch. 1');
    const stored = (await backend.getMeta(key))?.record as Record<string, unknown>;
    expect(stored.totalBytes).toBe(7104); // 3 layers × 2 × 1184
    expect(stored.chunkCount).toBe(8); // ceil(7104 / 1000)
    expect((stored.chunkSizes as number[]).at(-1)).toBe(104);
    expect(stored.tokenIds).toEqual(toks);

    clock = 2000;
    const { result, received } = await loadAll(store, key, id, toks);
    expect(result).toMatchObject({ ok: true, summary: { key, prefixLen: 37, label: 'Persuasion, ch. 1' } });
    expect(received.map((r) => r.layer)).toEqual([0, 1, 2]);
    for (let l = 0; l < 3; l++) {
      expect(Buffer.from(received[l].k).equals(Buffer.from(layers[l].k))).toBe(true);
      expect(Buffer.from(received[l].v).equals(Buffer.from(layers[l].v))).toBe(true);
    }
    // The load touched lastUsedAt (LRU), not createdAt.
    const [summary] = await store.list();
    expect(summary).toMatchObject({ createdAt: 1000, lastUsedAt: 2000, totalBytes: 7104 });
  });

  it('round-trips f32 slabs with NaN payloads, -0 and subnormals bit for bit', async () => {
    const id = identity({ kvDtype: 'f32', numLayers: 2, kvHeads: 1, headDim: 4 });
    const toks = tokens(3, 5);
    const specials = [Number.NaN, -0, 1e-45, -3.4e38, Number.POSITIVE_INFINITY, 0.1, -2.5, 1 / 3, 7, -1, 42, 1e-40];
    const layers = [0, 1].map((l) => {
      const k = new Float32Array(12); // 1 head × 3 positions × 4
      const v = new Float32Array(12);
      for (let i = 0; i < 12; i++) {
        k[i] = specials[(i + l) % 12];
        v[i] = specials[(i + 5 * l + 3) % 12];
      }
      const kBytes = new Uint8Array(k.buffer);
      kBytes[3] = 0x7f; // k[0] is NaN: give it a custom payload (0x7fc0_0000 → 0x7fxx_xx..)
      kBytes[0] = 0x5a;
      return { k: kBytes, v: new Uint8Array(v.buffer) };
    });
    const key = await save(store, id, toks, layers);
    const { result, received } = await loadAll(store, key, id, toks);
    expect(result.ok).toBe(true);
    expect(received).toHaveLength(2);
    for (let l = 0; l < 2; l++) {
      expect([...received[l].k]).toEqual([...layers[l].k]);
      expect([...received[l].v]).toEqual([...layers[l].v]);
    }
  });

  it('finds the longest stored prefix of a token sequence, and nothing for another model', async () => {
    const id = identity({ numLayers: 1 });
    const doc = tokens(40, 9);
    const slab = (n: number) => 2 * n * 8 * 2;
    const k10 = await save(store, id, doc.slice(0, 10), makeLayers(1, slab(10), 1));
    const k25 = await save(store, id, doc.slice(0, 25), makeLayers(1, slab(25), 2));
    const other = tokens(30, 77);
    await save(store, id, other, makeLayers(1, slab(30), 3));

    expect((await store.findLongestPrefix(id, doc))?.key).toBe(k25);
    expect((await store.findLongestPrefix(id, doc.slice(0, 25)))?.key).toBe(k25);
    const divergesAt15 = [...doc.slice(0, 15), 31999, ...doc.slice(16)];
    expect((await store.findLongestPrefix(id, divergesAt15))?.key).toBe(k10);
    expect(await store.findLongestPrefix(id, doc.slice(0, 9))).toBeNull();
    expect(await store.findLongestPrefix(identity({ numLayers: 1, modelId: 'other' }), doc)).toBeNull();
    expect(await store.findLongestPrefix(identity({ numLayers: 1, kvDtype: 'f32' }), doc)).toBeNull();
  });

  it('stores only the identity fields of a larger object the engine passes', async () => {
    const engineConfig = { ...identity(), vocabSize: 32000, ropeTheta: 5e5 };
    const key = await save(store, engineConfig, tokens(5), makeLayers(3, 160, 1));
    const record = (await backend.getMeta(key))!.record as Record<string, unknown>;
    expect(record).not.toHaveProperty('vocabSize');
    expect((await loadAll(store, key, identity(), tokens(5))).result.ok).toBe(true);
  });

  it('reports not-found for an unknown key without deleting anything', async () => {
    const id = identity();
    const key = await save(store, id, tokens(5), makeLayers(3, 160, 1));
    const { result } = await loadAll(store, 'f'.repeat(64), id, tokens(5));
    expect(result).toMatchObject({ ok: false, reason: 'not-found' });
    expect(await backend.getMeta(key)).not.toBeNull();
  });

  async function expectDiscarded(key: string, writeId: string) {
    expect(await backend.getMeta(key)).toBeNull();
    expect(await backend.listChunkWriteIds()).not.toContain(writeId);
    expect(await store.list()).toEqual([]);
  }

  async function writeIdOf(key: string): Promise<string> {
    return ((await backend.getMeta(key))!.record as { writeId: string }).writeId;
  }

  it('a corrupted chunk → miss chunk-hash, no layer past the damage is handed out, entry deleted', async () => {
    const id = identity();
    const toks = tokens(37);
    const layers = makeLayers(3, 1184, 3);
    const key = await save(store, id, toks, layers);
    const writeId = await writeIdOf(key);
    // Chunk 5 holds bytes 5000..5999: layer 2's K slab starts at 4736, so layers 0 and 1 are intact.
    const chunk = (await backend.getChunk(writeId, 5))!.slice();
    chunk[17] ^= 0x01;
    await backend.putChunk(writeId, 5, chunk);
    const { result, received } = await loadAll(store, key, id, toks);
    expect(result).toMatchObject({ ok: false, reason: 'chunk-hash' });
    expect(received.map((r) => r.layer)).toEqual([0, 1]);
    await expectDiscarded(key, writeId);
  });

  it('a truncated chunk → miss chunk-size; a missing chunk → miss missing-chunk; both deleted', async () => {
    const id = identity();
    const toks = tokens(37);
    const keyA = await save(store, id, toks, makeLayers(3, 1184, 4));
    const writeA = await writeIdOf(keyA);
    const chunk = (await backend.getChunk(writeA, 0))!.slice(0, 999);
    await backend.putChunk(writeA, 0, chunk);
    const a = await loadAll(store, keyA, id, toks);
    expect(a.result).toMatchObject({ ok: false, reason: 'chunk-size' });
    expect(a.received).toEqual([]);
    await expectDiscarded(keyA, writeA);

    const keyB = await save(store, id, toks, makeLayers(3, 1184, 5));
    const writeB = await writeIdOf(keyB);
    await harness.removeChunk(writeB, 7);
    const b = await loadAll(store, keyB, id, toks);
    expect(b.result).toMatchObject({ ok: false, reason: 'missing-chunk' });
    await expectDiscarded(keyB, writeB);
  });

  it.each([
    ['model-mismatch', { modelId: 'Another-Model' }],
    ['manifest-mismatch', { manifestHash: 'b'.repeat(64) }],
    ['dtype-mismatch', { kvDtype: 'f32' as const }],
    ['layout-mismatch', { layoutVersion: SNAPSHOT_LAYOUT_VERSION + 1 }],
    ['shape-mismatch', { headDim: 16 }],
  ])('expected identity differs → %s, entry deleted', async (reason, change) => {
    const id = identity();
    const toks = tokens(12);
    const key = await save(store, id, toks, makeLayers(3, 384, 6));
    const writeId = await writeIdOf(key);
    const { result, received } = await loadAll(store, key, identity(change), toks);
    expect(result).toMatchObject({ ok: false, reason });
    expect(received).toEqual([]);
    await expectDiscarded(key, writeId);
  });

  it('expected tokens differ → tokens-mismatch, entry deleted', async () => {
    const id = identity();
    const toks = tokens(12);
    const key = await save(store, id, toks, makeLayers(3, 384, 6));
    const writeId = await writeIdOf(key);
    const changed = toks.slice();
    changed[11] = (changed[11] + 1) % 32000;
    const { result } = await loadAll(store, key, id, changed);
    expect(result).toMatchObject({ ok: false, reason: 'tokens-mismatch' });
    await expectDiscarded(key, writeId);
  });

  it('a record edited behind the store (fields no longer hash to its key) → key-mismatch; a malformed one → corrupt-meta', async () => {
    const id = identity();
    const toks = tokens(12);
    const key = await save(store, id, toks, makeLayers(3, 384, 8));
    const record = (await backend.getMeta(key))!.record as Record<string, unknown>;
    await backend.putMeta({ ...record, modelId: 'Another-Model' } as never);
    const edited = await loadAll(store, key, identity({ modelId: 'Another-Model' }), toks);
    expect(edited.result).toMatchObject({ ok: false, reason: 'key-mismatch' });
    await expectDiscarded(key, record.writeId as string);

    const key2 = await save(store, id, toks, makeLayers(3, 384, 9));
    const record2 = (await backend.getMeta(key2))!.record as Record<string, unknown>;
    await backend.putMeta({ ...record2, chunkSizes: [1, 2] } as never);
    const broken = await loadAll(store, key2, id, toks);
    expect(broken.result).toMatchObject({ ok: false, reason: 'corrupt-meta' });
    await expectDiscarded(key2, record2.writeId as string);
  });

  it('an exception in the layer callback is rethrown and the snapshot kept', async () => {
    const id = identity();
    const toks = tokens(12);
    const key = await save(store, id, toks, makeLayers(3, 384, 10));
    await expect(
      store.load(key, { identity: id, tokenIds: toks }, () => {
        throw new Error('GPU upload failed');
      }),
    ).rejects.toThrow('GPU upload failed');
    expect((await loadAll(store, key, id, toks)).result.ok).toBe(true);
  });

  it('rejects misuse with specific errors', async () => {
    const id = identity();
    const begun = await store.beginSave(id, tokens(12));
    if (!begun.ok) throw new Error(begun.detail);
    const w = begun.writer;
    expect(w.slabBytes).toBe(384);
    await expect(w.writeLayer(1, new Uint8Array(384), new Uint8Array(384))).rejects.toThrow('expected layer 0');
    await expect(w.writeLayer(0, new Uint8Array(384), new Uint8Array(383))).rejects.toThrow('v slab has 383 bytes');
    await expect(w.commit()).rejects.toThrow('commit after 0 of 3 layers');
    await w.abort();
    const noop = () => {};
    await expect(store.load('../x', { identity: id, tokenIds: [1] }, noop)).rejects.toThrow('key must be a hex');
    await expect(store.beginSave(id, [])).rejects.toThrow('must not be empty');
    await expect(store.beginSave(id, [1, -2])).rejects.toThrow('index 1 is not a uint32');
    await expect(store.beginSave(identity({ kvHeads: 0 }), [1])).rejects.toThrow('kvHeads must be a positive');
  });
});
