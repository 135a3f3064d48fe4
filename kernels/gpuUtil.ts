// Small host helpers shared by kernel wrappers and tests: buffers in and out, pipelines built once.
import type { GpuContext } from './gpuContext';

export const STORAGE = 0x80 | 0x8 | 0x4; // STORAGE | COPY_DST | COPY_SRC (GPUBufferUsage values; avoids globals)
const MAP_READ = 0x1;
const COPY_DST = 0x8;
/** GPUBufferUsage.UNIFORM (no globals: kernels run where GPUBufferUsage is absent). */
export const UNIFORM = 0x40;
/** GPUTextureUsage values. */
export const TEXTURE_BINDING = 0x04;
export const STORAGE_BINDING = 0x08;

/** A storage buffer, optionally filled. Sizes are rounded up to 4 bytes (WebGPU's copy granularity). It may also be
 * bound as a uniform: the CPU-adapter matvec reads its activations that way (kernels/matvec/matvecRows.wgsl.ts). */
export function storageBuffer(ctx: GpuContext, sizeOrData: number | ArrayBufferView, label?: string): GPUBuffer {
  const size = typeof sizeOrData === 'number' ? sizeOrData : sizeOrData.byteLength;
  const buffer = ctx.device.createBuffer({ size: Math.max(4, align4(size)), usage: STORAGE | UNIFORM, label });
  if (typeof sizeOrData !== 'number') writeBuffer(ctx, buffer, sizeOrData);
  return buffer;
}

export function uniformBuffer(ctx: GpuContext, data: ArrayBufferView, label?: string): GPUBuffer {
  const buffer = ctx.device.createBuffer({
    size: Math.max(16, align(data.byteLength, 16)),
    usage: UNIFORM | COPY_DST,
    label,
  });
  writeBuffer(ctx, buffer, data);
  return buffer;
}

export function writeBuffer(ctx: GpuContext, buffer: GPUBuffer, data: ArrayBufferView, offset = 0): void {
  const bytes = new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
  if (bytes.byteLength % 4 === 0) {
    ctx.device.queue.writeBuffer(buffer, offset, bytes);
  } else {
    const padded = new Uint8Array(align4(bytes.byteLength));
    padded.set(bytes);
    ctx.device.queue.writeBuffer(buffer, offset, padded);
  }
}

/** Copies a buffer (or a range of it) back to the CPU. Tests and the sampler's one id per step use this. */
export async function readBuffer(
  ctx: GpuContext,
  buffer: GPUBuffer,
  byteLength = buffer.size,
  offset = 0,
): Promise<ArrayBuffer> {
  const size = align4(byteLength);
  const staging = ctx.device.createBuffer({ size, usage: MAP_READ | COPY_DST });
  const enc = ctx.device.createCommandEncoder();
  enc.copyBufferToBuffer(buffer, offset, staging, 0, size);
  ctx.device.queue.submit([enc.finish()]);
  await staging.mapAsync(MAP_READ);
  const out = staging.getMappedRange().slice(0, byteLength);
  staging.unmap();
  staging.destroy();
  return out;
}

const pipelineCache = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();

/** Compiles each distinct WGSL source once per device. */
export function computePipeline(ctx: GpuContext, code: string, label?: string): GPUComputePipeline {
  let cache = pipelineCache.get(ctx.device);
  if (!cache) {
    cache = new Map();
    pipelineCache.set(ctx.device, cache);
  }
  let pipeline = cache.get(code);
  if (!pipeline) {
    const module = ctx.device.createShaderModule({ code, label });
    pipeline = ctx.device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label });
    cache.set(code, pipeline);
  }
  return pipeline;
}

/** Binding i = resources[i]: a whole buffer, a range of one (a UniformSlot's binding, a per-layer state record), or
 * a texture view. */
export function bindGroup(
  ctx: GpuContext,
  pipeline: GPUComputePipeline,
  resources: (GPUBuffer | GPUBufferBinding | GPUTextureView)[],
  label?: string,
): GPUBindGroup {
  return ctx.device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: resources.map((r, binding) => ({ binding, resource: 'mapAsync' in r ? { buffer: r } : r })),
    label,
  });
}

/** Runs encode() in one compute pass and submits it. Convenient for tests; the engine batches many kernels. */
export function runPass(ctx: GpuContext, encode: (pass: GPUComputePassEncoder) => void): void {
  const enc = ctx.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  encode(pass);
  pass.end();
  ctx.device.queue.submit([enc.finish()]);
}

export function align4(n: number): number {
  return align(n, 4);
}

export function align(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

/** Splits a dispatch wider than the per-dimension limit into x*y workgroups. Kernels fold y back into an index. */
export function dispatch2d(count: number, maxPerDim = 65535): [number, number] {
  if (count <= maxPerDim) return [count, 1];
  const y = Math.ceil(count / maxPerDim);
  return [Math.ceil(count / y), y];
}
