import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Md5, md5Hex } from '../../core/model/md5';

const ascii = (s: string) => new TextEncoder().encode(s);

describe('md5', () => {
  it('matches the RFC 1321 test suite', () => {
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
    for (const [input, digest] of vectors) expect(md5Hex(ascii(input))).toBe(digest);
  });

  it('gives the same digest fed in odd-sized pieces, and matches node:crypto on 1 MB + 3 bytes', () => {
    const data = new Uint8Array(1024 * 1024 + 3);
    for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
    const expected = createHash('md5').update(data).digest('hex');
    expect(md5Hex(data)).toBe(expected);
    const h = new Md5();
    for (let off = 0, step = 1; off < data.length; off += step, step = ((step * 7 + 3) % 1000) + 1) {
      h.update(data.subarray(off, Math.min(data.length, off + step)));
    }
    expect(h.digest()).toBe(expected);
  });

  it('rejects use after digest', () => {
    const h = new Md5();
    h.digest();
    expect(() => h.update(ascii('x'))).toThrow(/after digest/);
  });
});
