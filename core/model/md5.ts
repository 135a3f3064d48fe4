// md5 of a downloaded weight shard, checked against `md5sum` in tensor-cache.json. On hash-wasm (WASM): 1.5-2.6x the
// hand-written RFC 1321 code it replaced on a 100 MiB shard (docs/RELIABILITY.md, `npm run bench -- md5`).
import { createMD5, type IHasher } from 'hash-wasm';

let hasher: Promise<IHasher> | undefined;

/** Lowercase hex digest, as in tensor-cache.json. */
export async function md5Hex(data: Uint8Array): Promise<string> {
  hasher ??= createMD5();
  const h = await hasher;
  // init/update/digest run without an await in between, so concurrent callers never share a half-fed state.
  return h.init().update(data).digest('hex');
}
