// Test-only helpers: seeded random weights in every stored dtype (upload them with kernels/linearUpload.ts) and
// error measurement against references.
import { f16BitsToF32, f32ArrayToF16, f32ToF16Bits } from '../../../kernels/half';
import type { ReferenceLinear } from '../../../kernels/matmul/matmul.reference';

/** Deterministic uniform [0, 1) generator (mulberry32), so failures reproduce. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomF32(n: number, rand: () => number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (rand() * 2 - 1) * scale;
  return out;
}

/** Random weights [rows][cols] in `dtype`, values in about [-scale, scale]. */
export function randomLinear(
  dtype: ReferenceLinear['dtype'],
  rows: number,
  cols: number,
  rand: () => number,
  scale = 1,
): ReferenceLinear {
  if (dtype === 'f32') return { dtype, rows, cols, data: randomF32(rows * cols, rand, scale) };
  if (dtype === 'f16') return { dtype, rows, cols, data: f32ArrayToF16(randomF32(rows * cols, rand, scale)) };
  const qweight = new Uint32Array((rows * cols) / 8);
  for (let i = 0; i < qweight.length; i++) qweight[i] = Math.floor(rand() * 4294967296) >>> 0;
  const groupScales = randomF32((rows * cols) / 32, rand, scale / 7);
  const scales = dtype === 'q4f16' ? f32ArrayToF16(groupScales) : groupScales;
  return { dtype, rows, cols, qweight, scales };
}

/** Max |a - b| / (absTol + relTol * scale_i) over elements; <= 1 means within tolerance. Returns the worst index. */
export function worstError(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  tolerance: (i: number) => number,
): { ratio: number; index: number; got: number; want: number } {
  if (got.length !== want.length) throw new Error(`length mismatch: got ${got.length}, want ${want.length}`);
  let worst = { ratio: 0, index: -1, got: 0, want: 0 };
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    const ratio = Number.isNaN(err) ? Number.POSITIVE_INFINITY : err / tolerance(i);
    if (ratio > worst.ratio) worst = { ratio, index: i, got: got[i], want: want[i] };
  }
  return worst;
}

/** Rounds to f16 and back, element by element (what an f16 buffer holds). */
export function throughF16(values: Float32Array): Float32Array {
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = f16BitsToF32(f32ToF16Bits(values[i]));
  return out;
}
