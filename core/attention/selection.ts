// The top-K selection of Recycled Attention and SnapKV for all layers of a model in one set of dispatches.
//
// Each layer pools its attention probabilities into its own rows of `pooled` right after its attention (the logits
// scratch is shared, and the next layer overwrites it); the layer then asks for the selection (request). After the
// last layer the engine calls encodePending: one radix select and one rank run over every layer's rows, and the
// workgroups of layers on a recycled step exit at once (each reads its layer's state flag).
//
// Why: under the dynamic schedule the GPU decides per layer and per step whether a layer refreshes, so the host has
// to encode the selection on every step. Per layer that was 5 early-exit dispatches × layers (80 on the 1B shape);
// here it is 5 per step.
import { STATE } from '../../kernels/decodeAttention/decodeAttention.wgsl';
import type { GpuContext } from '../../kernels/gpuContext';
import { align, storageBuffer } from '../../kernels/gpuUtil';
import { createRankSelection, rankScratchBytes } from '../../kernels/schedule/schedule';
import { createRadixSelect } from '../../kernels/topk/topk';
import type { SelectLayers } from '../../kernels/topk/topk.wgsl';
import type { UniformSlot } from '../../kernels/uniforms';
import { type AttentionPolicy, displacesSelection, maxK, selectsTopK } from './policy';

export interface ModelSelection {
  readonly idxStride: number;
  /** Layer `layer`'s pooled rows, f32 [kvHeads][capacity] (the top-K's input; the rank reads them after it). */
  pooled(layer: number): GPUBufferBinding;
  /** Layer `layer`'s selected positions, u32 [kvHeads][idxStride]. */
  indices(layer: number): GPUBufferBinding;
  /** A layer whose step may be full asks for the selection of this step (every layer of a step asks alike). */
  request(kvLen: number, k: number): void;
  /** Encodes the select (and the rank) once if a layer asked since the last call. */
  encodePending(pass: GPUComputePassEncoder): void;
  destroy(): void;
}

export interface ModelSelectionOptions {
  layers: number;
  kvHeads: number;
  capacity: number;
  idxStride: number;
  /** The layers' state records: layer i's at byte offset states.offset + i × stateStride. */
  states: GPUBufferBinding;
  stateStride: number;
  /** Rank each selection strongest first (the policies that displace selected positions: recycled). */
  rank: boolean;
  /** (kvLen, k) scalars; own buffer when absent (may be shared with the layers' pooling). */
  params?: UniformSlot;
}

export function createModelSelection(ctx: GpuContext, o: ModelSelectionOptions): ModelSelection {
  const { layers, kvHeads, capacity, idxStride } = o;
  if (!Number.isInteger(layers) || layers < 1) throw new Error(`selection: layers must be >= 1 (got ${layers})`);
  const offsetAlign = ctx.device.limits.minStorageBufferOffsetAlignment;
  if (layers > 1 && o.stateStride % offsetAlign !== 0) {
    throw new Error(`selection: state records ${o.stateStride} B apart are not ${offsetAlign}-byte aligned`);
  }
  // Each layer's rows start at an offset a layer's kernels can bind.
  const pooledBytes = kvHeads * capacity * 4;
  const idxBytes = kvHeads * idxStride * 4;
  const pooledStride = align(pooledBytes, offsetAlign);
  const idxLayerStride = align(idxBytes, offsetAlign);
  const pooled = storageBuffer(ctx, pooledStride * (layers - 1) + pooledBytes, 'selection.pooled');
  const indices = storageBuffer(ctx, idxLayerStride * (layers - 1) + idxBytes, 'selection.indices');
  const strides: SelectLayers = {
    layers,
    valuesStride: pooledStride / 4,
    idxLayerStride: idxLayerStride / 4,
    stateStride: o.stateStride / 4,
  };
  const states: GPUBufferBinding = {
    buffer: o.states.buffer,
    offset: o.states.offset ?? 0,
    size: o.stateStride * (layers - 1) + STATE.words * 4,
  };
  const select = createRadixSelect(ctx, {
    kvHeads,
    capacity,
    values: pooled,
    state: states,
    params: o.params,
    idx: indices,
    idxStride,
    layers: strides,
  });
  const rankScratch = o.rank
    ? storageBuffer(ctx, rankScratchBytes(kvHeads, idxStride, layers), 'selection.rank')
    : null;
  const rank =
    rankScratch &&
    createRankSelection(ctx, {
      kvHeads,
      capacity,
      idxStride,
      pooled,
      state: states,
      idx: indices,
      scratch: rankScratch,
      layers: strides,
    });
  let pending: { kvLen: number; k: number } | null = null;
  const checkLayer = (layer: number) => {
    if (!Number.isInteger(layer) || layer < 0 || layer >= layers) {
      throw new Error(`selection: layer ${layer} outside 0..${layers - 1}`);
    }
  };
  return {
    idxStride,
    pooled(layer) {
      checkLayer(layer);
      return { buffer: pooled, offset: layer * pooledStride, size: pooledBytes };
    },
    indices(layer) {
      checkLayer(layer);
      return { buffer: indices, offset: layer * idxLayerStride, size: idxBytes };
    },
    request(kvLen, k) {
      if (pending && (pending.kvLen !== kvLen || pending.k !== k)) {
        throw new Error(
          `selection: layers of one step asked for different selections (kvLen ${pending.kvLen}, k ${pending.k} ` +
            `and kvLen ${kvLen}, k ${k})`,
        );
      }
      pending = { kvLen, k };
    },
    encodePending(pass) {
      if (!pending) return;
      select.encode(pass, pending);
      rank?.encode(pass);
      pending = null;
    },
    destroy() {
      select.destroy();
      rankScratch?.destroy();
      pooled.destroy();
      indices.destroy();
    },
  };
}

/** The selection a model's layers share under `policy`; null for policies that select nothing (full, streaming). */
export function createPolicySelection(
  ctx: GpuContext,
  policy: AttentionPolicy,
  o: Omit<ModelSelectionOptions, 'idxStride' | 'rank'>,
): ModelSelection | null {
  if (!selectsTopK(policy)) return null;
  return createModelSelection(ctx, {
    ...o,
    idxStride: maxK(policy.k, o.capacity),
    rank: displacesSelection(policy),
  });
}
