// Directory backend for snapshots (Node CLI: --snapshot-dir DIR). Layout:
//   DIR/meta/<key>.json              metadata record (JSON)
//   DIR/chunks/<writeId>/<index>.bin binary chunks
// Every file is written to a temp name in the same folder and renamed into place, so a reader sees a whole file
// or none; temp files left by a crash are removed when the directory is opened.

import { mkdir, open, readdir, readFile, rename, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { SnapshotBackend, StoredMetaRecord } from '../snapshot/backend';
import { isWriteId, type SnapshotMeta } from '../snapshot/format';
import { isHexSha256 } from '../snapshot/key';
import { SnapshotStore, type SnapshotStoreOptions } from '../snapshot/store';

const TEMP_MARK = '.tmp-';

function errCode(e: unknown): unknown {
  return (e as { code?: unknown } | null)?.code;
}

function checkKey(key: string): void {
  if (!isHexSha256(key)) throw new Error(`dir snapshot store: key must be a hex SHA-256, got ${JSON.stringify(key)}`);
}

function checkWriteId(writeId: string): void {
  if (!isWriteId(writeId)) throw new Error(`dir snapshot store: malformed writeId ${JSON.stringify(writeId)}`);
}

/** Writes `data` to `path` atomically (temp file in the same folder, fsync, rename); no temp file is left on error. */
async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const temp = `${path}${TEMP_MARK}${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    const file = await open(temp, 'w');
    try {
      await file.writeFile(data);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, path);
  } catch (e) {
    await unlink(temp).catch(() => undefined);
    throw e;
  }
}

async function removeTempFiles(folder: string): Promise<void> {
  for (const name of await readdir(folder).catch(() => [] as string[])) {
    if (name.includes(TEMP_MARK)) await rm(join(folder, name), { force: true });
  }
}

export class DirSnapshotBackend implements SnapshotBackend {
  readonly description: string;
  readonly dir: string;
  private readonly metaDir: string;
  private readonly chunksDir: string;

  private constructor(dir: string) {
    this.dir = dir;
    this.description = `dir:${dir}`;
    this.metaDir = join(dir, 'meta');
    this.chunksDir = join(dir, 'chunks');
  }

  /** Creates the folders if needed and removes temp files of interrupted writes. */
  static async open(dir: string): Promise<DirSnapshotBackend> {
    if (typeof dir !== 'string' || dir.length === 0) throw new Error('dir snapshot store: directory path is empty');
    const backend = new DirSnapshotBackend(dir);
    await backend.makeFolders();
    await removeTempFiles(backend.metaDir);
    for (const writeId of await backend.listChunkWriteIds()) {
      await removeTempFiles(join(backend.chunksDir, writeId));
    }
    return backend;
  }

  private async makeFolders(): Promise<void> {
    await mkdir(this.metaDir, { recursive: true });
    await mkdir(this.chunksDir, { recursive: true });
  }

  private metaPath(key: string): string {
    checkKey(key);
    return join(this.metaDir, `${key}.json`);
  }

  private chunkFolder(writeId: string): string {
    checkWriteId(writeId);
    return join(this.chunksDir, writeId);
  }

  async putChunk(writeId: string, index: number, bytes: Uint8Array): Promise<void> {
    if (!Number.isInteger(index) || index < 0) throw new Error(`dir snapshot store: bad chunk index ${index}`);
    const folder = this.chunkFolder(writeId);
    await mkdir(folder, { recursive: true });
    await writeFileAtomic(join(folder, `${index}.bin`), bytes);
  }

  async getChunk(writeId: string, index: number): Promise<Uint8Array | null> {
    try {
      const buf = await readFile(join(this.chunkFolder(writeId), `${index}.bin`));
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    } catch (e) {
      if (errCode(e) === 'ENOENT') return null;
      throw e;
    }
  }

  async deleteChunks(writeId: string): Promise<void> {
    await rm(this.chunkFolder(writeId), { recursive: true, force: true });
  }

  async listChunkWriteIds(): Promise<string[]> {
    const names = await readdir(this.chunksDir).catch(() => [] as string[]);
    return names.filter((n) => isWriteId(n));
  }

  async putMeta(meta: SnapshotMeta): Promise<void> {
    await writeFileAtomic(this.metaPath(meta.key), JSON.stringify(meta));
  }

  async getMeta(key: string): Promise<StoredMetaRecord | null> {
    let text: string;
    try {
      text = await readFile(this.metaPath(key), 'utf8');
    } catch (e) {
      if (errCode(e) === 'ENOENT') return null;
      throw e;
    }
    try {
      return { key, record: JSON.parse(text) as unknown };
    } catch {
      return { key, record: undefined };
    }
  }

  async listMeta(): Promise<StoredMetaRecord[]> {
    const out: StoredMetaRecord[] = [];
    for (const name of await readdir(this.metaDir).catch(() => [] as string[])) {
      const key = name.endsWith('.json') ? name.slice(0, -'.json'.length) : '';
      if (!isHexSha256(key)) continue;
      const stored = await this.getMeta(key);
      if (stored) out.push(stored);
    }
    return out;
  }

  async deleteMeta(key: string, onlyIfWriteId?: string): Promise<void> {
    if (onlyIfWriteId !== undefined) {
      const current = await this.getMeta(key);
      if (!current) return;
      if ((current.record as { writeId?: unknown } | undefined)?.writeId !== onlyIfWriteId) return;
    }
    await rm(this.metaPath(key), { force: true });
  }

  async clear(): Promise<void> {
    await rm(this.metaDir, { recursive: true, force: true });
    await rm(this.chunksDir, { recursive: true, force: true });
    await this.makeFolders();
  }

  async close(): Promise<void> {}
}

/** A SnapshotStore on a directory (created if missing), for the Node CLI's --snapshot-dir. */
export async function openDirSnapshotStore(dir: string, opts: SnapshotStoreOptions = {}): Promise<SnapshotStore> {
  return SnapshotStore.open(await DirSnapshotBackend.open(dir), opts);
}
