// A 1-D weight on the GPU (norm weights, biases): f32, or f16 when the device has shader-f16.
import type { GpuContext } from '../gpuContext';
import { storageBuffer } from '../gpuUtil';
import { f16ArrayToF32 } from '../half';

export interface GpuVector {
  dtype: 'f32' | 'f16';
  length: number;
  buffer: GPUBuffer;
}

/** Host copy of a 1-D weight: f32 values, or f16 bits as stored in the weight file. */
export type HostVector = { dtype: 'f32'; data: Float32Array } | { dtype: 'f16'; data: Uint16Array };

/** Uploads a vector in its stored dtype; f16 is widened to f32 when the device has no shader-f16. */
export function uploadVector(ctx: GpuContext, host: HostVector, label?: string): GpuVector {
  const length = host.data.length;
  if (host.dtype === 'f16' && ctx.f16) return { dtype: 'f16', length, buffer: storageBuffer(ctx, host.data, label) };
  const values = host.dtype === 'f16' ? f16ArrayToF32(host.data) : host.data;
  return { dtype: 'f32', length, buffer: storageBuffer(ctx, values, label) };
}

/** WGSL element type of a vector, refusing f16 on a device that cannot read it. */
export function vectorElementType(ctx: GpuContext, v: GpuVector, what: string): 'f32' | 'f16' {
  if (v.dtype === 'f16' && !ctx.f16) {
    throw new Error(`${what}: the vector is f16 but the device has no shader-f16 (upload it with uploadVector).`);
  }
  return v.dtype;
}

/** Largest workgroup count per dispatch dimension on this device. */
export function maxWorkgroupsPerDim(ctx: GpuContext): number {
  return ctx.device.limits.maxComputeWorkgroupsPerDimension;
}

export function assertPositiveInt(value: number, what: string): void {
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${what} must be a positive integer, got ${value}.`);
}
