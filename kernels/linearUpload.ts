// Host weights -> GPU weights (GpuLinear). The model loader produces HostLinear values from the MLC shards; this file
// checks their shapes and uploads them in their stored dtype, widening f16 to f32 on adapters without shader-f16
// (the convention in kernels/types.ts).
import type { GpuContext } from './gpuContext';
import { storageBuffer } from './gpuUtil';
import { f16ArrayToF32 } from './half';
import type { GpuLinear } from './types';

/** A weight matrix [rows = out][cols = in] in host memory, as stored.
 * q4f16 / q4f32 are MLC q4*_1: `qweight` u32 [rows][cols/8], 8 nibbles per word (lowest first), `scales` [rows][cols/32]
 * as f16 bits (q4f16) or f32 (q4f32); value = (q - 7) * scale. */
export type HostLinear =
  | { dtype: 'f32'; rows: number; cols: number; data: Float32Array }
  | { dtype: 'f16'; rows: number; cols: number; data: Uint16Array }
  | { dtype: 'q4f16' | 'q4f32'; rows: number; cols: number; qweight: Uint32Array; scales: Uint16Array | Float32Array };

export const Q4_GROUP_SIZE = 32;

export class LinearShapeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LinearShapeError';
  }
}

/** Throws a LinearShapeError naming what is wrong (shape, lengths, dtype of the arrays). */
export function checkHostLinear(t: HostLinear, name = 'linear'): void {
  const { rows, cols } = t;
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows <= 0 || cols <= 0) {
    throw new LinearShapeError(`${name}: rows and cols must be positive integers, got ${rows} x ${cols}`);
  }
  const want = (what: string, got: number, expected: number) => {
    if (got !== expected) {
      throw new LinearShapeError(`${name}: ${what} has ${got} elements, expected ${expected} for ${rows} x ${cols}`);
    }
  };
  switch (t.dtype) {
    case 'f32':
      if (!(t.data instanceof Float32Array)) throw new LinearShapeError(`${name}: f32 data must be a Float32Array`);
      want('data', t.data.length, rows * cols);
      return;
    case 'f16':
      if (!(t.data instanceof Uint16Array)) throw new LinearShapeError(`${name}: f16 data must be a Uint16Array`);
      want('data', t.data.length, rows * cols);
      return;
    case 'q4f16':
    case 'q4f32': {
      if (cols % Q4_GROUP_SIZE !== 0) {
        throw new LinearShapeError(
          `${name}: ${t.dtype} needs cols to be a multiple of ${Q4_GROUP_SIZE} (the quantization group), got ${cols}`,
        );
      }
      const scalesOk = t.dtype === 'q4f16' ? t.scales instanceof Uint16Array : t.scales instanceof Float32Array;
      if (!scalesOk) {
        throw new LinearShapeError(
          `${name}: ${t.dtype} scales must be a ${t.dtype === 'q4f16' ? 'Uint16Array (f16 bits)' : 'Float32Array'}`,
        );
      }
      want('qweight', t.qweight.length, (rows * cols) / 8);
      want('scales', t.scales.length, (rows * cols) / Q4_GROUP_SIZE);
      return;
    }
    default:
      throw new LinearShapeError(`${name}: unknown dtype ${(t as { dtype: string }).dtype}`);
  }
}

/** Uploads a weight matrix. On an adapter without shader-f16, f16 becomes f32 and q4f16 becomes q4f32. */
export function uploadLinear(ctx: GpuContext, t: HostLinear, name = 'linear'): GpuLinear {
  checkHostLinear(t, name);
  const { rows, cols } = t;
  const upload = (data: ArrayBufferView, what: string) => {
    if (data.byteLength > ctx.device.limits.maxBufferSize) {
      throw new LinearShapeError(
        `${name}: ${what} needs ${data.byteLength} bytes, more than this adapter's maxBufferSize ` +
          `(${ctx.device.limits.maxBufferSize})`,
      );
    }
    return storageBuffer(ctx, data, `${name}.${what}`);
  };
  switch (t.dtype) {
    case 'f32':
      return { dtype: 'f32', rows, cols, weight: upload(t.data, 'weight') };
    case 'f16':
      return ctx.f16
        ? { dtype: 'f16', rows, cols, weight: upload(t.data, 'weight') }
        : { dtype: 'f32', rows, cols, weight: upload(f16ArrayToF32(t.data), 'weight') };
    default: {
      const weight = upload(t.qweight, 'qweight');
      if (t.dtype === 'q4f16' && ctx.f16)
        return { dtype: 'q4f16', rows, cols, weight, scales: upload(t.scales, 'scales') };
      const scales = t.scales instanceof Uint16Array ? f16ArrayToF32(t.scales) : t.scales;
      return { dtype: 'q4f32', rows, cols, weight, scales: upload(scales, 'scales') };
    }
  }
}

/** Bytes of weight data the GPU reads for one product (what the bandwidth figures count). */
export function linearBytes(l: { dtype: GpuLinear['dtype']; rows: number; cols: number }): number {
  const n = l.rows * l.cols;
  switch (l.dtype) {
    case 'f32':
      return n * 4;
    case 'f16':
      return n * 2;
    case 'q4f16':
      return n / 2 + (n / Q4_GROUP_SIZE) * 2;
    case 'q4f32':
      return n / 2 + (n / Q4_GROUP_SIZE) * 4;
  }
}
