// md5 of a model shard (the check of every downloaded shard against tensor-cache.json's md5sum): the hand-written
// RFC 1321 code the loader used first vs hash-wasm (WASM), on one 100 MB shard, whole and fed in 1 MiB pieces as a
// download streams. Both digests must equal node:crypto's. CPU only (the GPU device the bench opens is not used).
//   npm run bench -- md5
import { createHash } from 'node:crypto';
import { loadavg } from 'node:os';
import { createMD5 } from 'hash-wasm';
import { Md5 as HandMd5 } from '../handMd5';
import type { BenchRow, BenchSection } from '../sections';

const SHARD_BYTES = 100 * 1024 * 1024;
const PIECE = 1 << 20;

function shard(): Uint8Array {
  // Deterministic, incompressible-looking bytes (xorshift32).
  const words = new Uint32Array(SHARD_BYTES / 4);
  let x = 0x9e3779b9;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  return new Uint8Array(words.buffer);
}

async function timed(samples: number, run: () => Promise<string> | string): Promise<{ ms: number; digest: string }> {
  const times: number[] = [];
  let digest = '';
  for (let i = 0; i < samples; i++) {
    const t0 = performance.now();
    digest = await run();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { ms: times[Math.floor(times.length / 2)], digest };
}

const section: BenchSection = {
  name: 'md5',
  description: 'md5 of a 100 MB model shard: hand-written vs hash-wasm (both checked against node:crypto)',
  order: 90,
  async run(ctx) {
    const data = shard();
    const expected = createHash('md5').update(data).digest('hex');
    const samples = Math.min(ctx.samples, 3);
    const wasm = await createMD5();
    const impls: [string, () => Promise<string> | string][] = [
      ['hand-written, whole', () => new HandMd5().update(data).digest()],
      [
        'hand-written, 1 MiB pieces',
        () => {
          const h = new HandMd5();
          for (let off = 0; off < data.length; off += PIECE) h.update(data.subarray(off, off + PIECE));
          return h.digest();
        },
      ],
      ['hash-wasm, whole', () => wasm.init().update(data).digest('hex')],
      [
        'hash-wasm, 1 MiB pieces',
        () => {
          wasm.init();
          for (let off = 0; off < data.length; off += PIECE) wasm.update(data.subarray(off, off + PIECE));
          return wasm.digest('hex');
        },
      ],
      ['node:crypto (reference)', () => createHash('md5').update(data).digest('hex')],
    ];
    const rows: BenchRow[] = [];
    const mbps: Record<string, number> = {};
    for (const [impl, run] of impls) {
      const load1 = loadavg()[0];
      const { ms, digest } = await timed(samples, run);
      if (digest !== expected) throw new Error(`md5 bench: ${impl} gave ${digest}, node:crypto ${expected}`);
      mbps[impl] = SHARD_BYTES / 1e6 / (ms / 1000);
      rows.push({ impl, MB: SHARD_BYTES / 1e6, ms, MBps: mbps[impl], agrees: true, load1 });
      ctx.log(`${impl}: ${mbps[impl].toFixed(0)} MB/s`);
    }
    ctx.summary.md5_hashwasm_vs_hand = mbps['hash-wasm, whole'] / mbps['hand-written, whole'];
    return rows;
  },
};
export default section;
