// Host wrapper for the matvec kernel: y[outputOffset + r] = sum_c W[r][c] * x[inputOffset + c] for r < rows.
// Pipeline, uniforms and bind groups are built once; encode() only records dispatches. Weights larger than one
// storage binding (e.g. a 128K-vocab lm_head on a 128 MiB-binding adapter) are bound and dispatched in row chunks.
import type { AdapterSummary, GpuContext } from '../../core/gpu/context';
import { computePipeline, dispatch2d, uniformBuffer } from '../gpuUtil';
import type { GpuLinear } from '../types';
import { matvecUnitCols, matvecWgsl } from './matvec.wgsl';

export interface MatvecOptions {
  weight: GpuLinear;
  /** f32 activations; x is read from element `inputOffset` (default 0). */
  input: GPUBuffer;
  /** f32; y is written at elements [outputOffset, outputOffset + rows). */
  output: GPUBuffer;
  inputOffset?: number;
  outputOffset?: number;
  /** Tuning: threads cooperating on one row (power of two, 1..256). Default: from the row length. */
  threadsPerRow?: number;
  /** Tuning: threads per workgroup (power of two, >= threadsPerRow). */
  workgroupSize?: number;
  /** Tuning: rows each group of threadsPerRow threads computes together, reusing its x loads (1..8). */
  rowsPerThread?: number;
  /** Largest weight binding in bytes (default and cap: the device's maxStorageBufferBindingSize). Tests lower it to
   * exercise row chunks. */
  maxBindingSize?: number;
}

export interface MatvecDispatch {
  firstRow: number;
  rowCount: number;
  workgroups: [number, number];
}

export interface Matvec {
  encode(pass: GPUComputePassEncoder): void;
  /** What encode() dispatches: one entry per row chunk. */
  readonly dispatches: readonly MatvecDispatch[];
  readonly threadsPerRow: number;
  readonly rowsPerThread: number;
  /** Rows one workgroup computes. */
  readonly rowsPerGroup: number;
  destroy(): void;
}

export class MatvecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MatvecError';
  }
}

const isPow2 = (n: number) => Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
const lcm = (a: number, b: number) => (a / gcd(a, b)) * b;

/** Bytes per row of the weight and of the scales (0 when there are none). */
function rowBytes(w: GpuLinear): { weight: number; scales: number } {
  switch (w.dtype) {
    case 'f32':
      return { weight: w.cols * 4, scales: 0 };
    case 'f16':
      return { weight: w.cols * 2, scales: 0 };
    case 'q4f16':
      return { weight: w.cols / 2, scales: (w.cols / 32) * 2 };
    case 'q4f32':
      return { weight: w.cols / 2, scales: (w.cols / 32) * 4 };
  }
}

function check(o: MatvecOptions, inputOffset: number, outputOffset: number): void {
  const w = o.weight;
  const { rows, cols, dtype } = w;
  const name = `matvec(${dtype} ${rows}x${cols})`;
  if (!['f32', 'f16', 'q4f16', 'q4f32'].includes(dtype)) throw new MatvecError(`matvec: unknown weight dtype ${dtype}`);
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows <= 0 || cols <= 0) {
    throw new MatvecError(`${name}: rows and cols must be positive integers`);
  }
  if (!Number.isInteger(inputOffset) || inputOffset < 0 || !Number.isInteger(outputOffset) || outputOffset < 0) {
    throw new MatvecError(`${name}: inputOffset/outputOffset must be non-negative integers (elements)`);
  }
  if (dtype === 'q4f16' || dtype === 'q4f32') {
    if (cols % 32 !== 0) {
      throw new MatvecError(`${name}: q4 weights need cols to be a multiple of 32 (the quantization group)`);
    }
    if (!w.scales) throw new MatvecError(`${name}: q4 weights need a scales buffer`);
  }
  // f16 and q4f16 need no shader-f16 here: the kernel decodes halves with unpack2x16float.
  const bytes = rowBytes(w);
  if (w.weight.size < rows * bytes.weight) {
    throw new MatvecError(`${name}: weight buffer has ${w.weight.size} bytes, needs ${rows * bytes.weight}`);
  }
  if (w.scales && bytes.scales && w.scales.size < rows * bytes.scales) {
    throw new MatvecError(`${name}: scales buffer has ${w.scales.size} bytes, needs ${rows * bytes.scales}`);
  }
  if (o.input.size < (inputOffset + cols) * 4) {
    throw new MatvecError(`${name}: input buffer has ${o.input.size} bytes, needs ${(inputOffset + cols) * 4}`);
  }
  if (o.output.size < (outputOffset + rows) * 4) {
    throw new MatvecError(`${name}: output buffer has ${o.output.size} bytes, needs ${(outputOffset + rows) * 4}`);
  }
}

/** SwiftShader and lavapipe run WebGPU on the CPU, where workgroup barriers are expensive. */
export function isCpuAdapter(a: AdapterSummary): boolean {
  return /swiftshader|llvmpipe|lavapipe/i.test(`${a.vendor} ${a.architecture} ${a.device} ${a.description}`);
}

/** Default split of the work, from bench sweeps (`npm run bench -- matvec-tune`).
 * CPU adapters (4096x2048): one thread per row (no reduction, no barrier) was fastest on both drivers, by 2-60x over
 * 64-256 threads per row.
 * GPU (H200 over Vulkan, Llama-1B gate_up 16384x2048 and down 2048x8192): f32/f16 were best with about 16 loads per
 * thread along a row and one row per thread group (f16 down: 64 threads/row 3.9 TB/s); q4 with 32-128 threads per row
 * (about 2 groups of 32 columns each) and 4 rows per thread group, which reuses each x load 4 times (gate_up
 * 947 GB/s vs 464 with one row; down 734 vs 464). */
