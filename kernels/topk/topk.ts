// Host wrappers of the top-K kernels: GQA max-aggregation + max-pool (per layer), then a radix select parallel over
// chunks of the context, KV heads and layers (three histogram passes, count, write; a row in one chunk skips the
// count).
import { type GpuContext, isCpuAdapter } from '../gpuContext';
import { bindGroup, computePipeline, storageBuffer } from '../gpuUtil';
import { ownUniform, type UniformSlot } from '../uniforms';
import {
  aggregatePoolLanesWgsl,
  aggregatePoolWgsl,
  POOL_TILE,
  radixSelectWgsl,
  SELECT_BINS,
  SELECT_MIN_CHUNK,
  SELECT_ROUNDS,
  SELECT_WORKGROUP,
  type SelectLayers,
  type SelectPass,
} from './topk.wgsl';

export interface TopKStepArgs {
  /** Positions to select from: 0..kvLen-1. */
  kvLen: number;
  /** How many to keep per KV head; values above kvLen keep all. */
  k: number;
}

interface KernelWithParams {
  encode(pass: GPUComputePassEncoder, args: TopKStepArgs): void;
}

/** A kernel with buffers of its own. */
interface OwningKernel extends KernelWithParams {
  destroy(): void;
}

function paramsWriter(ctx: GpuContext, label: string, slot?: UniformSlot) {
  // Only (kvLen, k): the slot may be shared with the schedule's commit kernel, whose third word (displaces) must
  // survive this write.
  const words = new Uint32Array(2);
  const uniform = slot ?? ownUniform(ctx, 16, label);
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
  /** Each q head's (max logit, sum of exp) as the combine kernel writes them ... */
  headStats?: GPUBuffer;
  /** ... or the attention's split partials and its uniform (numSplits), which the pooling reduces itself (when the
   * combine runs in the o matvec's prologue: no head-stats dispatch). Exactly one of the two. */
  splits?: { partMaxSum: GPUBuffer; attentionParams: GPUBufferBinding };
  state: GPUBuffer | GPUBufferBinding;
  /** (kvLen, k) scalars; own buffer when absent (may be shared by every layer). */
  params?: UniformSlot;
  /** f32 [kvHeads][capacity]: the layer's rows of the model's pooled values. */
  pooled: GPUBuffer | GPUBufferBinding;
  /** 'tiled': a workgroup of POOL_TILE with the tile in workgroup memory (GPUs); 'lanes': aggregatePoolLanesWgsl
   * (default on a CPU adapter). */
  poolKernel?: 'tiled' | 'lanes';
}

export function createAggregatePool(ctx: GpuContext, o: AggregatePoolOptions): KernelWithParams {
  if (o.numHeads % o.kvHeads !== 0) throw new Error('top-K: numHeads must be a multiple of kvHeads');
  if ((o.headStats === undefined) === (o.splits === undefined)) {
    throw new Error('top-K pooling: give either headStats or the split partials, not both or neither');
  }
  const lanes = (o.poolKernel ?? (isCpuAdapter(ctx.adapterInfo) ? 'lanes' : 'tiled')) === 'lanes';
  const shape = { ...o, stats: o.splits ? ('splits' as const) : ('headStats' as const) };
  const pipeline = computePipeline(
    ctx,
    lanes ? aggregatePoolLanesWgsl(shape) : aggregatePoolWgsl(shape),
    `topk.aggregatePool${lanes ? '.lanes' : ''}`,
  );
  const params = paramsWriter(ctx, 'topk.pool.params', o.params);
  const stats = o.splits ? [o.splits.partMaxSum] : [o.headStats as GPUBuffer];
  const after = o.splits ? [o.splits.attentionParams] : [];
  const group = bindGroup(ctx, pipeline, [params.binding, o.scores, ...stats, o.state, o.pooled, ...after]);
  return {
    encode(pass, args) {
      params.write(args, o.capacity);
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(Math.ceil(args.kvLen / POOL_TILE), o.kvHeads);
    },
  };
}

