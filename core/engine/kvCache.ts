// The KV cache: one K and one V buffer per layer, [kvHeads][capacity][headDim], f16 when the device has shader-f16.
// Capacity comes from the requested context window and the device's limits; a window that cannot fit is refused
// with the largest one that would.

import type { GpuContext } from '../../kernels/gpuContext';
import { writeBuffer } from '../../kernels/gpuUtil';
import type { KvCacheLayout, LayerKv } from '../../kernels/types';
import type { ModelConfig } from '../model/config';

export class ContextWindowError extends Error {
  constructor(
    message: string,
    readonly largestWindow: number,
  ) {
    super(message);
    this.name = 'ContextWindowError';
  }
}

export interface KvCache {
  layout: KvCacheLayout;
  layers: LayerKv[];
  /** Bytes of all K and V buffers together. */
  bytes: number;
  destroy(): void;
}

/** f16 when the device has shader-f16 and the model computes in f16 (q4f16_1, q0f16); an f32 model (q4f32_1, q0f32)
 * keeps an f32 cache, so its results do not depend on the adapter. */
export function kvDtypeFor(ctx: GpuContext, config: Pick<ModelConfig, 'quantization'>): 'f16' | 'f32' {
  return ctx.f16 && /f16/.test(config.quantization) ? 'f16' : 'f32';
}

export function kvBytesPerToken(config: ModelConfig, dtype: 'f16' | 'f32'): number {
  return config.numLayers * 2 * config.numKvHeads * config.headDim * (dtype === 'f16' ? 2 : 4);
}

/** The largest capacity one per-layer buffer allows on this device (a multiple of 16 positions). */
export function largestCapacity(ctx: GpuContext, config: ModelConfig, dtype: 'f16' | 'f32'): number {
  const perPosition = config.numKvHeads * config.headDim * (dtype === 'f16' ? 2 : 4);
  const limit = Math.min(ctx.device.limits.maxStorageBufferBindingSize, ctx.device.limits.maxBufferSize);
  return Math.floor(limit / perPosition / 16) * 16;
}

/** Allocates the cache. Reports out-of-memory as a ContextWindowError with a smaller window that should fit. */
export async function createKvCache(ctx: GpuContext, config: ModelConfig, contextWindow: number): Promise<KvCache> {
  if (!Number.isInteger(contextWindow) || contextWindow < 2) {
    throw new ContextWindowError(`The context window must be an integer of at least 2 (got ${contextWindow}).`, 0);
  }
  const dtype = kvDtypeFor(ctx, config);
  const largest = largestCapacity(ctx, config, dtype);
  if (contextWindow > largest) {
    throw new ContextWindowError(
      `A context window of ${contextWindow} tokens needs KV buffers larger than this GPU allows per binding ` +
        `(${ctx.device.limits.maxStorageBufferBindingSize} bytes); the largest window that fits is ${largest}.`,
      largest,
    );
  }
  const layout: KvCacheLayout = { dtype, kvHeads: config.numKvHeads, headDim: config.headDim, capacity: contextWindow };
  const size = config.numKvHeads * contextWindow * config.headDim * (dtype === 'f16' ? 2 : 4);
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  ctx.device.pushErrorScope('out-of-memory');
  const layers: LayerKv[] = [];
  for (let l = 0; l < config.numLayers; l++) {
    layers.push({
      k: ctx.device.createBuffer({ size, usage, label: `kv.k.${l}` }),
      v: ctx.device.createBuffer({ size, usage, label: `kv.v.${l}` }),
    });
  }
  const error = await ctx.device.popErrorScope();
  const destroy = () => {
    for (const kv of layers) {
      kv.k.destroy();
      kv.v.destroy();
    }
  };
  if (error) {
    destroy();
    const total = size * 2 * config.numLayers;
    const fits = Math.floor((contextWindow / 2 / 16) * 16);
    throw new ContextWindowError(
      `The GPU ran out of memory allocating the KV cache for ${contextWindow} tokens ` +
        `(${(total / 2 ** 20).toFixed(0)} MiB). Try a context window of ${fits} or less.`,
      fits,
    );
  }
  return { layout, layers, bytes: size * 2 * config.numLayers, destroy };
}

/** Positions [0, length) of one layer as [kvHeads][length][headDim] bytes: one copy per head, one readback. The copies
 * are queued at once, so later work on the queue cannot change what is read. */
export async function readKvLayer(
  ctx: GpuContext,
  kv: KvCache,
  layer: number,
  length: number,
): Promise<{ k: Uint8Array; v: Uint8Array }> {
  const { kvHeads, headDim, capacity, dtype } = kv.layout;
  const bytes = dtype === 'f16' ? 2 : 4;
  const slab = length * headDim * bytes;
  const size = Math.ceil((2 * kvHeads * slab) / 4) * 4;
  const staging = ctx.device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = ctx.device.createCommandEncoder({ label: 'kv readback' });
  const { k, v } = kv.layers[layer];
  [k, v].forEach((buf, which) => {
    for (let h = 0; h < kvHeads; h++) {
      enc.copyBufferToBuffer(buf, h * capacity * headDim * bytes, staging, (which * kvHeads + h) * slab, slab);
    }
  });
  ctx.device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const all = new Uint8Array(staging.getMappedRange().slice(0));
  staging.unmap();
  staging.destroy();
  return { k: all.slice(0, kvHeads * slab), v: all.slice(kvHeads * slab, 2 * kvHeads * slab) };
}

/** Writes what readKvLayer returned back into positions [0, length). */
export function writeKvLayer(
  ctx: GpuContext,
  kv: KvCache,
  layer: number,
  length: number,
  k: Uint8Array,
  v: Uint8Array,
): void {
  const { kvHeads, headDim, capacity, dtype } = kv.layout;
  const bytes = dtype === 'f16' ? 2 : 4;
  const slab = length * headDim * bytes;
  if (k.byteLength !== kvHeads * slab || v.byteLength !== kvHeads * slab) {
    throw new Error(`KV layer ${layer}: expected ${kvHeads * slab} bytes for ${length} positions`);
  }
  if (length > capacity) throw new Error(`KV layer ${layer}: ${length} positions exceed the capacity ${capacity}`);
  const dst = kv.layers[layer];
  for (let h = 0; h < kvHeads; h++) {
    writeBuffer(ctx, dst.k, k.subarray(h * slab, (h + 1) * slab), h * capacity * headDim * bytes);
    writeBuffer(ctx, dst.v, v.subarray(h * slab, (h + 1) * slab), h * capacity * headDim * bytes);
  }
}
