// Host wrapper of the split-K decode attention: the split kernel, then the combine kernel (or the consumer's
// combine prologue, with the head-stats kernel where the recall statistic needs the per-head statistics); bind groups
// built once.
import { type GpuContext, isCpuAdapter } from '../gpuContext';
import { bindGroup, computePipeline, STORAGE, storageBuffer, UNIFORM } from '../gpuUtil';
import type { KvCacheLayout } from '../types';
import { ownUniform, type UniformSlot } from '../uniforms';
import {
  ATTENTION_WORKGROUP,
  combineWgsl,
  headStatsWgsl,
  MAX_SPLITS,
  STATE,
  splitAttentionWgsl,
} from './decodeAttention.wgsl';
import { lanesKernelFits, lanesQueryBytes, splitAttentionLanesWgsl } from './decodeAttentionLanes.wgsl';

/** Positions per split the host aims for; the split count is fixed per step from kvLen (an upper bound of the
 * attended list), so a recycled step with a short list gets short chunks rather than idle workgroups. On a GPU short
 * chunks keep every core busy at any context length. */
export const TARGET_CHUNK = 256;
/** The same on a CPU adapter, which runs a few workgroups at a time anyway and pays each one its query load,
 * barriers and reductions: lavapipe's split kernel at 8K (1B shape) took 33 ms per layer at 256, 28 at 1024. */
export const CPU_TARGET_CHUNK = 1024;

/** Buffers one decode step writes and the next kernels read. Shareable by all layers of one model (layers are
 * encoded one after another, and each layer's top-K reads them before the next layer's attention writes them). */
export interface DecodeAttentionScratch {
  numHeads: number;
  capacity: number;
  headDim: number;
  /** f32 [numHeads][capacity]: scaled logits q.k by virtual index (= position on full steps). */
  scores: GPUBuffer;
  /** f32 [numHeads][2]: (max logit, sum of exp(logit - max)) so that p = exp(score - max) / sum. */
  headStats: GPUBuffer;
  partAcc: GPUBuffer;
  partMaxSum: GPUBuffer;
}

export function createDecodeAttentionScratch(
  ctx: GpuContext,
  dims: { numHeads: number; capacity: number; headDim: number },
): DecodeAttentionScratch {
  const { numHeads, capacity, headDim } = dims;
  return {
    ...dims,
    scores: storageBuffer(ctx, numHeads * capacity * 4, 'attn.scores'),
    headStats: storageBuffer(ctx, numHeads * 2 * 4, 'attn.headStats'),
    partAcc: storageBuffer(ctx, numHeads * MAX_SPLITS * headDim * 4, 'attn.partAcc'),
    partMaxSum: storageBuffer(ctx, numHeads * MAX_SPLITS * 2 * 4, 'attn.partMaxSum'),
  };
}

export interface SplitAttentionOptions {
  layout: KvCacheLayout;
  numHeads: number;
  /** KV cache of the layer, [kvHeads][capacity][headDim] in layout.dtype. */
  k: GPUBuffer;
  v: GPUBuffer;
  /** f32 [numHeads][headDim], RoPE applied; with ropeNewToken the qkv projection's row before RoPE. */
  q: GPUBuffer;
  /** The decode step's fusion of RoPE and the KV store: `q` is the row [numHeads + 2 kvHeads][headDim] of the qkv
   * projection before RoPE; the kernel rotates the queries, and rotates and stores the new token's k and v at
   * position kvLen - 1 of `k`/`v` itself. invFreq: f32 [headDim / 2] (kernels/rope uploadInverseFrequencies). */
  ropeNewToken?: { invFreq: GPUBuffer };
  /** f32 [numHeads][headDim]. */
  out: GPUBuffer;
  /** u32 [kvHeads][idxStride]: selected positions (read on recycled steps only). */
  idx: GPUBuffer | GPUBufferBinding;
  idxStride: number;
  /** u32 state words (STATE): flag, lastFullLen, nSel... (a whole buffer or this layer's record in a shared one) */
  state: GPUBuffer | GPUBufferBinding;
  scratch: DecodeAttentionScratch;
  /** Where the per-use scalars (kvLen, split count, scale) go; its own buffer when absent. May be shared by the
   * split attention of every layer (same scalars in one step). */
  params?: UniformSlot;
  /** Positions per split (default: TARGET_CHUNK on a GPU, CPU_TARGET_CHUNK on a CPU adapter). */
  targetChunk?: number;
  /** The split kernel: 'tiled' = decodeAttention.wgsl.ts (workgroup tiles; GPUs), 'lanes' =
   * decodeAttentionLanes.wgsl.ts (each lane owns its positions; CPU adapters). Default: lanes on a CPU adapter where
   * the shape fits it (lanesKernelFits), else tiled. */
  kernel?: 'tiled' | 'lanes';
}

