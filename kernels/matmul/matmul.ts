// Host wrapper for the prefill matmul Y[tokens][rows] = X[tokens][cols] · W^T (W a GpuLinear of any dtype).

import { assertPositiveInt } from '../elementwise/gpuVector';
import type { GpuContext } from '../gpuContext';
import { bindGroup, computePipeline, uniformBuffer, writeBuffer } from '../gpuUtil';
import type { GpuLinear } from '../types';
import { MATMUL_TILE, matmulWgsl } from './matmul.wgsl';
import { matmulRowsWgsl } from './matmulRows.wgsl';
import { fixedSubgroupSize, type MatmulTuning, matmulTuningFor, matmulTuningProblem } from './tuning';
import { checkLinear, linearBuffers } from './weightRead.wgsl';

export interface MatmulOptions {
  weight: GpuLinear;
  /** f32 [maxTokens][weight.cols]. */
  x: GPUBuffer;
  /** f32 [maxTokens][weight.rows]. */
  y: GPUBuffer;
  maxTokens: number;
  /** Variant and tile; default: the adapter's cached or built-in tuning (kernels/matmul/tuning.ts). */
  tuning?: MatmulTuning;
}

export class MatmulKernel {
  readonly rows: number;
  readonly cols: number;
  readonly maxTokens: number;
  readonly tuning: MatmulTuning;
  /** [rows, tokens] covered by one workgroup. */
  private readonly block: [number, number];
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
    const tuning = opts.tuning ?? matmulTuningFor(ctx, weight);
    const problem = matmulTuningProblem(ctx, weight, tuning);
    if (problem) throw new Error(`matmul: ${problem}.`);
    this.tuning = tuning;
    let code: string;
    if (tuning.variant === 'rows') {
      const { tokensPerLane, rowsPerLane, workgroupSize, f16 } = tuning;
      const subgroupSize = fixedSubgroupSize(ctx) as number;
      const dtype = weight.dtype as 'q4f16' | 'q4f32';
      code = matmulRowsWgsl({ dtype, subgroupSize, tokensPerLane, rowsPerLane, workgroupSize, f16 });
      this.block = [rowsPerLane * workgroupSize, tokensPerLane];
    } else {
      code = matmulWgsl(weight.dtype);
      this.block = [MATMUL_TILE, MATMUL_TILE];
    }
    const rowTiles = Math.ceil(this.rows / this.block[0]);
    if (rowTiles > ctx.device.limits.maxComputeWorkgroupsPerDimension) {
      throw new Error(`matmul: ${this.rows} rows need more row tiles than one dispatch dimension allows.`);
    }
    if (Math.ceil(maxTokens / this.block[1]) > ctx.device.limits.maxComputeWorkgroupsPerDimension) {
      throw new Error(`matmul: ${maxTokens} tokens need more token tiles than one dispatch dimension allows.`);
    }
    this.pipeline = computePipeline(ctx, code, 'matmul');
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
    pass.dispatchWorkgroups(Math.ceil(this.rows / this.block[0]), Math.ceil(tokens / this.block[1]));
  }
}
