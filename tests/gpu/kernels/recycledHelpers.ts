// Shared helpers of the decode-attention / top-K / recycled GPU tests: seeded data, KV caches in both dtypes.
import type { GpuContext } from '../../../kernels/gpuContext';
import { readBuffer, storageBuffer } from '../../../kernels/gpuUtil';
import { f32ArrayToF16, roundToF16 } from '../../../kernels/half';
import type { KvCacheLayout } from '../../../kernels/types';

/** Small deterministic PRNG (mulberry32) so failures reproduce. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomArray(n: number, rand: () => number, amplitude = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (rand() * 2 - 1) * amplitude;
  return a;
}

/** The KV dtypes this adapter can run: f32 always, f16 with shader-f16. */
export function kvDtypes(ctx: GpuContext): ('f32' | 'f16')[] {
  return ctx.f16 ? ['f32', 'f16'] : ['f32'];
}

/** One decode-attention shape under test: heads, head size, KV length and cache capacity. */
export interface AttentionCase {
  numHeads: number;
  kvHeads: number;
  headDim: number;
  kvLen: number;
  capacity: number;
}

export interface TestKv {
  layout: KvCacheLayout;
  k: GPUBuffer;
  v: GPUBuffer;
  /** Host copies with the values the GPU sees (rounded to f16 for f16 caches). */
  kHost: Float32Array;
  vHost: Float32Array;
}

/** A KV cache [kvHeads][capacity][headDim] filled with random values at positions < filled (zeros after). */
export function makeKv(ctx: GpuContext, layout: KvCacheLayout, filled: number, seed: number, amp = 1): TestKv {
  const rand = rng(seed);
  const n = layout.kvHeads * layout.capacity * layout.headDim;
  const kHost = new Float32Array(n);
  const vHost = new Float32Array(n);
  for (let h = 0; h < layout.kvHeads; h++) {
    for (let p = 0; p < filled; p++) {
      const base = (h * layout.capacity + p) * layout.headDim;
      for (let d = 0; d < layout.headDim; d++) {
        kHost[base + d] = (rand() * 2 - 1) * amp;
        vHost[base + d] = rand() * 2 - 1;
      }
    }
  }
  if (layout.dtype === 'f16') {
    for (let i = 0; i < n; i++) {
      kHost[i] = roundToF16(kHost[i]);
      vHost[i] = roundToF16(vHost[i]);
    }
  }
  const upload = (a: Float32Array) => storageBuffer(ctx, layout.dtype === 'f16' ? f32ArrayToF16(a) : a);
  return { layout, k: upload(kHost), v: upload(vHost), kHost, vHost };
}

export async function readF32(ctx: GpuContext, buffer: GPUBuffer, count?: number): Promise<Float32Array> {
  return new Float32Array(await readBuffer(ctx, buffer, count === undefined ? buffer.size : count * 4));
}

export async function readU32(
  ctx: GpuContext,
  buffer: GPUBuffer | GPUBufferBinding,
  count?: number,
): Promise<Uint32Array> {
  const b = 'mapAsync' in buffer ? { buffer, offset: 0 } : { buffer: buffer.buffer, offset: buffer.offset ?? 0 };
  const bytes = count === undefined ? b.buffer.size - b.offset : count * 4;
  return new Uint32Array(await readBuffer(ctx, b.buffer, bytes, b.offset));
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