export interface SplitAttention {
  /** Encodes split + combine (into `out`, and headStats) for kvLen positions: the current token already at kvLen-1,
   * or, with ropeNewToken, stored there by the split kernel. `q` replaces the query buffer (not with ropeNewToken). */
  encode(pass: GPUComputePassEncoder, args: { kvLen: number; q?: GPUBuffer }): void;
  /** Encodes the split kernel only: the output stays in the scratch partials (partAcc, partMaxSum) for a consumer
   * that combines them itself (createMatvec's splitCombine); `splitCount` is the uniform it reads the split count
   * from (word 1). */
  encodeSplits(pass: GPUComputePassEncoder, args: { kvLen: number }): void;
  /** After encodeSplits: the per-head (max logit, sum of exp) into scratch.headStats (what the top-K reads). */
  encodeHeadStats(pass: GPUComputePassEncoder): void;
  readonly splitCount: GPUBufferBinding;
  /** Positions per split this attention aims for (splitCountFor's second argument). */
  readonly targetChunk: number;
  /** Which split kernel runs. */
  readonly kernel: 'tiled' | 'lanes';
}

export function validateAttentionShape(layout: KvCacheLayout, numHeads: number): void {
  const { kvHeads, headDim, capacity } = layout;
  for (const [name, value] of Object.entries({ numHeads, kvHeads, headDim, capacity })) {
    if (!Number.isInteger(value) || value < 1) throw new Error(`decode attention: ${name} must be a positive integer`);
  }
  if (numHeads % kvHeads !== 0) {
    throw new Error(`decode attention: numHeads (${numHeads}) must be a multiple of kvHeads (${kvHeads}) for GQA`);
  }
  if (numHeads / kvHeads > 16) throw new Error(`decode attention: GQA group ${numHeads / kvHeads} > 16`);
  if (headDim > 256) throw new Error(`decode attention: headDim ${headDim} > 256 is not supported`);
  if (headDim % 4 !== 0) throw new Error(`decode attention: headDim ${headDim} must be a multiple of 4 (vec4 loads)`);
}

export function splitCountFor(kvLen: number, targetChunk = TARGET_CHUNK): number {
  return Math.min(MAX_SPLITS, Math.max(1, Math.ceil(kvLen / targetChunk)));
}

