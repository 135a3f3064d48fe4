// Per-layer decode attention under an AttentionPolicy: full, Recycled (fixed/dynamic schedule), StreamingLLM, SnapKV.
// Model-agnostic: it sees one layer's KV buffers, the decode query and the output buffer.
//
// ENGINE CALL SEQUENCE (one object per layer; all layers may share one scratch from createDecodeAttentionScratch):
//
//   const scratch = createDecodeAttentionScratch(ctx, { numHeads, capacity, headDim });
//   const attn = layers.map((l) => createDecodeAttention(ctx, { layout, numHeads, k: l.k, v: l.v, q, out, policy,
//                                                               scratch }));
//   -- after prefill of a prompt of promptLen tokens (KV written for positions 0..promptLen-1):
//   for each layer: put the LAST prompt position's query (RoPE applied, f32 [numHeads][headDim]) in a buffer
//     (the decode `q` buffer, or pass another one as `q`; its query before RoPE in `scheduleQuery`), then
//     attn[i].seedFromPrefill(pass, { kvLen: promptLen, q? })   // full attention (writes `out`) + first top-K
//     K is fixed here for the whole generation: a fraction is taken of the prompt length.
//   (any policy; the engine may instead run the last prompt token as "step 0" of the decode loop and call
//   seedFromPrefill there in place of encodeStep.)
//   (With a model `selection` (selection.ts) the layers only pool and ask: call selection.encodePending(pass) after
//   the last layer, in the same pass, after the seed and after every step.)
//   -- submit that command buffer BEFORE the first encodeStep (the kernels' uniforms are rewritten per call).
//      (Skipping the seed is safe: each layer's first decode step is then full and makes the first selection.)
//   -- decode step s = 1, 2, 3, ... (the token at position kvLen-1 was just written into K/V; kvLen = promptLen + s):
//   per layer, inside the step's compute pass, after q (RoPE'd) and the KV append, before o_proj:
//     attn[i].encodeStep(pass, { kvLen, step: s })                // result in `out` (f32 [numHeads][headDim])
//   -- submit once per step (one command buffer per decode step). Nothing is read back per step.
//   -- after generation: await attn[i].readStats() per layer, then summarizeAttentionStats(policy, layerStats).
//   -- a new generation with the same policy: attn[i].reset() (then seed again); another policy: new objects.
//
// Per step the GPU does: decide (flag full/recycled, dynamic cosine rule on the query before RoPE, how much of the
// selection a recycled step still attends; counters; on full steps lastFullLen/nSel of the coming selection) ->
// split-K attention over the virtual key list (all positions, or the selection minus the displaced + appended; with
// ropeNewToken it also rotates q and stores the new k, v) + combine (or none: combineInConsumer) -> [full steps of
// top-K policies] [measureRecall only: (head statistics, when no combine ran), commit (recall statistic,
// lastFullLen/nSel)] -> aggregate/pool (from the combine's head statistics, or reducing the split partials itself)
// -> radix select -> [recycled] rank the selection strongest first (these two once for all layers with a model
// selection).
// Kernels not selected by the flag exit at once.

import {
  createDecodeAttentionScratch,
  createSplitAttention,
  type DecodeAttentionScratch,
} from '../../kernels/decodeAttention/decodeAttention';
import { STATE } from '../../kernels/decodeAttention/decodeAttention.wgsl';
import type { GpuContext } from '../../kernels/gpuContext';
import { readBuffer, storageBuffer, writeBuffer } from '../../kernels/gpuUtil';
import { createCommit, createDecide, type DecideArgs } from '../../kernels/schedule/schedule';
import { createAggregatePool } from '../../kernels/topk/topk';
import type { KvCacheLayout } from '../../kernels/types';
import type { UniformSlot } from '../../kernels/uniforms';
import type { AttentionPolicy } from './policy';
import {
  DEFAULT_SINKS,
  displacesSelection,
  dynamicThreshold,
  generationK as generationKOf,
  isDynamicCheckStep,
  isStrideFullStep,
  maxK,
  selectsTopK,
  validateAttentionPolicy,
} from './policy';
import { createPolicySelection, type ModelSelection } from './selection';

