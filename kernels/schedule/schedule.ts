// Host wrappers of the per-layer schedule kernels (decide before the attention, commit after it).
import { type GpuContext, isCpuAdapter } from '../gpuContext';
import { bindGroup, computePipeline } from '../gpuUtil';
import { ONE_LAYER } from '../topk/topk';
import type { SelectLayers } from '../topk/topk.wgsl';
import { ownUniform, type UniformSlot } from '../uniforms';
import {
  commitWgsl,
  DECIDE_PARAMS,
  decideWgsl,
  POLICY_CODE,
  RANK_WORKGROUP,
  RANK_WORKGROUP_CPU,
  rankScratchRow,
  rankSelectionWgsl,
} from './schedule.wgsl';

export type PolicyKind = keyof typeof POLICY_CODE;

export interface DecideArgs {
  policy: PolicyKind;
  kvLen: number;
  /** Top-K budget for this kvLen (streaming: sinks + window). */
  k: number;
  /** Full step regardless of the query (fixed-stride step, or the prefill seed). */
  forceFull: boolean;
  /** Dynamic schedule: compare the query with the saved one this step. */
  checkDynamic: boolean;
  /** Cosine threshold: below it the layer goes full. */
  sim: number;
  sinks: number;
  /** Count this call as a decode step in the state counters (false for the prefill seed). */
  countStep: boolean;
  /** Query buffer for this call when not the one given at creation (the prefill seed). */
  q?: GPUBuffer;
}

export interface DecideKernel {
  encode(pass: GPUComputePassEncoder, args: DecideArgs): void;
}

export function createDecide(
  ctx: GpuContext,
  o: {
    numHeads: number;
    headDim: number;
    q: GPUBuffer;
    savedQuery: GPUBuffer;
    state: GPUBuffer | GPUBufferBinding;
    /** Per-use scalars; its own buffer when absent (may be shared by every layer's decide). */
    params?: UniformSlot;
    /** On full steps of a selecting policy, record lastFullLen and nSel for the coming selection (saves the commit
     * kernel's dispatch); false when the commit kernel measures the recall and records them itself. */
    commitsSelection: boolean;
  },
): DecideKernel {
  const pipeline = computePipeline(ctx, decideWgsl(o), 'recycled.decide');
  const params = new ArrayBuffer(DECIDE_PARAMS.words * 4);
  const u32 = new Uint32Array(params);
  const f32 = new Float32Array(params);
  const uniform = o.params ?? ownUniform(ctx, params.byteLength, 'recycled.decide.params');
  const groups = new Map<GPUBuffer, GPUBindGroup>();
  const groupFor = (q: GPUBuffer) => {
    let g = groups.get(q);
    if (!g) {
      g = bindGroup(ctx, pipeline, [uniform.binding, q, o.savedQuery, o.state]);
      groups.set(q, g);
    }
    return g;
  };
  return {
    encode(pass, a: DecideArgs) {
      if (!Number.isInteger(a.kvLen) || a.kvLen < 1) throw new Error(`decide: kvLen must be >= 1 (got ${a.kvLen})`);
      if (!Number.isInteger(a.k) || a.k < 1) throw new Error(`decide: k must be a positive integer (got ${a.k})`);
      if (a.policy === 'streaming' && a.k <= a.sinks && a.kvLen > a.k) {
        throw new Error(`decide: streaming needs k (${a.k}) > sinks (${a.sinks}) to keep the current token`);
      }
      u32[DECIDE_PARAMS.kvLen] = a.kvLen;
      u32[DECIDE_PARAMS.k] = a.k;
      u32[DECIDE_PARAMS.policy] = POLICY_CODE[a.policy];
      u32[DECIDE_PARAMS.forceFull] = a.forceFull ? 1 : 0;
      u32[DECIDE_PARAMS.checkDynamic] = a.checkDynamic ? 1 : 0;
      u32[DECIDE_PARAMS.sinks] = a.sinks;
      u32[DECIDE_PARAMS.countStep] = a.countStep ? 1 : 0;
      f32[DECIDE_PARAMS.sim] = a.sim;
      uniform.write(u32);
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, groupFor(a.q ?? o.q));
      pass.dispatchWorkgroups(1);
    },
  };
}

