// WGSL declarations and a per-element reader for a GpuLinear [rows][cols] of any stored dtype. Shared by the
// embedding lookup (one element per thread) and tests; the tiled matmul decodes whole q4 words itself.
import type { GpuContext } from '../gpuContext';
import type { GpuLinear } from '../types';

/** Checks that the device can read this weight and that its shape suits its dtype; returns a clear error otherwise. */
export function checkLinear(ctx: GpuContext, w: GpuLinear, what: string): void {
  if (!Number.isInteger(w.rows) || !Number.isInteger(w.cols) || w.rows <= 0 || w.cols <= 0) {
    throw new Error(`${what}: bad weight shape [${w.rows}][${w.cols}].`);
  }
  if ((w.dtype === 'f16' || w.dtype === 'q4f16') && !ctx.f16) {
    throw new Error(`${what}: weight dtype ${w.dtype} needs shader-f16; widen it at upload on this device.`);
  }
  if (w.dtype === 'q4f16' || w.dtype === 'q4f32') {
    if (w.cols % 32 !== 0) throw new Error(`${what}: q4 weight cols (${w.cols}) must be a multiple of 32.`);
    if (!w.scales) throw new Error(`${what}: q4 weight has no scales buffer.`);
  }
}

/** Buffers the shader binds for the weight, in binding order. */
export function linearBuffers(w: GpuLinear): GPUBuffer[] {
  return w.scales && (w.dtype === 'q4f16' || w.dtype === 'q4f32') ? [w.weight, w.scales] : [w.weight];
}

/** Declares the weight bindings starting at `firstBinding` and `fn loadWeight(row, col) -> f32`.
 * Returns the WGSL and the number of bindings used. */
export function weightReaderWgsl(dtype: GpuLinear['dtype'], cols: number, firstBinding: number): [string, number] {
  const b = firstBinding;
  switch (dtype) {
    case 'f32':
    case 'f16':
      return [
        `@group(0) @binding(${b}) var<storage, read> weight: array<${dtype}>;
fn loadWeight(row: u32, col: u32) -> f32 { return f32(weight[row * ${cols}u + col]); }
`,
        1,
      ];
    case 'q4f16':
    case 'q4f32':
      return [
        `@group(0) @binding(${b}) var<storage, read> weight: array<u32>;
@group(0) @binding(${b + 1}) var<storage, read> scales: array<${dtype === 'q4f16' ? 'f16' : 'f32'}>;
// MLC q4*_1: 8 nibbles per u32, lowest bits first; value = (q - 7) * scale of the 32-wide group.
fn loadWeight(row: u32, col: u32) -> f32 {
  let word = weight[row * ${cols / 8}u + col / 8u];
  let q = (word >> ((col % 8u) * 4u)) & 0xfu;
  return (f32(q) - 7.0) * f32(scales[row * ${cols / 32}u + col / 32u]);
}
`,
        2,
      ];
  }
}

export function linearNeedsF16(dtype: GpuLinear['dtype']): boolean {
  return dtype === 'f16' || dtype === 'q4f16';
}