export interface DecodeAttentionOptions {
  layout: KvCacheLayout;
  numHeads: number;
  /** This layer's KV cache, [kvHeads][capacity][headDim] in layout.dtype. */
  k: GPUBuffer;
  v: GPUBuffer;
  /** Decode query, f32 [numHeads][headDim], RoPE applied. */
  q: GPUBuffer;
  /** The same query before RoPE (its first numHeads * headDim floats), compared by the dynamic schedule; default q. */
  scheduleQuery?: GPUBuffer;
  /** Attention output, f32 [numHeads][headDim]. */
  out: GPUBuffer;
  /** The decode step's fusion of RoPE and the KV store: the attention reads the qkv projection's row before RoPE
   * ([numHeads + 2 kvHeads][headDim]), rotates the queries, and rotates and stores the new token's k and v at
   * position kvLen - 1 itself (no RoPE kernel before it; `q` is then not read). */
  ropeNewToken?: { qkv: GPUBuffer; invFreq: GPUBuffer };
  /** Leave the output as split partials (scratch.partAcc, partMaxSum; the split count in `splitCount`) for a
   * consumer that combines them (the o matvec's splitCombine prologue): no combine dispatch, `out` not written. */
  combineInConsumer?: boolean;
  policy: AttentionPolicy;
  /** Shared by all layers of a model; made here when absent. */
  scratch?: DecodeAttentionScratch;
  /** The per-step scalars of the kernels, in slots every layer shares (the engine writes them once per step);
   * each kernel's own buffer when absent. */
  params?: DecodeAttentionParams;
  /** This layer's state record (STATE.words u32) in a buffer the engine shares between layers (so one copy saves
   * every layer's state); a buffer of its own when absent. */
  state?: GPUBufferBinding;
  /** Top-K policies: the model's selection, which this layer pools into (its rows `layer`) and asks to run; the
   * engine encodes it once after the last layer (selection.ts). When absent the layer selects on its own, at once. */
  selection?: { shared: ModelSelection; layer: number };
}

/** Uniform slots for one step's scalars: the same values for every layer. */
export interface DecodeAttentionParams {
  attention: UniformSlot;
  decide: UniformSlot;
  /** (kvLen, k): commit and the top-K kernels. */
  topK: UniformSlot;
}

export interface LayerAttentionStats {
  /** Decode steps encoded (seed excluded) and how many of them were full for this layer (GPU counters). */
  steps: number;
  fullSteps: number;
  /** KV positions read over all steps (GPU counter), and what full attention would have read (host). */
  positionsRead: number;
  positionsFull: number;
  /** Full steps that measured recall, and the summed per-step mean (over q heads) probability mass captured by the
   * previous selection alone / by the previous selection plus the positions appended since. */
  recallSteps: number;
  recallTopKSum: number;
  recallWithAppendedSum: number;
}

export interface LayerDecodeAttention {
  readonly policy: AttentionPolicy;
  /** u32 [kvHeads][idxStride] selected positions (top-K policies) or the sinks (streaming). */
  readonly indices: GPUBufferBinding;
  readonly idxStride: number;
  /** The buffer holding this layer's u32 [STATE.words] state words (see STATE), at byte offset stateOffset. */
  readonly state: GPUBuffer;
  readonly stateOffset: number;
  readonly scratch: DecodeAttentionScratch;
  /** The uniform whose u32 word 1 is the split count of the last encoded step (combineInConsumer). */
  readonly splitCount: GPUBufferBinding;
  /** Full attention of the last prompt position into `out`, for every policy (the prompt is always attended in
   * full, so streaming is StreamingLLM with a full prefill). Recycled/SnapKV: also the first top-K and the saved
   * mean query. */
  seedFromPrefill(pass: GPUComputePassEncoder, args: { kvLen: number; q?: GPUBuffer; scheduleQuery?: GPUBuffer }): void;
  encodeStep(pass: GPUComputePassEncoder, args: { kvLen: number; step: number }): void;
  /** Captures the host-side state; the returned function restores it (the engine undoes discarded steps). */
  checkpoint(): () => void;
  /** One small readback; call after generation. */
  readStats(): Promise<LayerAttentionStats>;
  /** Clears the state for a new generation (same policy). */
  reset(): void;
  destroy(): void;
}

