// Snapshot store, run against every backend: byte budget and full-storage eviction (LRU), concurrent saves,
// crashes mid-save, and the list/delete/clear/abort operations.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SnapshotBackend } from '../../core/snapshot/backend';
import { SNAPSHOT_LAYOUT_VERSION } from '../../core/snapshot/key';
import { SnapshotStore } from '../../core/snapshot/store';
import {
  FullDiskBackend,
  HARNESSES,
  type Harness,
  identity,
  type LayerSlabs,
  loadAll,
  makeLayers,
  save,
  tokens,
} from './snapshotHarness';

// Default identity: 3 layers × 2 kv heads × head dim 8, f16. With 12 tokens a slab is 384 bytes and a snapshot
// 2304 bytes = chunks of 1000 + 1000 + 304.
const SNAP = 2304;
const SLAB = 384;

describe.each(HARNESSES)('snapshot store budget and lifecycle on %s', (_name, makeHarness) => {
  let harness: Harness;
  let backend: SnapshotBackend;
  let clock: number;
  const opts = (over: object = {}) => ({ chunkBytes: 1000, now: () => clock, ...over });

  beforeEach(async () => {
    harness = await makeHarness();
    backend = await harness.openBackend();
    clock = 1;
  });
  afterEach(async () => {
    await harness.dispose();
  });

  async function expectExact(store: SnapshotStore, key: string, toks: number[], layers: LayerSlabs[]) {
    const { result, received } = await loadAll(store, key, identity(), toks);
    expect(result.ok).toBe(true);
    expect(received.map((r) => [[...r.k], [...r.v]])).toEqual(layers.map((l) => [[...l.k], [...l.v]]));
  }

  it('a lowered budget applies at once: snapshots above it are evicted, LRU first; 0 keeps none', async () => {
    const store = await SnapshotStore.open(backend, opts({ maxBytes: 3 * SNAP }));
    const keyA = await save(store, identity(), tokens(12, 1), makeLayers(3, SLAB, 1));
    clock = 2;
    const keyB = await save(store, identity(), tokens(12, 2), makeLayers(3, SLAB, 2));
    expect((await store.list()).map((s) => s.key).sort()).toEqual([keyA, keyB].sort());
    await store.setMaxBytes(SNAP + 100);
    expect((await store.list()).map((s) => s.key)).toEqual([keyB]);
    await store.setMaxBytes(0);
    expect(await store.list()).toEqual([]);
    expect(await store.beginSave(identity(), tokens(12, 3))).toMatchObject({ ok: false, reason: 'too-large' });
  });

  it('evicts the least recently used snapshot when over the byte budget; too-large fails at once', async () => {
    const store = await SnapshotStore.open(backend, opts({ maxBytes: 2 * SNAP + 1000 }));
    const keyA = await save(store, identity(), tokens(12, 1), makeLayers(3, SLAB, 1));
    clock = 2;
    const keyB = await save(store, identity(), tokens(12, 2), makeLayers(3, SLAB, 2));
    clock = 3;
    expect((await loadAll(store, keyA, identity(), tokens(12, 1))).result.ok).toBe(true); // A is now newer than B
    clock = 4;
    const layersC = makeLayers(3, SLAB, 3);
    const keyC = await save(store, identity(), tokens(12, 3), layersC);
    expect((await store.list()).map((s) => s.key)).toEqual([keyC, keyA]);
    expect(await backend.getMeta(keyB)).toBeNull();
    await expectExact(store, keyC, tokens(12, 3), layersC);

    const big = await store.beginSave(identity(), tokens(100)); // 3 × 2 × 2×100×8×2 = 19200 bytes
    expect(big).toMatchObject({ ok: false, reason: 'too-large' });
    expect(await store.usage()).toEqual({ usedBytes: 2 * SNAP, reservedBytes: 0, maxBytes: 2 * SNAP + 1000, count: 2 });
  });

  it('counts saves in progress against the budget (reason budget when they leave no room)', async () => {
    const store = await SnapshotStore.open(backend, opts({ maxBytes: 2 * SNAP + 1000 }));
    const a = await store.beginSave(identity(), tokens(12, 1));
    const b = await store.beginSave(identity(), tokens(12, 2));
    expect(a.ok && b.ok).toBe(true);
    expect((await store.usage()).reservedBytes).toBe(2 * SNAP);
    expect(await store.beginSave(identity(), tokens(12, 3))).toMatchObject({ ok: false, reason: 'budget' });
    if (a.ok) await a.writer.abort();
    expect((await store.usage()).reservedBytes).toBe(SNAP);
    expect((await store.beginSave(identity(), tokens(12, 3))).ok).toBe(true);
  });

  it('on a full disk (quota error) evicts in LRU order and retries; a save that cannot fit fails cleanly', async () => {
    // Room for exactly 4 snapshots minus one byte: a 4th save hits the quota on its last chunk.
    const disk = new FullDiskBackend(backend, 4 * SNAP - 1, harness.quotaError);
    const store = await SnapshotStore.open(disk, opts());
    const keys: string[] = [];
    for (let i = 0; i < 3; i++) {
      clock = 10 + i;
      keys.push(await save(store, identity(), tokens(12, i), makeLayers(3, SLAB, i)));
    }
    clock = 20;
    expect((await loadAll(store, keys[0], identity(), tokens(12, 0))).result.ok).toBe(true); // order: 1, 2, 0
    clock = 21;
    const layersD = makeLayers(3, SLAB, 30);
    const keyD = await save(store, identity(), tokens(12, 30), layersD);
    expect(disk.quotaErrors).toBe(1);
    expect(new Set((await store.list()).map((s) => s.key))).toEqual(new Set([keys[0], keys[2], keyD]));
    clock = 22;
    const keyE = await save(store, identity(), tokens(12, 31), makeLayers(3, SLAB, 31));
    expect(disk.quotaErrors).toBe(2);
    expect((await store.list()).map((s) => s.key)).toEqual([keyE, keyD, keys[0]]);
    await expectExact(store, keyD, tokens(12, 30), layersD);

    // 50 tokens: 9600 bytes > the whole disk (9215). Everything evictable goes, then the save gives up with 'quota'.
    const begun = await store.beginSave(identity(), tokens(50, 5));
    if (!begun.ok) throw new Error(begun.detail);
    const slabs = makeLayers(3, 1600, 5);
    let failure: unknown = null;
    for (let l = 0; l < 3 && !failure; l++) {
      const step = await begun.writer.writeLayer(l, slabs[l].k, slabs[l].v);
      if (!step.ok) failure = step;
    }
    // The last 600-byte chunk is only written by commit(), so the failure may come from there.
    const committed = await begun.writer.commit();
    expect(failure ?? committed).toMatchObject({ ok: false, reason: 'quota' });
    expect(committed).toMatchObject({ ok: false, reason: 'quota' });
    expect((committed as { detail: string }).detail).toMatch(/nothing is left to evict/);
    expect(await backend.listChunkWriteIds()).toEqual([]); // nothing of the failed save is left
    expect(disk.usedBytes()).toBe(0);
    // The store still works afterwards.
    const layersF = makeLayers(3, SLAB, 40);
    const keyF = await save(store, identity(), tokens(12, 40), layersF);
    await expectExact(store, keyF, tokens(12, 40), layersF);
  });

  it('a quota error on the metadata record evicts the LRU snapshot and retries', async () => {
    const disk = new FullDiskBackend(backend, 1e9, harness.quotaError);
    const store = await SnapshotStore.open(disk, opts());
    const keyA = await save(store, identity(), tokens(12, 1), makeLayers(3, SLAB, 1));
    clock = 2;
    const keyB = await save(store, identity(), tokens(12, 2), makeLayers(3, SLAB, 2));
    clock = 3;
    disk.failNextMeta = true;
    const layersC = makeLayers(3, SLAB, 3);
    const keyC = await save(store, identity(), tokens(12, 3), layersC);
    expect(disk.quotaErrors).toBe(1);
    expect((await store.list()).map((s) => s.key)).toEqual([keyC, keyB]);
    expect(await backend.getMeta(keyA)).toBeNull();
    await expectExact(store, keyC, tokens(12, 3), layersC);
  });

  it('saves two documents concurrently, interleaving their layers', async () => {
    const store = await SnapshotStore.open(backend, opts());
    const docs = [0, 1].map((d) => ({ toks: tokens(12, 50 + d), layers: makeLayers(3, SLAB, 50 + d) }));
    const writers = await Promise.all(docs.map((d) => store.beginSave(identity(), d.toks)));
    for (let l = 0; l < 3; l++) {
      const steps = await Promise.all(
        writers.map((w, d) => (w.ok ? w.writer.writeLayer(l, docs[d].layers[l].k, docs[d].layers[l].v) : w)),
      );
      expect(steps.every((s) => s.ok)).toBe(true);
    }
    const results = await Promise.all(writers.map((w) => (w.ok ? w.writer.commit() : w)));
    const keys = results.map((r) => (r.ok ? r.summary.key : ''));
    for (let d = 0; d < 2; d++) await expectExact(store, keys[d], docs[d].toks, docs[d].layers);
  });

  it('the same document saved twice concurrently leaves one record and one set of chunks', async () => {
    const store = await SnapshotStore.open(backend, opts());
    const toks = tokens(12, 60);
    const [layers1, layers2] = [makeLayers(3, SLAB, 61), makeLayers(3, SLAB, 62)];
    const [k1, k2] = await Promise.all([
      save(store, identity(), toks, layers1),
      save(store, identity(), toks, layers2),
    ]);
    expect(k1).toBe(k2);
    expect(await backend.listChunkWriteIds()).toHaveLength(1);
    const { result, received } = await loadAll(store, k1, identity(), toks);
    expect(result.ok).toBe(true);
    const got = received.map((r) => [...r.k]);
    const one = got.every((k, l) => k.join() === [...layers1[l].k].join());
    const two = got.every((k, l) => k.join() === [...layers2[l].k].join());
    expect(one !== two).toBe(true); // exactly one of the two versions, whole
  });

  it('a crash mid-save (chunks written, no record) leaves nothing loadable; the next open removes the chunks', async () => {
    const toks = tokens(12, 70);
    // A backend whose metadata writes never land, as if the process died during them.
    const hangingMeta = new Proxy(backend, {
      get: (target, prop) =>
        prop === 'putMeta' ? () => new Promise<void>(() => {}) : Reflect.get(target, prop, target).bind(target),
    });
    const store1 = await SnapshotStore.open(hangingMeta, opts());
    const begun = await store1.beginSave(identity(), toks);
    if (!begun.ok) throw new Error(begun.detail);
    const layers = makeLayers(3, SLAB, 70);
    await begun.writer.writeLayer(0, layers[0].k, layers[0].v);
    await begun.writer.writeLayer(1, layers[1].k, layers[1].v); // 1536 bytes: chunk 0 is stored
    expect(await backend.listChunkWriteIds()).toHaveLength(1);
    // The process dies here. A second save dies while its record is being written.
    const begun2 = await store1.beginSave(identity(), tokens(12, 71));
    if (!begun2.ok) throw new Error(begun2.detail);
    for (let l = 0; l < 3; l++) await begun2.writer.writeLayer(l, layers[l].k, layers[l].v);
    void begun2.writer.commit();
    await new Promise((r) => setTimeout(r, 50));
    expect(await backend.listChunkWriteIds()).toHaveLength(2);

    const restarted = await SnapshotStore.open(await harness.openBackend(), opts());
    expect(await restarted.findLongestPrefix(identity(), toks)).toBeNull();
    expect((await loadAll(restarted, 'f'.repeat(64), identity(), toks)).result).toMatchObject({ reason: 'not-found' });
    expect(await restarted.list()).toEqual([]);
    expect(await restarted.backend.listChunkWriteIds()).toEqual([]);
  });

  it('open() removes records of another layout version and evicts LRU down to a smaller budget', async () => {
    const store = await SnapshotStore.open(backend, opts());
    await save(store, identity({ layoutVersion: SNAPSHOT_LAYOUT_VERSION + 1 }), tokens(12, 1), makeLayers(3, SLAB, 1));
    const keys: string[] = [];
    for (let i = 0; i < 3; i++) {
      clock = 10 + i;
      keys.push(await save(store, identity(), tokens(12, 2 + i), makeLayers(3, SLAB, i)));
    }
    const reopened = await SnapshotStore.open(await harness.openBackend(), opts({ maxBytes: SNAP + 100 }));
    expect(await reopened.cleanup()).toEqual({ badRecords: 0, orphanSaves: 0, evicted: 0 }); // open() did it all
    expect((await reopened.list()).map((s) => s.key)).toEqual([keys[2]]);
    expect(await backend.listChunkWriteIds()).toHaveLength(1);
  });

  it('list, delete, clear (a save in progress ends with reason cleared), abort', async () => {
    const store = await SnapshotStore.open(backend, opts());
    const keyA = await save(store, identity(), tokens(12, 1), makeLayers(3, SLAB, 1), 'Emma');
    clock = 2;
    const keyB = await save(store, identity(), tokens(20, 2), makeLayers(3, 640, 2), 'Moby Dick');
    expect(await store.list()).toMatchObject([
      { key: keyB, label: 'Moby Dick', prefixLen: 20, totalBytes: 3840, modelId: identity().modelId, kvDtype: 'f16' },
      { key: keyA, label: 'Emma', prefixLen: 12, totalBytes: SNAP, createdAt: 1, lastUsedAt: 1 },
    ]);
    await store.delete(keyA);
    expect((await store.list()).map((s) => s.key)).toEqual([keyB]);
    expect(await backend.listChunkWriteIds()).toHaveLength(1);

    const begun = await store.beginSave(identity(), tokens(12, 3));
    if (!begun.ok) throw new Error(begun.detail);
    const layers = makeLayers(3, SLAB, 3);
    await begun.writer.writeLayer(0, layers[0].k, layers[0].v);
    await store.clear();
    expect(await begun.writer.writeLayer(1, layers[1].k, layers[1].v)).toMatchObject({ ok: false, reason: 'cleared' });
    expect(await begun.writer.commit()).toMatchObject({ ok: false, reason: 'cleared' });
    expect(await store.list()).toEqual([]);
    expect(await backend.listChunkWriteIds()).toEqual([]);

    const aborted = await store.beginSave(identity(), tokens(12, 4));
    if (!aborted.ok) throw new Error(aborted.detail);
    for (let l = 0; l < 2; l++) await aborted.writer.writeLayer(l, layers[l].k, layers[l].v);
    await aborted.writer.abort();
    expect(aborted.writer.failure).toMatchObject({ reason: 'aborted' });
    expect(await aborted.writer.writeLayer(2, layers[2].k, layers[2].v)).toMatchObject({ reason: 'aborted' });
    expect(await backend.listChunkWriteIds()).toEqual([]);
    expect((await store.usage()).reservedBytes).toBe(0);
  });
});
