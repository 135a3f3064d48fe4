// Host wrapper for RMSNorm: rows of f32 activations, a [n] weight (f32 or f16), eps fixed at creation.

import { assertPositiveInt, type GpuVector, maxWorkgroupsPerDim, vectorElementType } from '../elementwise/gpuVector';
import type { GpuContext } from '../gpuContext';
import { bindGroup, computePipeline, dispatch2d } from '../gpuUtil';
import { ownUniform, type UniformSlot } from '../uniforms';
import { rmsNormWgsl } from './rmsnorm.wgsl';

export interface RmsNormOptions {
  /** Length of one normalised segment (hidden size, or head_dim for Qwen3's q/k norm). */
  n: number;
  /** [n] weight, repeated for every segment. */
  weight: GpuVector;
  eps: number;
  /** f32 activations. */
  input: GPUBuffer;
  /** f32 output with the same layout as input; omit (or pass input) to normalise in place. */
  output?: GPUBuffer;
  maxRows: number;
  /** Segments per row (default 1). Qwen3 q norm: numHeads; k norm: numKvHeads. */
  segments?: number;
  /** Floats between consecutive rows (default n * segments). Qwen3: (nq + 2 * nkv) * headDim. */
  rowStride?: number;
  /** Float offset of the first segment inside a row (default 0). Qwen3 k norm: nq * headDim. */
  rowOffset?: number;
  /** f32, the layout of input: input += residual first (written back), then output = norm(input). The residual add
   * of the transformer fused into the norm after it. Plain norms only (one segment per row), not in place. */
  residual?: GPUBuffer;
}

export class RmsNormKernel {
  readonly maxRows: number;
  private readonly segments: number;
  private readonly pipeline: GPUComputePipeline;
  private readonly bindGroup: GPUBindGroup;
  private readonly params: UniformSlot;

  constructor(
    private readonly ctx: GpuContext,
    opts: RmsNormOptions,
  ) {
    const { n, weight, eps, input, maxRows } = opts;
    assertPositiveInt(n, 'rmsnorm n');
    assertPositiveInt(maxRows, 'rmsnorm maxRows');
    const segments = opts.segments ?? 1;
    assertPositiveInt(segments, 'rmsnorm segments');
    const rowStride = opts.rowStride ?? n * segments;
    const rowOffset = opts.rowOffset ?? 0;
    if (!Number.isInteger(rowOffset) || rowOffset < 0 || rowOffset + n * segments > rowStride) {
      throw new Error(
        `rmsnorm: segments [${rowOffset}, ${rowOffset + n * segments}) do not fit a row of ${rowStride}.`,
      );
    }
    if (!(eps > 0) || !Number.isFinite(eps)) throw new Error(`rmsnorm: eps must be a positive number, got ${eps}.`);
    if (weight.length !== n) throw new Error(`rmsnorm: weight has ${weight.length} values, expected ${n}.`);
    const needBytes = ((maxRows - 1) * rowStride + rowOffset + n * segments) * 4;
    const output = opts.output ?? input;
    if (input.size < needBytes || output.size < needBytes) {
      throw new Error(`rmsnorm: input/output buffers are smaller than ${maxRows} rows of ${rowStride} f32.`);
    }
    const inPlace = output === input;
    const residual = opts.residual;
    if (residual && (inPlace || segments !== 1 || rowOffset !== 0)) {
      throw new Error('rmsnorm: a residual needs a separate output and one segment per row');
    }
    if (residual && residual.size < needBytes) {
      throw new Error(`rmsnorm: residual buffer is smaller than ${maxRows} rows of ${rowStride} f32.`);
    }
    this.maxRows = maxRows;
    this.segments = segments;
    const code = rmsNormWgsl({
      n,
      segments,
      rowStride,
      rowOffset,
      eps,
      weightType: vectorElementType(ctx, weight, 'rmsnorm weight'),
      inPlace,
      residual: residual !== undefined,
      // Short segments (head_dim) waste fewer idle threads in a smaller workgroup.
      workgroup: n <= 128 ? 64 : 256,
    });
    this.pipeline = computePipeline(ctx, code, 'rmsnorm');
    this.params = ownUniform(ctx, 16, 'rmsnorm params');
    const buffers = inPlace
      ? [this.params.binding, input, weight.buffer]
      : [this.params.binding, input, weight.buffer, output, ...(residual ? [residual] : [])];
    this.bindGroup = bindGroup(ctx, this.pipeline, buffers, 'rmsnorm');
  }

  /** Normalises the first `rows` rows (tokens). */
  encode(pass: GPUComputePassEncoder, rows: number): void {
    if (!Number.isInteger(rows) || rows < 1 || rows > this.maxRows) {
      throw new Error(`rmsnorm: rows ${rows} is outside 1..${this.maxRows}.`);
    }
    this.params.write(new Uint32Array([rows, 0, 0, 0]));
    const [x, y] = dispatch2d(rows * this.segments, maxWorkgroupsPerDim(this.ctx));
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, this.bindGroup);
    pass.dispatchWorkgroups(x, y);
  }
}
