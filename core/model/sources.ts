// Where a model's MLC folder is read from. HTTP(S) shares WebLLM's Cache API store (`webllm/model`, keyed by the full
// URL) so a model is never downloaded twice; an interrupted shard resumes with a Range request.

import { isQuotaError } from '../snapshot/backend';
import { md5Hex } from './md5';

export interface ReadBytesOptions {
  /** The size the manifest promises; a different size is an error. */
  expectedBytes: number;
  /** Lowercase hex md5 from the manifest; checked before the bytes are used. */
  md5?: string;
  /** Bytes received so far for this file (cache hits report the full size at once). */
  onProgress?: (loadedBytes: number, totalBytes: number, fromCache: boolean) => void;
  signal?: AbortSignal;
}

export interface WeightSource {
  /** A short description for messages (URL or directory). */
  readonly location: string;
  /** A text file (JSON). Throws `ModelFileError` naming the file when it is missing or unreadable. */
  readText(name: string): Promise<string>;
  readBytes(name: string, opts: ReadBytesOptions): Promise<Uint8Array>;
}

/** A model file is missing, truncated, corrupt or not what we expected. */
export class ModelFileError extends Error {
  constructor(
    readonly file: string,
    message: string,
    /** Retrying will not help (HTTP 404, 4xx). */
    readonly permanent = false,
  ) {
    super(`${file}: ${message}`);
    this.name = 'ModelFileError';
  }
}

/** Checks size and md5 of a complete file. */
export async function verifyBytes(file: string, bytes: Uint8Array, expectedBytes: number, md5?: string): Promise<void> {
  if (bytes.length !== expectedBytes) {
    throw new ModelFileError(
      file,
      bytes.length < expectedBytes
        ? `truncated: ${bytes.length} of ${expectedBytes} bytes`
        : `too large: ${bytes.length} bytes, expected ${expectedBytes}`,
    );
  }
  if (md5) {
    const actual = await md5Hex(bytes);
    if (actual !== md5.toLowerCase()) throw new ModelFileError(file, `md5 mismatch: got ${actual}, expected ${md5}`);
  }
}

/** HTML where JSON was expected (a login page, a proxy error, a wrong URL). */
export function rejectHtml(file: string, text: string): void {
  const head = text.trimStart().slice(0, 64).toLowerCase();
  if (head.startsWith('<!doctype') || head.startsWith('<html') || head.startsWith('<')) {
    throw new ModelFileError(file, `expected JSON but got HTML ("${text.trimStart().slice(0, 40)}...")`);
  }
}

/** The subset of the Cache API we use (so tests can pass a fake). */
export interface CacheLike {
  match(request: string): Promise<Response | undefined>;
  put(request: string, response: Response): Promise<void>;
  delete(request: string): Promise<boolean>;
}
export interface CacheStorageLike {
  open(name: string): Promise<CacheLike>;
}

export interface HttpSourceOptions {
  /** Defaults to `globalThis.fetch`. */
  fetch?: typeof fetch;
  /** Defaults to `globalThis.caches` when present; `null` disables caching. */
  caches?: CacheStorageLike | null;
  /** Cache store name; WebLLM's is `webllm/model`. */
  cacheName?: string;
  /** Attempts per file (the first try included). */
  maxAttempts?: number;
  /** Delay before retry n (ms); tests use 0. */
  retryDelayMs?: (attempt: number) => number;
}

export const WEBLLM_CACHE_NAME = 'webllm/model';

/** The browser's storage is full: the model cannot be kept. Says what to do; never swallowed. */
export class StorageFullError extends Error {
  constructor(url: string, cause: unknown) {
    super(
      `Not enough storage to keep the model (${url} could not be saved: ${(cause as Error)?.message ?? String(cause)}). ` +
        'Free disk space, or delete models you do not use in Settings, then try again.',
    );
    this.name = 'StorageFullError';
  }
}

/** Stores a download in the model cache; a full disk is an error the user sees, anything else only costs a re-download. */
async function keep(cache: CacheLike | null | undefined, url: string, response: Response): Promise<void> {
  if (!cache) return;
  try {
    await cache.put(url, response);
  } catch (e) {
    if (isQuotaError(e)) throw new StorageFullError(url, e);
  }
}

export class HttpSource implements WeightSource {
  readonly location: string;
  private readonly fetchFn: typeof fetch;
  private readonly cacheStorage: CacheStorageLike | null;
  private readonly cacheName: string;
  private readonly maxAttempts: number;
  private readonly retryDelayMs: (attempt: number) => number;
  private cachePromise: Promise<CacheLike | null> | undefined;
  /** Range requests made (for tests and diagnostics). */
  readonly rangeRequests: { url: string; from: number }[] = [];