export function createSplitAttention(ctx: GpuContext, o: SplitAttentionOptions): SplitAttention {
  const { layout, numHeads, scratch } = o;
  validateAttentionShape(layout, numHeads);
  if (layout.dtype === 'f16' && !ctx.f16) throw new Error('decode attention: f16 KV cache needs shader-f16');
  if (scratch.numHeads !== numHeads || scratch.capacity !== layout.capacity || scratch.headDim !== layout.headDim) {
    throw new Error('decode attention: scratch buffers were made for another shape (heads, capacity, headDim)');
  }
  const targetChunk = o.targetChunk ?? (isCpuAdapter(ctx.adapterInfo) ? CPU_TARGET_CHUNK : TARGET_CHUNK);
  if (!Number.isInteger(targetChunk) || targetChunk < 1) {
    throw new Error(`decode attention: targetChunk must be a positive integer (got ${targetChunk})`);
  }
  const rope = o.ropeNewToken;
  if (rope) {
    if (o.q.size < (numHeads + 2 * layout.kvHeads) * layout.headDim * 4) {
      throw new Error('decode attention: the qkv buffer holds less than one row of q, k and v heads');
    }
    if (rope.invFreq.size < (layout.headDim / 2) * 4) {
      throw new Error('decode attention: invFreq holds fewer than headDim / 2 values');
    }
  }
  const shape = { kvDtype: layout.dtype, numHeads, ...layout, idxStride: o.idxStride, ropeNewToken: !!rope };
  const maxUniform = ctx.device.limits.maxUniformBufferBindingSize;
  const kernel = o.kernel ?? (isCpuAdapter(ctx.adapterInfo) && lanesKernelFits(shape, maxUniform) ? 'lanes' : 'tiled');
  if (kernel === 'lanes' && !lanesKernelFits(shape, maxUniform)) {
    throw new Error(
      `decode attention: the lanes kernel does not take ${numHeads}q/${layout.kvHeads}kv d${layout.headDim}`,
    );
  }
  const partial = computePipeline(
    ctx,
    kernel === 'lanes' ? splitAttentionLanesWgsl(shape) : splitAttentionWgsl(shape),
    `attn.split.${kernel}`,
  );
  const combine = computePipeline(ctx, combineWgsl(shape), 'attn.combine');
  const headStats = computePipeline(ctx, headStatsWgsl(shape), 'attn.headStats');
  const params = new ArrayBuffer(16);
  const paramsU32 = new Uint32Array(params);
  const paramsF32 = new Float32Array(params);
  paramsF32[2] = 1 / Math.sqrt(layout.headDim);
  const uniform = o.params ?? ownUniform(ctx, 16, 'attn.params');
  const combineGroup = bindGroup(ctx, combine, [
    uniform.binding,
    scratch.partAcc,
    scratch.partMaxSum,
    o.out,
    scratch.headStats,
  ]);
  const headStatsGroup = bindGroup(ctx, headStats, [uniform.binding, scratch.partMaxSum, scratch.headStats]);
  const partialGroups = new Map<GPUBuffer, GPUBindGroup>();
  const partialGroup = (q: GPUBuffer): GPUBindGroup => {
    let group = partialGroups.get(q);
    if (!group) {
      if (kernel === 'lanes' && (q.usage & UNIFORM) === 0) {
        throw new Error('decode attention: the lanes kernel reads q through a uniform binding; q lacks UNIFORM usage');
      }
      group = bindGroup(ctx, partial, [
        uniform.binding,
        kernel === 'lanes' ? { buffer: q, size: lanesQueryBytes(shape) } : q,
        o.k,
        o.v,
        o.idx,
        o.state,
        scratch.scores,
        scratch.partAcc,
        scratch.partMaxSum,
        ...(rope ? [rope.invFreq] : []),
      ]);
      partialGroups.set(q, group);
    }
    return group;
  };
  partialGroup(o.q);

  const encodeSplits = (pass: GPUComputePassEncoder, kvLen: number, q: GPUBuffer) => {
    if (!Number.isInteger(kvLen) || kvLen < 1 || kvLen > layout.capacity) {
      throw new Error(`decode attention: kvLen ${kvLen} outside 1..${layout.capacity}`);
    }
    const numSplits = splitCountFor(kvLen, targetChunk);
    paramsU32[0] = kvLen;
    paramsU32[1] = numSplits;
    uniform.write(paramsU32);
    pass.setPipeline(partial);
    pass.setBindGroup(0, partialGroup(q));
    pass.dispatchWorkgroups(numSplits, layout.kvHeads);
  };

  return {
    splitCount: uniform.binding,
    targetChunk,
    kernel,
    encodeSplits(pass, { kvLen }) {
      encodeSplits(pass, kvLen, o.q);
    },
    encodeHeadStats(pass) {
      pass.setPipeline(headStats);
      pass.setBindGroup(0, headStatsGroup);
      pass.dispatchWorkgroups(Math.ceil(numHeads / ATTENTION_WORKGROUP));
    },
    encode(pass, { kvLen, q }) {
      if (rope && q && q !== o.q) throw new Error('decode attention: ropeNewToken reads the qkv row it was made with');
      encodeSplits(pass, kvLen, q ?? o.q);
      pass.setPipeline(combine);
      pass.setBindGroup(0, combineGroup);
      pass.dispatchWorkgroups(numHeads);
    },
  };
}

/** A state buffer that says "full step" forever: for plain full attention with no policy around it. */
export function fullAttentionState(ctx: GpuContext): GPUBuffer {
  const words = new Uint32Array(STATE.words);
  words[STATE.flag] = 1;
  return storageBuffer(ctx, words, 'attn.fullState');
}

/** A 4-byte index buffer for kernels that never run recycled steps. */
export function emptyIndexBuffer(ctx: GpuContext): GPUBuffer {
  return ctx.device.createBuffer({ size: 4, usage: STORAGE, label: 'attn.noIdx' });
}

export { ATTENTION_WORKGROUP };
