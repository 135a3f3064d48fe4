// Backend-specific behaviour: the directory store's files (atomic writes, crash leftovers, hostile names) and the
// IndexedDB store's records.
import 'fake-indexeddb/auto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deleteDB, openDB } from 'idb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DirSnapshotBackend, openDirSnapshotStore } from '../../core/node/dirSnapshotStore';
import { openIdbSnapshotStore } from '../../core/snapshot/idbBackend';
import { identity, loadAll, makeLayers, save, tokens } from './snapshotHarness';

describe('directory snapshot store', () => {
  let dir: string;
  beforeEach(async () => {
    dir = join(await mkdtemp(join(tmpdir(), 'snapshot-dir-')), 'nested', 'snapshots');
  });
  afterEach(async () => {
    await rm(join(dir, '..', '..'), { recursive: true, force: true });
  });

  it('creates the folder and lays out meta/<key>.json and chunks/<writeId>/<i>.bin, no temp files', async () => {
    const store = await openDirSnapshotStore(dir, { chunkBytes: 1000 });
    const key = await save(store, identity(), tokens(12), makeLayers(3, 384, 1), 'Emma');
    expect(await readdir(join(dir, 'meta'))).toEqual([`${key}.json`]);
    const meta = JSON.parse(await readFile(join(dir, 'meta', `${key}.json`), 'utf8'));
    expect(meta).toMatchObject({ key, label: 'Emma', prefixLen: 12, totalBytes: 2304, chunkCount: 3 });
    expect(await readdir(join(dir, 'chunks'))).toEqual([meta.writeId]);
    expect((await readdir(join(dir, 'chunks', meta.writeId))).sort()).toEqual(['0.bin', '1.bin', '2.bin']);
    expect((await readFile(join(dir, 'chunks', meta.writeId, '2.bin'))).byteLength).toBe(304);
  });

  it('removes temp files of interrupted writes on open; a half-renamed record is never listed', async () => {
    const store = await openDirSnapshotStore(dir, { chunkBytes: 1000 });
    const key = await save(store, identity(), tokens(12), makeLayers(3, 384, 2));
    const metaText = await readFile(join(dir, 'meta', `${key}.json`), 'utf8');
    const writeId = JSON.parse(metaText).writeId as string;
    // A crash between writing a temp file and renaming it: a full record under a temp name, a torn chunk.
    const otherKey = 'b'.repeat(64);
    await writeFile(join(dir, 'meta', `${otherKey}.json.tmp-123-abc`), metaText.replaceAll(key, otherKey));
    await writeFile(join(dir, 'chunks', writeId, '0.bin.tmp-123-abc'), 'torn');
    await writeFile(join(dir, 'meta', 'notes.txt'), 'not a record');

    const reopened = await openDirSnapshotStore(dir);
    expect((await reopened.list()).map((s) => s.key)).toEqual([key]);
    expect(await readdir(join(dir, 'meta'))).toEqual(expect.not.arrayContaining([`${otherKey}.json.tmp-123-abc`]));
    expect(await readdir(join(dir, 'chunks', writeId))).not.toContain('0.bin.tmp-123-abc');
    expect((await loadAll(reopened, key, identity(), tokens(12))).result.ok).toBe(true);
  });

  it('a torn (unparsable) record → miss corrupt-meta and the file and its chunks are gone', async () => {
    const store = await openDirSnapshotStore(dir, { chunkBytes: 1000 });
    const key = await save(store, identity(), tokens(12), makeLayers(3, 384, 3));
    const path = join(dir, 'meta', `${key}.json`);
    const text = await readFile(path, 'utf8');
    await writeFile(path, text.slice(0, text.length / 2));
    const { result } = await loadAll(store, key, identity(), tokens(12));
    expect(result).toMatchObject({ ok: false, reason: 'corrupt-meta' });
    expect(await readdir(join(dir, 'meta'))).toEqual([]);
    // The unparsable record's chunks cannot be named from it: the next open collects them as orphans.
    const reopened = await openDirSnapshotStore(dir);
    expect(await reopened.backend.listChunkWriteIds()).toEqual([]);
  });

  it('refuses keys and writeIds that are not plain hex (no path tricks)', async () => {
    const backend = await DirSnapshotBackend.open(dir);
    await expect(backend.getMeta('../../etc/passwd')).rejects.toThrow('key must be a hex SHA-256');
    await expect(backend.getChunk('../x', 0)).rejects.toThrow('malformed writeId');
    await mkdir(join(dir, 'chunks', 'not-a-write-id'));
    expect(await backend.listChunkWriteIds()).toEqual([]);
  });

  it('rejects an empty directory path', async () => {
    await expect(openDirSnapshotStore('')).rejects.toThrow('directory path is empty');
  });
});

describe('IndexedDB snapshot store', () => {
  const name = `snapshot-idb-${process.pid}`;
  afterEach(async () => {
    await deleteDB(name);
  });

  it('uses object stores meta and chunks, storing exactly each chunk’s bytes', async () => {
    const store = await openIdbSnapshotStore(name, { chunkBytes: 1000 });
    const key = await save(store, identity(), tokens(12), makeLayers(3, 384, 4));
    await store.close();
    const db = await openDB(name);
    expect([...db.objectStoreNames].sort()).toEqual(['chunks', 'meta']);
    const meta = (await db.get('meta', key)) as { writeId: string; chunkSizes: number[] };
    const keys = (await db.getAllKeys('chunks')) as [string, number][];
    expect(keys).toEqual([
      [meta.writeId, 0],
      [meta.writeId, 1],
      [meta.writeId, 2],
    ]);
    for (const [w, i] of keys) {
      const chunk = (await db.get('chunks', [w, i])) as Uint8Array;
      // The writer's chunk buffer is a view of a larger buffer; only the chunk itself must be stored.
      expect(chunk.buffer.byteLength).toBe(meta.chunkSizes[i]);
    }
    db.close();
  });
});
