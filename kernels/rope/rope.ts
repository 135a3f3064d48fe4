// Host wrapper for RoPE + KV store, and the rotary inverse frequencies (default, linear and Llama-3 scaling).
import type { GpuContext } from '../../core/gpu/context';
import { assertPositiveInt, maxWorkgroupsPerDim } from '../elementwise/gpuVector';
import { bindGroup, computePipeline, dispatch2d, storageBuffer, uniformBuffer, writeBuffer } from '../gpuUtil';
import type { KvCacheLayout, LayerKv } from '../types';
import { ROPE_WORKGROUP, ropeWgsl } from './rope.wgsl';

/** HF `rope_scaling` as found in config.json (older configs spell rope_type as `type`). */
export interface RopeScaling {
  rope_type?: string;
  type?: string;
  factor?: number;
  low_freq_factor?: number;
  high_freq_factor?: number;
  original_max_position_embeddings?: number;
}

/** inv_freq[i] = theta^(-2i/d) for i < d/2, then the scaling's adjustment; computed in f64, rounded to f32. */
export function ropeInverseFrequencies(headDim: number, theta: number, scaling?: RopeScaling | null): Float32Array {
  if (!Number.isInteger(headDim) || headDim < 2 || headDim % 2 !== 0) {
    throw new Error(`rope: head_dim must be a positive even integer, got ${headDim}.`);
  }
  if (!(theta > 0)) throw new Error(`rope: rope_theta must be positive, got ${theta}.`);
  const half = headDim / 2;
  const base = Array.from({ length: half }, (_, i) => theta ** (-(2 * i) / headDim));
  const type = scaling ? (scaling.rope_type ?? scaling.type ?? 'default') : 'default';
  let adjusted: number[];
  if (type === 'default') {
    adjusted = base;
  } else if (type === 'linear') {
    const factor = requirePositive(scaling?.factor, 'factor');
    adjusted = base.map((f) => f / factor);
  } else if (type === 'llama3') {
    const factor = requirePositive(scaling?.factor, 'factor');
    const low = requirePositive(scaling?.low_freq_factor, 'low_freq_factor');
    const high = requirePositive(scaling?.high_freq_factor, 'high_freq_factor');
    const original = requirePositive(scaling?.original_max_position_embeddings, 'original_max_position_embeddings');
    if (!(high > low)) throw new Error(`rope_scaling llama3: high_freq_factor (${high}) must exceed low (${low}).`);
    const lowFreqWavelen = original / low;
    const highFreqWavelen = original / high;
    adjusted = base.map((f) => {
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < highFreqWavelen) return f; // high frequencies: unchanged
      if (wavelen > lowFreqWavelen) return f / factor; // low frequencies: interpolated by the full factor
      const smooth = (original / wavelen - low) / (high - low);
      return (1 - smooth) * (f / factor) + smooth * f;
    });
  } else {
    throw new Error(`rope: rope_scaling type "${type}" is not supported (default, linear, llama3 are).`);
  }
  return Float32Array.from(adjusted);
}

function requirePositive(value: number | undefined, name: string): number {
  if (value === undefined || !(value > 0)) throw new Error(`rope_scaling: ${name} must be a positive number.`);
  return value;
}

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
}

export class RopeKernel {
  readonly maxTokens: number;
  readonly capacity: number;
  private readonly threadsPerToken: number;
  private readonly pipeline: GPUComputePipeline;
  private readonly bindGroup: GPUBindGroup;
  private readonly params: GPUBuffer;

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
    this.params = uniformBuffer(ctx, new Uint32Array(4), 'rope params');
    this.bindGroup = bindGroup(
      ctx,
      this.pipeline,
      [this.params, opts.qkv, opts.invFreq, opts.q, opts.kv.k, opts.kv.v],
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
    writeBuffer(this.ctx, this.params, new Uint32Array([tokens, startPos, 0, 0]));
    const [x, y] = dispatch2d(
      Math.ceil((tokens * this.threadsPerToken) / ROPE_WORKGROUP),
      maxWorkgroupsPerDim(this.ctx),
    );
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, this.bindGroup);
    pass.dispatchWorkgroups(x, y);
  }
}
