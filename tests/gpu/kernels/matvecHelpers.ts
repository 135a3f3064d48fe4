// Test data for the matvec tests: seeded random weights of every dtype, uploaded as stored.
import type { GpuContext } from '../../../kernels/gpuContext';
import { storageBuffer } from '../../../kernels/gpuUtil';
import { f32ArrayToF16 } from '../../../kernels/half';
import type { HostLinear } from '../../../kernels/linearUpload';
import type { GpuLinear } from '../../../kernels/types';

export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomVector(n: number, rand: () => number): Float32Array {
  return Float32Array.from({ length: n }, () => rand() * 2 - 1);
}

export function randomHost(dtype: HostLinear['dtype'], rows: number, cols: number, seed: number): HostLinear {
  const rand = rng(seed);
  if (dtype === 'f32') return { dtype, rows, cols, data: randomVector(rows * cols, rand) };
  if (dtype === 'f16') return { dtype, rows, cols, data: f32ArrayToF16(randomVector(rows * cols, rand)) };
  const qweight = Uint32Array.from({ length: (rows * cols) / 8 }, () => Math.floor(rand() * 2 ** 32));
  const scales = Float32Array.from({ length: (rows * cols) / 32 }, () => 0.005 + rand() * 0.05);
  return { dtype, rows, cols, qweight, scales: dtype === 'q4f16' ? f32ArrayToF16(scales) : scales };
}

/** Uploads in the stored dtype (no widening): the kernel reads f16 with unpack2x16float on any adapter. */
export function rawUpload(ctx: GpuContext, h: HostLinear): GpuLinear {
  if (h.dtype === 'f32' || h.dtype === 'f16') {
    return { dtype: h.dtype, rows: h.rows, cols: h.cols, weight: storageBuffer(ctx, h.data) };
  }
  return {
    dtype: h.dtype,
    rows: h.rows,
    cols: h.cols,
    weight: storageBuffer(ctx, h.qweight),
    scales: storageBuffer(ctx, h.scales),
  };
}