export function createDecodeAttention(ctx: GpuContext, o: DecodeAttentionOptions): LayerDecodeAttention {
  const { layout, numHeads, policy } = o;
  validateAttentionPolicy(policy);
  const { kvHeads, headDim, capacity } = layout;
  const scratch = o.scratch ?? createDecodeAttentionScratch(ctx, { numHeads, capacity, headDim });
  const sinks = policy.kind === 'streaming' ? (policy.sinks ?? DEFAULT_SINKS) : 0;
  const selecting = selectsTopK(policy);
  const idxStride = selecting ? maxK(policy.k, capacity) : Math.max(1, sinks);
  const ownState = o.state ? undefined : storageBuffer(ctx, STATE.words * 4, 'attn.state');
  const state: GPUBufferBinding = o.state ?? { buffer: ownState as GPUBuffer, offset: 0, size: STATE.words * 4 };
  const stateOffset = state.offset ?? 0;
  if (o.selection && !selecting) throw new Error(`decode attention: a ${policy.kind} policy selects nothing`);
  if (o.selection && o.selection.shared.idxStride !== idxStride) {
    throw new Error(
      `decode attention: the model selection's rows hold ${o.selection.shared.idxStride}, not ${idxStride}`,
    );
  }
  const displaces = displacesSelection(policy);
  // A layer used on its own (tests, the attention bench) selects with a selection of one layer.
  const ownSelection = o.selection
    ? null
    : createPolicySelection(ctx, policy, {
        layers: 1,
        kvHeads,
        capacity,
        states: state,
        stateStride: 0,
        params: o.params?.topK,
      });
  const selection = o.selection ?? (ownSelection && { shared: ownSelection, layer: 0 });
  const ownIndices = selection ? null : storageBuffer(ctx, kvHeads * idxStride * 4, 'attn.indices');
  const indices: GPUBufferBinding = selection
    ? selection.shared.indices(selection.layer)
    : { buffer: ownIndices as GPUBuffer, offset: 0, size: kvHeads * idxStride * 4 };
  const savedQuery = storageBuffer(ctx, headDim * 4, 'attn.savedQuery');
  const attention = createSplitAttention(ctx, {
    ...o,
    q: o.ropeNewToken?.qkv ?? o.q,
    ropeNewToken: o.ropeNewToken && { invFreq: o.ropeNewToken.invFreq },
    idx: indices,
    idxStride,
    state,
    scratch,
    params: o.params?.attention,
  });
  const measureRecall = selectsTopK(policy) && policy.measureRecall === true;
  const decide = createDecide(ctx, {
    numHeads,
    headDim,
    q: o.scheduleQuery ?? o.q,
    savedQuery,
    state,
    params: o.params?.decide,
    commitsSelection: selectsTopK(policy) && !measureRecall,
  });
  // Only the recall statistic needs a kernel between the attention and the top-K (decide records the rest).
  const commit =
    measureRecall &&
    createCommit(ctx, {
      numHeads,
      kvHeads,
      capacity,
      idxStride,
      idx: indices,
      state,
      scores: scratch.scores,
      headStats: scratch.headStats,
      params: o.params?.topK,
    });
  const pool =
    selection &&
    createAggregatePool(ctx, {
      numHeads,
      kvHeads,
      capacity,
      scores: scratch.scores,
      // With the combine in the o matvec no kernel writes the head statistics: the pooling reduces the splits.
      ...(o.combineInConsumer
        ? { splits: { partMaxSum: scratch.partMaxSum, attentionParams: attention.splitCount } }
        : { headStats: scratch.headStats }),
      state,
      pooled: selection.shared.pooled(selection.layer),
      params: o.params?.topK,
    });
  /** K of this generation, fixed at its first step (the prompt length); 0 = not yet. */
  let generationK = 0;
  // Host-side state (undone with the GPU state when pipelined steps are discarded: see checkpoint()).
  let seeded = false;
  let positionsFull = 0;
  // Full attention needs no decision: its state says "full" from reset on, no decide kernel runs, and the host
  // counts its steps.
  const plainFull = policy.kind === 'full';
  let hostSteps = 0;

  const kFor = (kvLen: number): number => {
    if (policy.kind === 'full') return kvLen;
    if (generationK === 0) generationK = generationKOf(policy.k, kvLen, policy.kind === 'streaming' ? sinks + 1 : 1);
    return generationK;
  };

  const attend = (pass: GPUComputePassEncoder, kvLen: number, q?: GPUBuffer) => {
    if (q && o.ropeNewToken) throw new Error('decode attention: with ropeNewToken the query is the qkv row');
    if (o.combineInConsumer) attention.encodeSplits(pass, { kvLen });
    else attention.encode(pass, { kvLen, q });
  };

  const encodeSelection = (pass: GPUComputePassEncoder, kvLen: number, k: number) => {
    // The recall statistic reads the per-head softmax statistics, which the combine kernel writes when it runs.
    if (o.combineInConsumer && commit) attention.encodeHeadStats(pass);
    if (commit) commit.encode(pass, { kvLen, k, displaces });
    pool?.encode(pass, { kvLen, k });
    selection?.shared.request(kvLen, k);
    ownSelection?.encodePending(pass);
  };

  const reset = () => {
    const words = new Uint32Array(STATE.words);
    if (plainFull) words[STATE.flag] = 1;
    writeBuffer(ctx, state.buffer, words, stateOffset);
    writeBuffer(ctx, savedQuery, new Float32Array(headDim));
    if (policy.kind === 'streaming') {
      // The sinks are the fixed part of the streaming list; the recent window is the "appended" range.
      const sinkRows = new Uint32Array(kvHeads * idxStride);
      for (let h = 0; h < kvHeads; h++) for (let i = 0; i < sinks; i++) sinkRows[h * idxStride + i] = i;
      writeBuffer(ctx, indices.buffer, sinkRows, indices.offset);
    }
    seeded = false;
    positionsFull = 0;
    generationK = 0;
    hostSteps = 0;
  };
  reset();

  const checkKvLen = (kvLen: number) => {
    if (!Number.isInteger(kvLen) || kvLen < 1 || kvLen > capacity) {
      throw new Error(`decode attention: kvLen ${kvLen} outside 1..${capacity} (KV cache capacity)`);
    }
  };

  const baseDecide = (kvLen: number): Omit<DecideArgs, 'forceFull' | 'checkDynamic' | 'countStep'> => ({
    policy: policy.kind,
    kvLen,
    k: kFor(kvLen),
    sim: dynamicThreshold(policy),
    sinks,
  });

  return {
    policy,
    indices,
    idxStride,
    state: state.buffer,
    stateOffset,
    scratch,
    splitCount: attention.splitCount,
    seedFromPrefill(pass, { kvLen, q, scheduleQuery }) {
      checkKvLen(kvLen);
      seeded = true;
      const k = kFor(kvLen);
      // Non-selecting policies run the decide kernel as 'full': the prompt is always attended in full.
      const base = { ...baseDecide(kvLen), policy: selecting ? policy.kind : ('full' as const) };
      const decideQuery = scheduleQuery ?? (o.scheduleQuery ? undefined : q);
      if (!plainFull)
        decide.encode(pass, { ...base, forceFull: true, checkDynamic: false, countStep: false, q: decideQuery });
      attend(pass, kvLen, q);
      if (selecting) encodeSelection(pass, kvLen, k);
    },
    encodeStep(pass, { kvLen, step }) {
      checkKvLen(kvLen);
      if (!Number.isInteger(step) || step < 1) throw new Error(`decode attention: step must be >= 1 (got ${step})`);
      const k = kFor(kvLen);
      let forceFull = false;
      let checkDynamic = false;
      if (policy.kind === 'recycled') {
        forceFull = isStrideFullStep(policy.stride, step);
        checkDynamic = policy.dynamic !== undefined && isDynamicCheckStep(policy.dynamic.qc, step);
      }
      if (!plainFull) decide.encode(pass, { ...baseDecide(kvLen), forceFull, checkDynamic, countStep: true });
      attend(pass, kvLen);
      // Selection kernels exit on recycled steps; skip encoding them when the host already knows the answer.
      const maybeFull = !seeded || forceFull || checkDynamic;
      if (selecting && maybeFull) encodeSelection(pass, kvLen, k);
      positionsFull += kvLen;
      hostSteps++;
    },
    checkpoint() {
      const saved = { seeded, positionsFull, hostSteps, generationK };
      return () => {
        ({ seeded, positionsFull, hostSteps, generationK } = saved);
      };
    },
    async readStats() {
      const words = new Uint32Array(await readBuffer(ctx, state.buffer, STATE.words * 4, stateOffset));
      const floats = new Float32Array(words.buffer);
      return {
        steps: plainFull ? hostSteps : words[STATE.steps],
        fullSteps: plainFull ? hostSteps : words[STATE.fullSteps],
        positionsRead: plainFull ? positionsFull : words[STATE.positionsRead],
        positionsFull,
        recallSteps: words[STATE.recallCount],
        recallTopKSum: floats[STATE.recallTopKSum],
        recallWithAppendedSum: floats[STATE.recallWithNewSum],
      };
    },
    reset,
    destroy() {
      ownSelection?.destroy();
      ownIndices?.destroy();
      ownState?.destroy();
      savedQuery.destroy();
      if (!o.scratch) destroyScratch(scratch);
    },
  };
}