export interface CommitKernel {
  /** `displaces`: the policy keeps the attended set at K (recycled), for the recall over what a step attends. */
  encode(pass: GPUComputePassEncoder, args: { kvLen: number; k: number; displaces: boolean }): void;
}

/** The recall statistic (a pass over the previous selection per query head), then lastFullLen and nSel: only when
 * the policy measures recall (bench, CLI); otherwise the decide kernel records them. */
export function createCommit(
  ctx: GpuContext,
  o: {
    numHeads: number;
    kvHeads: number;
    capacity: number;
    idxStride: number;
    scores: GPUBuffer;
    headStats: GPUBuffer;
    idx: GPUBuffer | GPUBufferBinding;
    state: GPUBuffer | GPUBufferBinding;
    /** (kvLen, k) scalars; its own buffer when absent (may be shared with the top-K kernels of every layer). */
    params?: UniformSlot;
  },
): CommitKernel {
  const pipeline = computePipeline(ctx, commitWgsl(o), 'recycled.commit');
  const words = new Uint32Array(4);
  const uniform = o.params ?? ownUniform(ctx, words.byteLength, 'recycled.commit.params');
  const group = bindGroup(ctx, pipeline, [uniform.binding, o.scores, o.headStats, o.idx, o.state]);
  return {
    encode(pass, { kvLen, k, displaces }) {
      if (!Number.isInteger(kvLen) || kvLen < 1 || kvLen > o.capacity) {
        throw new Error(`commit: kvLen ${kvLen} outside 1..${o.capacity}`);
      }
      if (Math.min(k, kvLen) > o.idxStride) throw new Error(`commit: k ${k} exceeds the index row ${o.idxStride}`);
      words[0] = kvLen;
      words[1] = k;
      words[2] = displaces ? 1 : 0;
      uniform.write(words);
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(1);
    },
  };
}

export interface RankSelectionKernel {
  encode(pass: GPUComputePassEncoder): void;
}

/** Sort scratch for rankSelection: u32 pairs [layers × kvHeads][pow2 >= idxStride]. */
export function rankScratchBytes(kvHeads: number, idxStride: number, layers = 1): number {
  return layers * kvHeads * rankScratchRow(idxStride) * 8;
}

/** Orders each KV head's selection strongest first (runs on full steps only; exits on recycled steps). */
export function createRankSelection(
  ctx: GpuContext,
  o: {
    kvHeads: number;
    capacity: number;
    idxStride: number;
    /** f32 [kvHeads][capacity] per layer: the pooled scores the top-K selected from (still in place after it). */
    pooled: GPUBuffer | GPUBufferBinding;
    /** The layers' state records (one record for one layer). */
    state: GPUBuffer | GPUBufferBinding;
    idx: GPUBuffer | GPUBufferBinding;
    /** rankScratchBytes(kvHeads, idxStride, layers) bytes or more. */
    scratch: GPUBuffer;
    /** Invocations per workgroup (default RANK_WORKGROUP_CPU on a CPU adapter, else RANK_WORKGROUP). */
    workgroupSize?: number;
    /** Rank several layers' selections in one dispatch (as the radix select does); one layer when absent. */
    layers?: SelectLayers;
  },
): RankSelectionKernel {
  const layers = o.layers ?? ONE_LAYER;
  const scratchBytes = rankScratchBytes(o.kvHeads, o.idxStride, layers.layers);
  if (o.scratch.size < scratchBytes) {
    throw new Error(`rank selection: scratch of ${o.scratch.size} B < ${scratchBytes} B`);
  }
  const workgroupSize = o.workgroupSize ?? (isCpuAdapter(ctx.adapterInfo) ? RANK_WORKGROUP_CPU : RANK_WORKGROUP);
  if (!Number.isInteger(workgroupSize) || workgroupSize < 1 || workgroupSize > 256) {
    throw new Error(`rank selection: workgroupSize must be an integer in 1..256 (got ${workgroupSize})`);
  }
  const wgsl = rankSelectionWgsl({ ...o, ...layers, workgroupSize });
  const pipeline = computePipeline(ctx, wgsl, 'recycled.rankSelection');
  const group = bindGroup(ctx, pipeline, [o.pooled, o.state, o.idx, o.scratch]);
  return {
    encode(pass) {
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(layers.layers * o.kvHeads);
    },
  };
}
