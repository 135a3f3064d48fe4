// The hand-written MD5 (RFC 1321) the loader used before hash-wasm, kept only as the md5 bench's baseline
// (scripts/bench/sections/md5.ts) so the comparison stays rerunnable.

const SHIFTS = [
  7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 4,
  11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
];

// K[i] = floor(abs(sin(i + 1)) * 2^32), as the RFC defines them.
const K = new Int32Array(64);
for (let i = 0; i < 64; i++) K[i] = Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) | 0;

export class Md5 {
  private a = 0x67452301;
  private b = 0xefcdab89 | 0;
  private c = 0x98badcfe | 0;
  private d = 0x10325476;
  private readonly block = new Uint8Array(64);
  private readonly words = new Int32Array(16);
  private blockLen = 0;
  private totalBytes = 0;
  private done = false;

  update(data: Uint8Array): this {
    if (this.done) throw new Error('Md5: update() after digest()');
    this.totalBytes += data.length;
    let i = 0;
    if (this.blockLen > 0) {
      const take = Math.min(64 - this.blockLen, data.length);
      this.block.set(data.subarray(0, take), this.blockLen);
      this.blockLen += take;
      i = take;
      if (this.blockLen < 64) return this;
      this.compress(this.block, 0);
      this.blockLen = 0;
    }
    for (; i + 64 <= data.length; i += 64) this.compress(data, i);
    if (i < data.length) {
      this.block.set(data.subarray(i), 0);
      this.blockLen = data.length - i;
    }
    return this;
  }

  /** Lowercase hex digest, as in tensor-cache.json. */
  digest(): string {
    if (this.done) throw new Error('Md5: digest() called twice');
    const bitLen = this.totalBytes * 8;
    const pad = new Uint8Array((this.blockLen < 56 ? 56 : 120) - this.blockLen + 8);
    pad[0] = 0x80;
    const view = new DataView(pad.buffer);
    // 64-bit little-endian length in bits.
    view.setUint32(pad.length - 8, bitLen >>> 0, true);
    view.setUint32(pad.length - 4, Math.floor(bitLen / 2 ** 32), true);
    this.update(pad);
    this.done = true;
    let hex = '';
    for (const word of [this.a, this.b, this.c, this.d]) {
      for (let byte = 0; byte < 4; byte++) hex += ((word >>> (8 * byte)) & 0xff).toString(16).padStart(2, '0');
    }
    return hex;
  }

  private compress(src: Uint8Array, offset: number): void {
    const w = this.words;
    for (let j = 0; j < 16; j++) {
      const p = offset + 4 * j;
      w[j] = src[p] | (src[p + 1] << 8) | (src[p + 2] << 16) | (src[p + 3] << 24);
    }
    let a = this.a;
    let b = this.b;
    let c = this.c;
    let d = this.d;
    for (let i = 0; i < 64; i++) {
      let f: number;
      let g: number;
      if (i < 16) {
        f = (b & c) | (~b & d);
        g = i;
      } else if (i < 32) {
        f = (d & b) | (~d & c);
        g = (5 * i + 1) & 15;
      } else if (i < 48) {
        f = b ^ c ^ d;
        g = (3 * i + 5) & 15;
      } else {
        f = c ^ (b | ~d);
        g = (7 * i) & 15;
      }
      const sum = (a + f + K[i] + w[g]) | 0;
      const s = SHIFTS[i];
      a = d;
      d = c;
      c = b;
      b = (b + ((sum << s) | (sum >>> (32 - s)))) | 0;
    }
    this.a = (this.a + a) | 0;
    this.b = (this.b + b) | 0;
    this.c = (this.c + c) | 0;
    this.d = (this.d + d) | 0;
  }
}

export function md5Hex(data: Uint8Array): string {
  return new Md5().update(data).digest();
}
