// Host wrapper for the prefill matmul Y[tokens][rows] = X[tokens][cols] · W^T (W a GpuLinear of any dtype).

import { assertPositiveInt } from '../elementwise/gpuVector';
import { fixedSubgroupSize, type GpuContext } from '../gpuContext';
import { bindGroup, computePipeline, STORAGE_BINDING, TEXTURE_BINDING, uniformBuffer, writeBuffer } from '../gpuUtil';
import type { GpuLinear } from '../types';
import { MATMUL_TILE, matmulWgsl } from './matmul.wgsl';
import { matmulRowsWgsl } from './matmulRows.wgsl';
import { STAGE_X_WORKGROUP, stageXWgsl } from './stageX.wgsl';
import { type MatmulTuning, matmulTuningFor, matmulTuningProblem } from './tuning';
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
  /** With xTexture: the dispatch that copies x into the texture the matmul reads. */
  private readonly stage?: { pipeline: GPUComputePipeline; bindGroup: GPUBindGroup };

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
    const xTexture = tuning.variant === 'rows' && tuning.xTexture === true;
    if (tuning.variant === 'rows') {
      const { tokensPerLane, rowsPerLane, workgroupSize, f16 } = tuning;
      const subgroupSize = fixedSubgroupSize(ctx) as number;
      const dtype = weight.dtype as 'q4f16' | 'q4f32';
      code = matmulRowsWgsl({ dtype, subgroupSize, tokensPerLane, rowsPerLane, workgroupSize, f16, xTexture });
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
    // With xTexture the matmul reads the staged texture where it would read x, and the stage dispatch fills it.
    const xView = xTexture ? stagingTexture(ctx, x, this.cols, maxTokens).createView() : undefined;
    this.bindGroup = bindGroup(ctx, this.pipeline, [this.params, xView ?? x, ...linearBuffers(weight), y], 'matmul');
    if (xView) {
      const pipeline = computePipeline(ctx, stageXWgsl(), 'matmul stage x');
      this.stage = { pipeline, bindGroup: bindGroup(ctx, pipeline, [this.params, x, xView], 'matmul stage x') };
    }
  }

  /** Multiplies the first `tokens` rows of x. */
  encode(pass: GPUComputePassEncoder, tokens: number): void {
    if (!Number.isInteger(tokens) || tokens < 1 || tokens > this.maxTokens) {
      throw new Error(`matmul: tokens ${tokens} is outside 1..${this.maxTokens}.`);
    }
    // Word 3 is the rows kernel's laneBase: always 0 (subgroupRead.ts).
    writeBuffer(this.ctx, this.params, new Uint32Array([tokens, this.rows, this.cols, 0]));
    if (this.stage) {
      pass.setPipeline(this.stage.pipeline);
      pass.setBindGroup(0, this.stage.bindGroup);
      pass.dispatchWorkgroups(Math.ceil(this.cols / 4 / STAGE_X_WORKGROUP), tokens);
    }
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, this.bindGroup);
    const rowTiles = Math.ceil(this.rows / this.block[0]);
    const tokenTiles = Math.ceil(tokens / this.block[1]);
    // The rows kernel walks token tiles first (matmulRows.wgsl.ts says why); the tiled kernel row tiles first.
    if (this.tuning.variant === 'rows') pass.dispatchWorkgroups(tokenTiles, rowTiles);
    else pass.dispatchWorkgroups(rowTiles, tokenTiles);
  }
}

/** The rgba32float texture [maxTokens][cols / 4] that x is staged into. Kernels reading the same x buffer share one
 * (each stages x right before its own dispatch, and dispatches in a pass run in order), so a model holds one per
 * activation buffer rather than one per layer and projection. */
const stagingTextures = new WeakMap<GPUBuffer, Map<string, GPUTexture>>();

function stagingTexture(ctx: GpuContext, x: GPUBuffer, cols: number, maxTokens: number): GPUTexture {
  const max = ctx.device.limits.maxTextureDimension2D;
  if (cols / 4 > max || maxTokens > max) {
    throw new Error(`matmul: x of [${maxTokens}][${cols}] does not fit a ${max}x${max} texture; use xTexture: false.`);
  }
  let byShape = stagingTextures.get(x);
  if (!byShape) {
    byShape = new Map();
    stagingTextures.set(x, byShape);
  }
  const key = `${cols}x${maxTokens}`;
  let texture = byShape.get(key);
  if (!texture) {
    texture = ctx.device.createTexture({
      size: [cols / 4, maxTokens],
      format: 'rgba32float',
      usage: TEXTURE_BINDING | STORAGE_BINDING,
      label: 'matmul x',
    });
    byShape.set(key, texture);
  }
  return texture;
}