  constructor(baseUrl: string, opts: HttpSourceOptions = {}) {
    if (!/^https?:\/\//.test(baseUrl)) throw new Error(`HttpSource: not an http(s) URL: ${baseUrl}`);
    this.location = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
    this.fetchFn = opts.fetch ?? globalThis.fetch.bind(globalThis);
    const globalCaches = (globalThis as { caches?: CacheStorageLike }).caches;
    this.cacheStorage = opts.caches === undefined ? (globalCaches ?? null) : opts.caches;
    this.cacheName = opts.cacheName ?? WEBLLM_CACHE_NAME;
    this.maxAttempts = opts.maxAttempts ?? 5;
    this.retryDelayMs = opts.retryDelayMs ?? ((n) => Math.min(8000, 500 * 2 ** n));
  }

  url(name: string): string {
    return new URL(name, this.location).href;
  }

  private cache(): Promise<CacheLike | null> {
    if (!this.cacheStorage) return Promise.resolve(null);
    this.cachePromise ??= this.cacheStorage.open(this.cacheName).catch(() => null);
    return this.cachePromise;
  }

  async readText(name: string): Promise<string> {
    const url = this.url(name);
    const cache = await this.cache();
    const hit = await cache?.match(url);
    if (hit) {
      const text = await hit.text();
      rejectHtml(url, text);
      return text;
    }
    const response = await this.fetchOk(url, undefined);
    const type = response.headers.get('content-type') ?? '';
    const text = await response.text();
    if (type.includes('text/html')) throw new ModelFileError(url, `expected JSON but got HTML (content-type ${type})`);
    rejectHtml(url, text);
    await keep(cache, url, new Response(text, { headers: { 'content-type': 'application/json' } }));
    return text;
  }

  async readBytes(name: string, opts: ReadBytesOptions): Promise<Uint8Array> {
    const url = this.url(name);
    const cache = await this.cache();
    const hit = await cache?.match(url);
    if (hit) {
      const bytes = new Uint8Array(await hit.arrayBuffer());
      try {
        await verifyBytes(url, bytes, opts.expectedBytes, opts.md5);
        opts.onProgress?.(bytes.length, opts.expectedBytes, true);
        return bytes;
      } catch {
        // A stale or corrupt cache entry: drop it and download again.
        await cache?.delete(url);
      }
    }
    const bytes = await this.download(url, opts);
    await verifyBytes(url, bytes, opts.expectedBytes, opts.md5);
    await keep(cache, url, new Response(bytes as Uint8Array<ArrayBuffer>));
    return bytes;
  }

  /** Streams `url` into one buffer; after a dropped connection, asks for the rest with `Range: bytes=N-`. */
  private async download(url: string, opts: ReadBytesOptions): Promise<Uint8Array> {
    const total = opts.expectedBytes;
    // One spare byte so that a server sending more than promised is noticed rather than silently cut.
    let buffer = new Uint8Array(total + 1);
    let received = 0;
    let lastError: unknown;
    for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
      if (opts.signal?.aborted) throw opts.signal.reason ?? new Error('aborted');
      if (attempt > 0) await sleep(this.retryDelayMs(attempt - 1));
      let response: Response;
      try {
        const headers: Record<string, string> = {};
        if (received > 0) {
          headers.Range = `bytes=${received}-`;
          this.rangeRequests.push({ url, from: received });
        }
        response = await this.fetchOk(url, headers, opts.signal);
      } catch (e) {
        if (e instanceof ModelFileError && e.permanent) throw e;
        lastError = e;
        continue;
      }
      if (received > 0 && response.status !== 206) received = 0; // Range ignored: the full body follows.
      try {
        if (!response.body) throw new ModelFileError(url, 'empty response body');
        const reader = response.body.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          if (received + value.length > buffer.length) {
            // More than promised: keep reading into a larger buffer so the size error reports the truth.
            const bigger = new Uint8Array(Math.max(buffer.length * 2, received + value.length));
            bigger.set(buffer.subarray(0, received));
            buffer = bigger;
          }
          buffer.set(value, received);
          received += value.length;
          opts.onProgress?.(Math.min(received, total), total, false);
        }
        if (received >= total) return buffer.subarray(0, received);
        lastError = new ModelFileError(url, `truncated: connection ended after ${received} of ${total} bytes`);
      } catch (e) {
        lastError = e;
      }
    }
    if (lastError instanceof ModelFileError) throw lastError;
    throw new ModelFileError(
      url,
      `download failed after ${this.maxAttempts} attempts (${received} of ${total} bytes): ${String(lastError)}`,
    );
  }

  private async fetchOk(
    url: string,
    headers: Record<string, string> | undefined,
    signal?: AbortSignal,
  ): Promise<Response> {
    let response: Response;
    try {
      response = await this.fetchFn(url, { headers, signal });
    } catch (e) {
      throw new ModelFileError(url, `network error: ${(e as Error).message}`);
    }
    if (response.status === 404) throw new ModelFileError(url, 'HTTP 404 (not found)', true);
    if (!response.ok)
      throw new ModelFileError(url, `HTTP ${response.status} ${response.statusText}`, response.status < 500);
    return response;
  }
}

function sleep(ms: number): Promise<void> {
  return ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve();
}
