// HttpSource against a local node:http server: resume with Range after a dropped connection, size/md5 checks,
// 404 and HTML errors, and sharing WebLLM's Cache API store (a fake `caches`).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadModel } from '../../core/model/load';
import {
  type CacheLike,
  type CacheStorageLike,
  HttpSource,
  ModelFileError,
  StorageFullError,
} from '../../core/model/sources';
import { makeFixtureModel } from '../../core/testing/fixtureModel';
import { dequantizeLinear } from '../../kernels/dequantize';

const fixture = makeFixtureModel({ quantization: 'q4f16_1', seed: 11 });
const files = new Map(fixture.files);
files.set('html/mlc-chat-config.json', new TextEncoder().encode('<!doctype html><title>Login</title>'));

interface RequestLog {
  path: string;
  range?: string;
}
let requests: RequestLog[] = [];
/** path -> how many bytes to send before destroying the socket, for the next request(s) of that path. */
let dropPlan = new Map<string, number[]>();
/** path -> serve only this many bytes, with a matching Content-Length (a server-side truncated file). */
let truncatePlan = new Map<string, number>();
let server: Server;
let base: string;

function handle(req: IncomingMessage, res: ServerResponse) {
  const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname.slice(1));
  requests.push({ path, range: req.headers.range });
  let data = files.get(path);
  if (!data) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('Entry not found');
    return;
  }
  const cut = truncatePlan.get(path);
  if (cut !== undefined) data = data.subarray(0, cut);
  let start = 0;
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  if (m) start = Number(m[1]);
  const body = data.subarray(start);
  const type = path.endsWith('.json')
    ? path.startsWith('html/')
      ? 'text/html'
      : 'application/json'
    : 'application/octet-stream';
  const headers: Record<string, string | number> = { 'content-type': type, 'content-length': body.length };
  if (m) headers['content-range'] = `bytes ${start}-${data.length - 1}/${data.length}`;
  res.writeHead(m ? 206 : 200, headers);
  const drops = dropPlan.get(path);
  const dropAfter = drops?.shift();
  if (dropAfter !== undefined) {
    res.write(body.subarray(0, dropAfter), () => setTimeout(() => res.socket?.destroy(), 20));
    return;
  }
  res.end(body);
}

class FakeCache implements CacheLike {
  readonly entries = new Map<string, Uint8Array>();
  async match(url: string) {
    const e = this.entries.get(url);
    return e ? new Response(e.slice()) : undefined;
  }
  async put(url: string, response: Response) {
    this.entries.set(url, new Uint8Array(await response.arrayBuffer()));
  }
  async delete(url: string) {
    return this.entries.delete(url);
  }
}
class FakeCaches implements CacheStorageLike {
  readonly stores = new Map<string, FakeCache>();
  async open(name: string) {
    let c = this.stores.get(name);
    if (!c) {
      c = new FakeCache();
      this.stores.set(name, c);
    }
    return c;
  }
}

