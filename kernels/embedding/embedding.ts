// Host wrapper: token ids (u32) -> f32 rows [count][hidden] from an embedding table of any stored dtype.

import { assertPositiveInt, maxWorkgroupsPerDim } from '../elementwise/gpuVector';
import type { GpuContext } from '../gpuContext';
import { bindGroup, computePipeline, dispatch2d } from '../gpuUtil';
import { checkLinear, linearBuffers } from '../matmul/weightRead.wgsl';
import type { GpuLinear } from '../types';
import { ownUniform, type UniformSlot } from '../uniforms';
import { EMBEDDING_WORKGROUP, embeddingWgsl } from './embedding.wgsl';

export interface EmbeddingOptions {
  /** The table as a linear [rows = vocab][cols = hidden]. */
  table: GpuLinear;
  /** u32 token ids, at least maxTokens of them. */
  ids: GPUBuffer;
  /** f32 [maxTokens][hidden]. */
  out: GPUBuffer;
  maxTokens: number;
}

export class EmbeddingKernel {
  readonly vocab: number;
  readonly hidden: number;
  readonly maxTokens: number;
  private readonly pipeline: GPUComputePipeline;
  private readonly bindGroup: GPUBindGroup;
  private readonly params: UniformSlot;

  constructor(
    private readonly ctx: GpuContext,
    opts: EmbeddingOptions,
  ) {
    const { table, ids, out, maxTokens } = opts;
    checkLinear(ctx, table, 'embedding table');
    assertPositiveInt(maxTokens, 'embedding maxTokens');
    this.vocab = table.rows;
    this.hidden = table.cols;
    this.maxTokens = maxTokens;
    if (ids.size < maxTokens * 4) throw new Error(`embedding: ids buffer holds fewer than ${maxTokens} u32 ids.`);
    if (out.size < maxTokens * this.hidden * 4) {
      throw new Error(`embedding: out buffer is smaller than [${maxTokens}][${this.hidden}] f32.`);
    }
    this.pipeline = computePipeline(ctx, embeddingWgsl(table.dtype, this.vocab, this.hidden), 'embedding');
    this.params = ownUniform(ctx, 16, 'embedding params');
    this.bindGroup = bindGroup(
      ctx,
      this.pipeline,
      [this.params.binding, ids, ...linearBuffers(table), out],
      'embedding',
    );
  }

  /** Looks up the first `count` ids. Ids >= vocab give zero rows. */
  encode(pass: GPUComputePassEncoder, count: number): void {
    if (!Number.isInteger(count) || count < 1 || count > this.maxTokens) {
      throw new Error(`embedding: count ${count} is outside 1..${this.maxTokens}.`);
    }
    this.params.write(new Uint32Array([count, 0, 0, 0]));
    const groups = Math.ceil((count * this.hidden) / EMBEDDING_WORKGROUP);
    const [x, y] = dispatch2d(groups, maxWorkgroupsPerDim(this.ctx));
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, this.bindGroup);
    pass.dispatchWorkgroups(x, y);
  }
}
