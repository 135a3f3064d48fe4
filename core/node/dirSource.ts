// Node-only: a model's MLC folder on disk (tests, CLI, bench).
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { ModelSourceSpec } from '../engine/types';
import {
  HttpSource,
  type HttpSourceOptions,
  ModelFileError,
  type ReadBytesOptions,
  rejectHtml,
  verifyBytes,
  type WeightSource,
} from '../model/sources';

export class DirSource implements WeightSource {
  readonly location: string;

  constructor(dir: string) {
    this.location = resolve(dir);
  }

  private path(name: string): string {
    return join(this.location, name);
  }

  async readText(name: string): Promise<string> {
    const text = (await this.readFile(name)).toString('utf8');
    rejectHtml(this.path(name), text);
    return text;
  }

  async readBytes(name: string, opts: ReadBytesOptions): Promise<Uint8Array> {
    const path = this.path(name);
    const buf = await this.readFile(name);
    const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    await verifyBytes(path, bytes, opts.expectedBytes, opts.md5);
    opts.onProgress?.(bytes.length, opts.expectedBytes, true);
    return bytes;
  }

  private async readFile(name: string): Promise<Buffer> {
    const path = this.path(name);
    try {
      return await readFile(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new ModelFileError(path, code === 'ENOENT' ? 'missing file' : `cannot read (${code ?? String(e)})`);
    }
  }
}

/** The engine's ModelSourceSpec as a WeightSource (Node: directories and URLs). */
export function sourceFromSpec(spec: ModelSourceSpec, http?: HttpSourceOptions): WeightSource {
  return spec.kind === 'dir' ? new DirSource(spec.path) : new HttpSource(spec.baseUrl, http);
}