function defaultTuning(
  ctx: GpuContext,
  dtype: GpuLinear['dtype'],
  units: number,
): { threadsPerRow: number; workgroupSize: number; rowsPerThread: number } {
  if (isCpuAdapter(ctx.adapterInfo)) return { threadsPerRow: 1, workgroupSize: 64, rowsPerThread: 1 };
  const pow2Below = (n: number) => 2 ** Math.floor(Math.log2(Math.max(1, n)));
  if (dtype === 'q4f16' || dtype === 'q4f32') {
    return { threadsPerRow: Math.min(128, Math.max(32, pow2Below(units / 2))), workgroupSize: 256, rowsPerThread: 4 };
  }
  return { threadsPerRow: Math.min(256, Math.max(4, pow2Below(units / 16))), workgroupSize: 256, rowsPerThread: 1 };
}

export function createMatvec(ctx: GpuContext, o: MatvecOptions): Matvec {
  const inputOffset = o.inputOffset ?? 0;
  const outputOffset = o.outputOffset ?? 0;
  check(o, inputOffset, outputOffset);
  const { device } = ctx;
  const w = o.weight;
  const q4 = w.dtype === 'q4f16' || w.dtype === 'q4f32';
  const vectorized = q4 || (w.dtype === 'f32' ? w.cols % 4 === 0 : w.cols % 8 === 0);
  const units = w.cols / matvecUnitCols(w.dtype, vectorized);

  const tuning = defaultTuning(ctx, w.dtype, units);
  const threadsPerRow = o.threadsPerRow ?? tuning.threadsPerRow;
  const workgroupSize = Math.max(o.workgroupSize ?? tuning.workgroupSize, threadsPerRow);
  const rowsPerThread = o.rowsPerThread ?? tuning.rowsPerThread;
  if (!Number.isInteger(rowsPerThread) || rowsPerThread < 1 || rowsPerThread > 8) {
    throw new MatvecError(`matvec: rowsPerThread must be an integer in 1..8, got ${rowsPerThread}`);
  }
  if (!isPow2(threadsPerRow) || threadsPerRow > 256 || !isPow2(workgroupSize) || workgroupSize > 256) {
    throw new MatvecError(`matvec: threadsPerRow (${threadsPerRow}) and workgroupSize must be powers of two <= 256`);
  }
  const slots = workgroupSize / threadsPerRow;
  const rowsPerGroup = slots * rowsPerThread;
  const code = matvecWgsl({
    dtype: w.dtype,
    threadsPerRow,
    slots,
    rowsPerThread,
    vectorized,
    alignedInput: inputOffset % 4 === 0,
  });
  const pipeline = computePipeline(ctx, code, `matvec.${w.dtype}`);

  // Row chunks: each chunk's weight (and scales) binding must fit maxStorageBufferBindingSize and start at a
  // multiple of minStorageBufferOffsetAlignment.
  const bytes = rowBytes(w);
  const align = device.limits.minStorageBufferOffsetAlignment;
  const maxBinding = Math.min(o.maxBindingSize ?? Infinity, device.limits.maxStorageBufferBindingSize);
  let granule = align / gcd(align, bytes.weight);
  if (bytes.scales) granule = lcm(granule, align / gcd(align, bytes.scales));
  const fitRows = Math.floor(maxBinding / Math.max(bytes.weight, bytes.scales));
  const chunkRows = w.rows <= fitRows ? w.rows : Math.floor(fitRows / granule) * granule;
  if (chunkRows === 0) {
    throw new MatvecError(
      `matvec(${w.dtype} ${w.rows}x${w.cols}): ${granule} rows (${granule * bytes.weight} bytes) exceed one ` +
        `storage binding (${maxBinding} bytes) on this adapter`,
    );
  }

  const dispatches: MatvecDispatch[] = [];
  const uniforms: GPUBuffer[] = [];
  const groups: GPUBindGroup[] = [];
  const range = (buffer: GPUBuffer, offset: number, size: number): GPUBufferBinding => ({
    buffer,
    offset,
    size: Math.min(Math.ceil(size / 4) * 4, buffer.size - offset),
  });
  for (let firstRow = 0; firstRow < w.rows; firstRow += chunkRows) {
    const rowCount = Math.min(chunkRows, w.rows - firstRow);
    const params = uniformBuffer(
      ctx,
      new Uint32Array([rowCount, inputOffset, outputOffset + firstRow, w.cols, units]),
      `matvec.${w.dtype}.params`,
    );
    const entries: GPUBindGroupEntry[] = [
      { binding: 0, resource: { buffer: params } },
      { binding: 1, resource: range(w.weight, firstRow * bytes.weight, rowCount * bytes.weight) },
      { binding: 2, resource: { buffer: o.input } },
      { binding: 3, resource: { buffer: o.output } },
    ];
    if (q4 && w.scales) {
      entries.push({ binding: 4, resource: range(w.scales, firstRow * bytes.scales, rowCount * bytes.scales) });
    }
    uniforms.push(params);
    groups.push(device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries }));
    const workgroups = dispatch2d(Math.ceil(rowCount / rowsPerGroup), device.limits.maxComputeWorkgroupsPerDimension);
    dispatches.push({ firstRow, rowCount, workgroups });
  }

  return {
    dispatches,
    threadsPerRow,
    rowsPerThread,
    rowsPerGroup,
    encode(pass) {
      pass.setPipeline(pipeline);
      for (let i = 0; i < dispatches.length; i++) {
        pass.setBindGroup(0, groups[i]);
        pass.dispatchWorkgroups(dispatches[i].workgroups[0], dispatches[i].workgroups[1]);
      }
    },
    destroy() {
      for (const u of uniforms) u.destroy();
    },
  };
}
