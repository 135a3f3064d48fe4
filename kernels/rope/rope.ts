// Host wrapper for RoPE + KV store. The inverse frequencies come in as a buffer (the model computes them, scaling
// included: core/model/rope.ts).

import { assertPositiveInt, maxWorkgroupsPerDim } from '../elementwise/gpuVector';
import type { GpuContext } from '../gpuContext';
import { bindGroup, computePipeline, dispatch2d, storageBuffer } from '../gpuUtil';
import type { KvCacheLayout, LayerKv } from '../types';
import { ownUniform, type UniformSlot } from '../uniforms';
import { ROPE_WORKGROUP, ropeWgsl } from './rope.wgsl';

/** One f32 buffer of inverse frequencies, shareable by every layer's RopeKernel. */
export function uploadInverseFrequencies(ctx: GpuContext, invFreq: Float32Array): GPUBuffer {
  return storageBuffer(ctx, invFreq, 'rope inv_freq');
}

export interface RopeOptions {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** From uploadInverseFrequencies: f32 [headDim / 2]. */
  invFreq: GPUBuffer;
  /** f32 qkv projection output [maxTokens][(numHeads + 2 * numKvHeads) * headDim]: q heads, then k, then v. */
  qkv: GPUBuffer;
  /** f32 rotated queries [maxTokens][numHeads][headDim]. */
  q: GPUBuffer;
  /** This layer's caches, [kvHeads][capacity][headDim] in layout.dtype. */
  kv: LayerKv;
  layout: KvCacheLayout;
  maxTokens: number;
  /** Where the per-use scalars (tokens, start position) go; its own buffer when absent. */
  params?: UniformSlot;
}

export class RopeKernel {
  readonly maxTokens: number;
  readonly capacity: number;
  private readonly threadsPerToken: number;
  private readonly pipeline: GPUComputePipeline;
  private readonly bindGroup: GPUBindGroup;
  private readonly params: UniformSlot;

  constructor(
    private readonly ctx: GpuContext,
    opts: RopeOptions,
  ) {
    const { numHeads, numKvHeads, headDim, layout, maxTokens } = opts;
    assertPositiveInt(numHeads, 'rope numHeads');
    assertPositiveInt(numKvHeads, 'rope numKvHeads');
    assertPositiveInt(maxTokens, 'rope maxTokens');
    if (headDim % 2 !== 0 || headDim < 2) throw new Error(`rope: head_dim must be even, got ${headDim}.`);
    if (numHeads % numKvHeads !== 0) {
      throw new Error(`rope: numHeads (${numHeads}) must be a multiple of numKvHeads (${numKvHeads}).`);
    }
    if (layout.kvHeads !== numKvHeads || layout.headDim !== headDim) {
      throw new Error(`rope: KV layout [${layout.kvHeads}][*][${layout.headDim}] != [${numKvHeads}][*][${headDim}].`);
    }
    if (layout.dtype === 'f16' && !ctx.f16) throw new Error('rope: an f16 KV cache needs shader-f16 on the device.');
    assertPositiveInt(layout.capacity, 'rope KV capacity');
    const cacheBytes = numKvHeads * layout.capacity * headDim * (layout.dtype === 'f16' ? 2 : 4);
    if (opts.kv.k.size < cacheBytes || opts.kv.v.size < cacheBytes) {
      throw new Error(`rope: K/V cache buffers are smaller than ${cacheBytes} bytes.`);
    }
    const heads = numHeads + 2 * numKvHeads;
    if (opts.qkv.size < maxTokens * heads * headDim * 4) throw new Error('rope: qkv buffer is too small.');
    if (opts.q.size < maxTokens * numHeads * headDim * 4) throw new Error('rope: q buffer is too small.');
    if (opts.invFreq.size < (headDim / 2) * 4) throw new Error('rope: invFreq buffer holds fewer than headDim/2 f32.');
    this.maxTokens = maxTokens;
    this.capacity = layout.capacity;
    this.threadsPerToken = heads * (headDim / 2);
    const code = ropeWgsl({ numHeads, numKvHeads, headDim, capacity: layout.capacity, cacheType: layout.dtype });
    this.pipeline = computePipeline(ctx, code, 'rope');
    this.params = opts.params ?? ownUniform(ctx, 16, 'rope params');
    this.bindGroup = bindGroup(
      ctx,
      this.pipeline,
      [this.params.binding, opts.qkv, opts.invFreq, opts.q, opts.kv.k, opts.kv.v],
      'rope',
    );
  }

  /** Rotates `tokens` tokens at positions startPos.. and stores their k and v at those cache positions. */
  encode(pass: GPUComputePassEncoder, tokens: number, startPos: number): void {
    if (!Number.isInteger(tokens) || tokens < 1 || tokens > this.maxTokens) {
      throw new Error(`rope: tokens ${tokens} is outside 1..${this.maxTokens}.`);
    }
    if (!Number.isInteger(startPos) || startPos < 0 || startPos + tokens > this.capacity) {
      throw new Error(
        `rope: positions ${startPos}..${startPos + tokens - 1} do not fit the KV capacity ${this.capacity}.`,
      );
    }
    this.params.write(new Uint32Array([tokens, startPos, 0, 0]));
    const [x, y] = dispatch2d(
      Math.ceil((tokens * this.threadsPerToken) / ROPE_WORKGROUP),
      maxWorkgroupsPerDim(this.ctx),
    );
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, this.bindGroup);
    pass.dispatchWorkgroups(x, y);
  }
}