beforeAll(async () => {
  server = createServer(handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));
beforeEach(() => {
  requests = [];
  dropPlan = new Map();
  truncatePlan = new Map();
});

const source = (opts: { caches?: CacheStorageLike | null; maxAttempts?: number } = {}) =>
  new HttpSource(base, { caches: opts.caches ?? null, maxAttempts: opts.maxAttempts ?? 4, retryDelayMs: () => 0 });

describe('HttpSource', () => {
  it('resumes a shard dropped mid-transfer with a Range request, and the weights are intact', async () => {
    dropPlan.set('params_shard_1.bin', [5000, 9000]);
    const src = source();
    const progress: number[] = [];
    const loaded = await loadModel(src, { onProgress: (p) => progress.push(p.loadedBytes) });
    const shardRequests = requests.filter((r) => r.path === 'params_shard_1.bin');
    expect(shardRequests.map((r) => r.range)).toEqual([undefined, 'bytes=5000-', 'bytes=14000-']);
    expect(src.rangeRequests.map((r) => r.from)).toEqual([5000, 14000]);
    const total = loaded.manifest.shards.reduce((a, s) => a + s.nbytes, 0);
    expect(progress.at(-1)).toBe(total);
    // md5 was verified on the reassembled shard; the weights also match what the generator wrote.
    const down = loaded.weights.layers[1].down;
    expect(down.dtype).toBe('q4f16');
    expect(Array.from(dequantizeLinear(down))).toEqual(
      Array.from(fixture.tensors.get('model.layers.1.mlp.down_proj.weight') ?? []),
    );
  });

  it('a shard that stays short after every retry is reported as truncated', async () => {
    truncatePlan.set('params_shard_0.bin', 777);
    const err = await loadModel(source({ maxAttempts: 3 })).catch((e) => e);
    expect(err).toBeInstanceOf(ModelFileError);
    expect(err.message).toMatch(/params_shard_0\.bin: truncated: connection ended after 777 of \d+ bytes/);
  });

  it('HTTP 404 names the URL and is not retried', async () => {
    const err = await source()
      .readText('no-such-file.json')
      .catch((e) => e);
    expect(err.message).toBe(`${base}no-such-file.json: HTTP 404 (not found)`);
    expect(requests.filter((r) => r.path === 'no-such-file.json')).toHaveLength(1);
    const err2 = await source()
      .readBytes('params_shard_9.bin', { expectedBytes: 10 })
      .catch((e) => e);
    expect(err2.message).toMatch(/params_shard_9\.bin: HTTP 404/);
    expect(requests.filter((r) => r.path === 'params_shard_9.bin')).toHaveLength(1);
  });

  it('HTML instead of JSON is a clear error', async () => {
    const err = await loadModel(new HttpSource(`${base}html/`, { caches: null })).catch((e) => e);
    expect(err.message).toMatch(/html\/mlc-chat-config\.json: expected JSON but got HTML/);
  });

  it('wrong md5 is rejected', async () => {
    const shard = files.get('params_shard_0.bin') as Uint8Array;
    const err = await source()
      .readBytes('params_shard_0.bin', { expectedBytes: shard.length, md5: '0'.repeat(32) })
      .catch((e) => e);
    expect(err.message).toMatch(/params_shard_0\.bin: md5 mismatch/);
  });

  it('stores downloads in the webllm/model cache keyed by URL, then loads without the network', async () => {
    const caches = new FakeCaches();
    await loadModel(source({ caches }));
    const store = caches.stores.get('webllm/model');
    expect(store).toBeDefined();
    expect([...(store as FakeCache).entries.keys()].sort()).toEqual(
      ['mlc-chat-config.json', 'params_shard_0.bin', 'params_shard_1.bin', 'tensor-cache.json', 'tokenizer.json'].map(
        (f) => base + f,
      ),
    );
    requests = [];
    const phases = new Set<string>();
    await loadModel(source({ caches }), { onProgress: (p) => phases.add(p.phase) });
    expect(requests).toEqual([]);
    expect([...phases]).toEqual(['cache']);
  });

  it('a full disk while keeping the model is a StorageFullError that says what to do (never swallowed)', async () => {
    class FullCaches extends FakeCaches {
      override async open(name: string) {
        const c = await super.open(name);
        c.put = async () => {
          throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
        };
        return c;
      }
    }
    await expect(loadModel(source({ caches: new FullCaches() }))).rejects.toThrow(StorageFullError);
    await expect(loadModel(source({ caches: new FullCaches() }))).rejects.toThrow(/Free disk space.*delete models/);
  });

  it('reuses a cache entry WebLLM wrote, and replaces a corrupt one', async () => {
    const caches = new FakeCaches();
    const store = await caches.open('webllm/model');
    const shard0 = files.get('params_shard_0.bin') as Uint8Array;
    await store.put(`${base}params_shard_0.bin`, new Response(shard0.slice()));
    const corrupt = (files.get('params_shard_1.bin') as Uint8Array).slice();
    corrupt[3] ^= 1;
    await store.put(`${base}params_shard_1.bin`, new Response(corrupt));
    await loadModel(source({ caches }));
    const fetched = requests.map((r) => r.path).filter((p) => p.endsWith('.bin'));
    expect(fetched).toEqual(['params_shard_1.bin']);
    const fixed = (store as FakeCache).entries.get(`${base}params_shard_1.bin`) as Uint8Array;
    expect(Buffer.from(fixed).equals(Buffer.from(files.get('params_shard_1.bin') as Uint8Array))).toBe(true);
  });
});