/** What summarizeAttentionStats reports (the engine's AttentionStats adds the step timings). */
export interface AttentionSummary {
  policy: AttentionPolicy['kind'];
  fullStepsPerLayer: number[];
  meanPositionsRead: number;
  meanPositionsFull: number;
  attentionMassRecall: number | null;
  attentionMassRecallAttended: number | null;
  fullLayerSteps: number;
  effectiveStridePerLayer: number[];
}

/** Summary over layers for GenerationStats.attention (the engine adds the timings). Layer counters exclude the last
 * prompt token's step (always full); fullLayerSteps and the effective strides count it. */
export function summarizeAttentionStats(policy: AttentionPolicy, layers: LayerAttentionStats[]): AttentionSummary {
  const stepCount = layers.reduce((a, l) => a + l.steps, 0);
  const recallSteps = layers.reduce((a, l) => a + l.recallSteps, 0);
  return {
    policy: policy.kind,
    fullStepsPerLayer: layers.map((l) => l.fullSteps),
    meanPositionsRead: stepCount ? layers.reduce((a, l) => a + l.positionsRead, 0) / stepCount : 0,
    meanPositionsFull: stepCount ? layers.reduce((a, l) => a + l.positionsFull, 0) / stepCount : 0,
    attentionMassRecall: recallSteps ? layers.reduce((a, l) => a + l.recallTopKSum, 0) / recallSteps : null,
    attentionMassRecallAttended: recallSteps
      ? layers.reduce((a, l) => a + l.recallWithAppendedSum, 0) / recallSteps
      : null,
    fullLayerSteps: layers.reduce((a, l) => a + l.fullSteps + 1, 0),
    effectiveStridePerLayer: layers.map((l) => (l.steps + 1) / (l.fullSteps + 1)),
  };
}

function destroyScratch(s: DecodeAttentionScratch): void {
  for (const b of [s.scores, s.headStats, s.partAcc, s.partMaxSum]) b.destroy();
}
