// Host wrappers of the top-K kernels: GQA max-aggregation + max-pool, then radix select per KV head.
import type { GpuContext } from '../gpuContext';
import { bindGroup, computePipeline } from '../gpuUtil';
import { ownUniform, type UniformSlot } from '../uniforms';
import { aggregatePoolWgsl, POOL_TILE, radixSelectWgsl } from './topk.wgsl';

export interface TopKStepArgs {
  /** Positions to select from: 0..kvLen-1. */
  kvLen: number;
  /** How many to keep per KV head; values above kvLen keep all. */
  k: number;
}

interface KernelWithParams {
  encode(pass: GPUComputePassEncoder, args: TopKStepArgs): void;
}

function paramsWriter(ctx: GpuContext, label: string, slot?: UniformSlot) {
  const words = new Uint32Array(4);
  const uniform = slot ?? ownUniform(ctx, words.byteLength, label);
  return {
    binding: uniform.binding,
    write({ kvLen, k }: TopKStepArgs, capacity: number) {
      if (!Number.isInteger(kvLen) || kvLen < 1 || kvLen > capacity) {
        throw new Error(`top-K: kvLen ${kvLen} outside 1..${capacity}`);
      }
      if (!Number.isInteger(k) || k < 1) throw new Error(`top-K: k must be a positive integer (got ${k})`);
      words[0] = kvLen;
      words[1] = k;
      uniform.write(words);
    },
  };
}

/** What the pooling reads and writes (the logits of a full step, their per-head stats, the layer's state). */
export interface AggregatePoolOptions {
  numHeads: number;
  kvHeads: number;
  capacity: number;
  scores: GPUBuffer;
  headStats: GPUBuffer;
  state: GPUBuffer | GPUBufferBinding;
  /** (kvLen, k) scalars; own buffer when absent (may be shared by every layer). */
  params?: UniformSlot;
  pooled: GPUBuffer;
}

export function createAggregatePool(ctx: GpuContext, o: AggregatePoolOptions): KernelWithParams {
  if (o.numHeads % o.kvHeads !== 0) throw new Error('top-K: numHeads must be a multiple of kvHeads');
  const pipeline = computePipeline(ctx, aggregatePoolWgsl(o), 'topk.aggregatePool');
  const params = paramsWriter(ctx, 'topk.pool.params', o.params);
  const group = bindGroup(ctx, pipeline, [params.binding, o.scores, o.headStats, o.state, o.pooled]);
  return {
    encode(pass, args) {
      params.write(args, o.capacity);
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(Math.ceil(args.kvLen / POOL_TILE), o.kvHeads);
    },
  };
}

export function createRadixSelect(
  ctx: GpuContext,
  o: {
    kvHeads: number;
    capacity: number;
    /** f32 [kvHeads][capacity], every value >= 0. */
    values: GPUBuffer;
    state: GPUBuffer | GPUBufferBinding;
    /** (kvLen, k) scalars; own buffer when absent (may be shared by every layer). */
    params?: UniformSlot;
    /** u32 [kvHeads][idxStride]; idxStride >= the largest k used. */
    idx: GPUBuffer;
    idxStride: number;
  },
): KernelWithParams {
  const pipeline = computePipeline(ctx, radixSelectWgsl(o), 'topk.radixSelect');
  const params = paramsWriter(ctx, 'topk.select.params', o.params);
  const group = bindGroup(ctx, pipeline, [params.binding, o.values, o.state, o.idx]);
  return {
    encode(pass, args) {
      params.write(args, o.capacity);
      if (Math.min(args.k, args.kvLen) > o.idxStride) {
        throw new Error(`top-K: k ${args.k} exceeds the index buffer's row of ${o.idxStride}`);
      }
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(o.kvHeads);
    },
  };
}

/** Aggregate + pool + select, for one layer. Runs only when the layer's state flag says "full step". */
export function createTopK(
  ctx: GpuContext,
  o: AggregatePoolOptions & { idx: GPUBuffer; idxStride: number },
): KernelWithParams {
  const pool = createAggregatePool(ctx, o);
  const selectTop = createRadixSelect(ctx, { ...o, values: o.pooled });
  return {
    encode(pass, args) {
      pool.encode(pass, args);
      selectTop.encode(pass, args);
    },
  };
}
