import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { md5Hex } from '../../core/model/md5';
import { Md5 as HandMd5 } from '../../scripts/bench/handMd5';

const ascii = (s: string) => new TextEncoder().encode(s);

function bytes(n: number, seed: number): Uint8Array {
  const data = new Uint8Array(n);
  for (let i = 0; i < n; i++) data[i] = ((i + seed) * 2654435761) >>> 24;
  return data;
}

describe('md5 of model shards (hash-wasm)', () => {
  it('matches the RFC 1321 test suite', async () => {
    const vectors: [string, string][] = [
      ['', 'd41d8cd98f00b204e9800998ecf8427e'],
      ['a', '0cc175b9c0f1b6a831c399e269772661'],
      ['abc', '900150983cd24fb0d6963f7d28e17f72'],
      ['message digest', 'f96b697d7cb7938d525a2f31aaf161d0'],
      ['abcdefghijklmnopqrstuvwxyz', 'c3fcd3d76192e4007dfb496cca67e13b'],
      ['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789', 'd174ab98d277d9f5a5611c2c9f419d9f'],
      [
        '12345678901234567890123456789012345678901234567890123456789012345678901234567890',
        '57edf4a22be3c955ac49da2e2107b67a',
      ],
    ];
    for (const [input, digest] of vectors) expect(await md5Hex(ascii(input))).toBe(digest);
  });

  it('matches node:crypto on 1 MB + 3 bytes, also with calls in flight together (one shared hasher)', async () => {
    const inputs = [bytes(1024 * 1024 + 3, 0), bytes(777, 5), bytes(65, 9)];
    const expected = inputs.map((d) => createHash('md5').update(d).digest('hex'));
    expect(await Promise.all(inputs.map((d) => md5Hex(d)))).toEqual(expected);
  });
});

describe('the hand-written md5 kept as the bench baseline (scripts/bench/handMd5.ts)', () => {
  it('agrees with node:crypto whole and fed in odd-sized pieces, and refuses use after digest', () => {
    const data = bytes(200_003, 1);
    const expected = createHash('md5').update(data).digest('hex');
    expect(new HandMd5().update(data).digest()).toBe(expected);
    const h = new HandMd5();
    for (let off = 0, step = 1; off < data.length; off += step, step = ((step * 7 + 3) % 1000) + 1) {
      h.update(data.subarray(off, Math.min(data.length, off + step)));
    }
    expect(h.digest()).toBe(expected);
    expect(() => h.update(ascii('x'))).toThrow(/after digest/);
  });
});
