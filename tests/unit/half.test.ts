// kernels/half.ts against bit patterns taken from the IEEE 754 definitions (binary16: 1 sign, 5 exponent bits with
// bias 15, 10 mantissa bits; bfloat16: the top 16 bits of a binary32), not from the code.
import { describe, expect, test } from 'vitest';
import {
  bf16ArrayToF32,
  f16ArrayToF32,
  f16BitsToF32,
  f32ArrayToBf16,
  f32ArrayToF16,
  f32ToF16Bits,
  roundToF16,
} from '../../kernels/half';

describe('float32 -> binary16', () => {
  test.each([
    [0, 0x0000],
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [65504, 0x7bff], // largest finite half
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [1023 * 2 ** -24, 0x03ff], // largest subnormal
    [Number.POSITIVE_INFINITY, 0x7c00],
    [Number.NEGATIVE_INFINITY, 0xfc00],
  ])('%d -> bits %i', (value, bits) => {
    expect(f32ToF16Bits(value)).toBe(bits);
  });

  test('negative zero keeps its sign', () => {
    expect(f32ToF16Bits(-0)).toBe(0x8000);
  });

  test('NaN stays NaN (all-ones exponent, non-zero mantissa)', () => {
    const bits = f32ToF16Bits(Number.NaN);
    expect(bits & 0x7c00).toBe(0x7c00);
    expect(bits & 0x03ff).not.toBe(0);
  });

  test('round to nearest, ties to even, in the normal range', () => {
    // Spacing at 1.0 is 2^-10; 1 + 2^-11 is halfway between 0x3c00 (even) and 0x3c01.
    expect(f32ToF16Bits(1 + 2 ** -11)).toBe(0x3c00);
    // 1 + 3 * 2^-11 is halfway between 0x3c01 and 0x3c02 (even).
    expect(f32ToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    // Just above halfway rounds up.
    expect(f32ToF16Bits(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01);
    // Just below halfway rounds down.
    expect(f32ToF16Bits(1 + 2 ** -11 - 2 ** -20)).toBe(0x3c00);
  });

  test('rounding in the subnormal range', () => {
    expect(f32ToF16Bits(2 ** -25)).toBe(0x0000); // half of the smallest subnormal: tie to even (0)
    expect(f32ToF16Bits(3 * 2 ** -25)).toBe(0x0002); // 1.5 subnormal steps: tie to even (2)
    expect(f32ToF16Bits(1.5 * 2 ** -25)).toBe(0x0001); // 0.75 of a step rounds up
    expect(f32ToF16Bits(2 ** -26)).toBe(0x0000);
  });

  test('overflow: 65519 rounds to 65504, 65520 (the midpoint to 2^16) rounds to infinity', () => {
    expect(f32ToF16Bits(65519)).toBe(0x7bff);
    expect(f32ToF16Bits(65520)).toBe(0x7c00);
    expect(f32ToF16Bits(1e6)).toBe(0x7c00);
    expect(f32ToF16Bits(-1e6)).toBe(0xfc00);
  });

  test('0.1 rounds to 0x2e66', () => {
    // 0.1 = 1.6 * 2^-4: exponent 11, mantissa round(0.6 * 1024) = 614 = 0x266.
    expect(f32ToF16Bits(0.1)).toBe(0x2e66);
    expect(roundToF16(0.1)).toBe(0.0999755859375);
  });
});

describe('binary16 -> float32', () => {
  test.each([
    [0x3c00, 1],
    [0xc000, -2],
    [0x7bff, 65504],
    [0x0400, 2 ** -14],
    [0x0001, 2 ** -24],
    [0x03ff, 1023 * 2 ** -24],
    [0x3555, 0.333251953125], // 2^-2 * (1 + 341/1024)
    [0x7c00, Number.POSITIVE_INFINITY],
    [0xfc00, Number.NEGATIVE_INFINITY],
  ])('bits %i -> %d', (bits, value) => {
    expect(f16BitsToF32(bits)).toBe(value);
  });

  test('signed zero and NaN', () => {
    expect(Object.is(f16BitsToF32(0x8000), -0)).toBe(true);
    expect(f16BitsToF32(0x7e00)).toBeNaN();
    expect(f16BitsToF32(0x7c01)).toBeNaN();
  });

  test('every non-NaN half survives a round trip through float32', () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i).filter((h) => (h & 0x7c00) !== 0x7c00 || !(h & 0x3ff));
    const back = f32ArrayToF16(f16ArrayToF32(all));
    let mismatches = 0;
    for (let i = 0; i < all.length; i++) if (back[i] !== all[i]) mismatches++;
    expect(all.length).toBe(65536 - 2 * 1023);
    expect(mismatches).toBe(0);
  });
});

describe('bfloat16', () => {
  test('known values', () => {
    expect(Array.from(f32ArrayToBf16([1, -2, 3, 0, Number.POSITIVE_INFINITY]))).toEqual([
      0x3f80, 0xc000, 0x4040, 0x0000, 0x7f80,
    ]);
    expect(Array.from(bf16ArrayToF32(new Uint16Array([0x3f80, 0xc000, 0x4040, 0x7f7f])))).toEqual([
      1,
      -2,
      3,
      (2 - 2 ** -7) * 2 ** 127, // largest finite bfloat16
    ]);
  });

  test('round to nearest, ties to even', () => {
    // Spacing at 1.0 is 2^-7; 1 + 2^-8 is halfway between 0x3f80 (even) and 0x3f81.
    expect(f32ArrayToBf16([1 + 2 ** -8])[0]).toBe(0x3f80);
    // 1 + 3 * 2^-8 is halfway between 0x3f81 and 0x3f82 (even).
    expect(f32ArrayToBf16([1 + 3 * 2 ** -8])[0]).toBe(0x3f82);
    expect(f32ArrayToBf16([1 + 2 ** -8 + 2 ** -16])[0]).toBe(0x3f81);
  });

  test('NaN stays NaN', () => {
    expect(bf16ArrayToF32(f32ArrayToBf16([Number.NaN]))[0]).toBeNaN();
  });
});