/** What the radix select reads and writes. */
export interface RadixSelectOptions {
  kvHeads: number;
  capacity: number;
  /** f32 [kvHeads][capacity] per layer, every value >= 0. */
  values: GPUBuffer | GPUBufferBinding;
  /** The layers' state records (one record for one layer). */
  state: GPUBuffer | GPUBufferBinding;
  /** (kvLen, k) scalars; own buffer when absent (may be shared by every layer). */
  params?: UniformSlot;
  /** u32 [kvHeads][idxStride] per layer; idxStride >= the largest k used. */
  idx: GPUBuffer | GPUBufferBinding;
  idxStride: number;
  /** Select for several layers in each dispatch (their rows at these strides in values, idx and state); one layer
   * when absent. */
  layers?: SelectLayers;
  /** Fewest positions per chunk (a multiple of SELECT_WORKGROUP; default SELECT_MIN_CHUNK). Tests lower it to get
   * many chunks on short rows. */
  minChunk?: number;
  /** Most chunks a row is split into. Default: as many as minChunk allows on a GPU; 1 on a CPU adapter, which runs a
   * few workgroups at a time anyway and pays each extra one its histogram's clear and merge. */
  maxChunks?: number;
}

export function createRadixSelect(ctx: GpuContext, o: RadixSelectOptions): OwningKernel {
  const minChunk = o.minChunk ?? SELECT_MIN_CHUNK;
  if (!Number.isInteger(minChunk) || minChunk < SELECT_WORKGROUP || minChunk % SELECT_WORKGROUP !== 0) {
    throw new Error(`top-K: minChunk must be a positive multiple of ${SELECT_WORKGROUP} (got ${minChunk})`);
  }
  const maxChunks = o.maxChunks ?? (isCpuAdapter(ctx.adapterInfo) ? 1 : Math.ceil(o.capacity / minChunk));
  if (!Number.isInteger(maxChunks) || maxChunks < 1) {
    throw new Error(`top-K: maxChunks must be a positive integer (got ${maxChunks})`);
  }
  const layers = o.layers ?? ONE_LAYER;
  const rows = layers.layers * o.kvHeads; // one row per KV head of each layer
  // Zero at creation; the write pass clears the histograms again after each selection.
  const hist = storageBuffer(ctx, rows * SELECT_ROUNDS * SELECT_BINS * 4, 'topk.select.hist');
  const chunkCounts = storageBuffer(ctx, rows * maxChunks * 8, 'topk.select.chunkCounts');
  const selected = storageBuffer(ctx, rows * 8, 'topk.select.selected');
  const params = paramsWriter(ctx, 'topk.select.params', o.params);
  const common = [params.binding, o.values, o.state, hist];
  const pass = (sp: SelectPass, buffers: (GPUBuffer | GPUBufferBinding)[]) => {
    const wgsl = radixSelectWgsl({ ...o, ...layers, maxChunks, pass: sp });
    const pipeline = computePipeline(ctx, wgsl, `topk.select.${sp.kind}`);
    return { pipeline, group: bindGroup(ctx, pipeline, buffers) };
  };
  const histograms = Array.from({ length: SELECT_ROUNDS }, (_, round) => pass({ kind: 'histogram', round }, common));
  // Rows in several chunks: only where maxChunks allows them (not compiled on CPU adapters).
  const chunked = maxChunks > 1 && [
    ...histograms,
    pass({ kind: 'count' }, [...common, chunkCounts, selected]),
    pass({ kind: 'write' }, [...common, chunkCounts, selected, o.idx]),
  ];
  const oneChunk = [...histograms, pass({ kind: 'writeOneChunk' }, [...common, o.idx])];
  return {
    encode(computePass, args) {
      params.write(args, o.capacity);
      if (Math.min(args.k, args.kvLen) > o.idxStride) {
        throw new Error(`top-K: k ${args.k} exceeds the index buffer's row of ${o.idxStride}`);
      }
      const chunks = Math.min(maxChunks, Math.ceil(args.kvLen / minChunk));
      for (const p of chunked && chunks > 1 ? chunked : oneChunk) {
        computePass.setPipeline(p.pipeline);
        computePass.setBindGroup(0, p.group);
        computePass.dispatchWorkgroups(chunks, rows);
      }
    },
    destroy() {
      for (const b of [hist, chunkCounts, selected]) b.destroy();
    },
  };
}

/** The strides of a single layer's rows (unused: every row is in layer 0). */
export const ONE_LAYER: SelectLayers = { layers: 1, valuesStride: 0, idxLayerStride: 0, stateStride: 0 };
