// Host wrapper for the prefill matmul Y[tokens][rows] = X[tokens][cols] · W^T (W a GpuLinear of any dtype).
import type { GpuContext } from '../../core/gpu/context';
import { assertPositiveInt } from '../elementwise/gpuVector';
import { bindGroup, computePipeline, uniformBuffer, writeBuffer } from '../gpuUtil';
import type { GpuLinear } from '../types';
import { MATMUL_TILE, matmulWgsl } from './matmul.wgsl';
import { checkLinear, linearBuffers } from './weightRead.wgsl';

export interface MatmulOptions {
  weight: GpuLinear;
  /** f32 [maxTokens][weight.cols]. */
  x: GPUBuffer;
  /** f32 [maxTokens][weight.rows]. */
  y: GPUBuffer;
  maxTokens: number;
}

export class MatmulKernel {
  readonly rows: number;
  readonly cols: number;
  readonly maxTokens: number;
  private readonly pipeline: GPUComputePipeline;
  private readonly bindGroup: GPUBindGroup;
  private readonly params: GPUBuffer;

  constructor(
    private readonly ctx: GpuContext,
    opts: MatmulOptions,
  ) {
    const { weight, x, y, maxTokens } = opts;
    checkLinear(ctx, weight, 'matmul weight');
    assertPositiveInt(maxTokens, 'matmul maxTokens');
    this.rows = weight.rows;
    this.cols = weight.cols;
    this.maxTokens = maxTokens;
    if (x === y) throw new Error('matmul: x and y must be different buffers.');
    if (x.size < maxTokens * this.cols * 4)
      throw new Error(`matmul: x is smaller than [${maxTokens}][${this.cols}] f32.`);
    if (y.size < maxTokens * this.rows * 4)
      throw new Error(`matmul: y is smaller than [${maxTokens}][${this.rows}] f32.`);
    const rowTiles = Math.ceil(this.rows / MATMUL_TILE);
    if (rowTiles > ctx.device.limits.maxComputeWorkgroupsPerDimension) {
      throw new Error(`matmul: ${this.rows} rows need more row tiles than one dispatch dimension allows.`);
    }
    this.pipeline = computePipeline(ctx, matmulWgsl(weight.dtype), 'matmul');
    this.params = uniformBuffer(ctx, new Uint32Array(4), 'matmul params');
    this.bindGroup = bindGroup(ctx, this.pipeline, [this.params, x, ...linearBuffers(weight), y], 'matmul');
  }

  /** Multiplies the first `tokens` rows of x. */
  encode(pass: GPUComputePassEncoder, tokens: number): void {
    if (!Number.isInteger(tokens) || tokens < 1 || tokens > this.maxTokens) {
      throw new Error(`matmul: tokens ${tokens} is outside 1..${this.maxTokens}.`);
    }
    writeBuffer(this.ctx, this.params, new Uint32Array([tokens, this.rows, this.cols, 0]));
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, this.bindGroup);
    pass.dispatchWorkgroups(Math.ceil(this.rows / MATMUL_TILE), Math.ceil(tokens / MATMUL_TILE));
  }
}
