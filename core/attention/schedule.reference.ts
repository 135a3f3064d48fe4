// Plain-TS simulation of one layer's attention schedule under a policy (the paper's rules, DESIGN.md section 4): which
// decode steps run full, which positions a recycled step attends, and the top-K kept from each full step. It sees no
// keys or values: callers (the layer simulation in decodeAttention.reference.ts, the reference runner) do the
// attention and hand back the full step's probabilities.

import {
  referenceIsFullStep,
  referenceMeanQueryCosine,
  referenceRecall,
  referenceStreamingPositions,
} from '../../kernels/schedule/schedule.reference';
import { referenceGroupMax, referenceMaxPool, referenceRankedTopK } from '../../kernels/topk/topk.reference';
import {
  type AttentionPolicy,
  attendedSelectionCount,
  DEFAULT_SINKS,
  dynamicThreshold,
  generationK,
  isDynamicCheckStep,
  isStrideFullStep,
  selectsTopK,
} from './policy';

export interface SchedulePlan {
  full: boolean;
  /** Per KV head: the positions attended (null on full steps: all of 0..kvLen-1). */
  positions: number[][] | null;
  /** Cosine of the head-mean schedule query with the saved one (recycled/SnapKV steps after the seed), else null. */
  cosine: number | null;
}

export class ReferenceLayerSchedule {
  /** Per KV head: the positions chosen at the last full step, strongest first (by pooled score, ties: lower first). */
  selection: number[][] = [];
  /** kvLen at the last full step of a selecting policy (0 = none yet). */
  lastFullLen = 0;
  /** Head-mean schedule query (before RoPE) saved at the last full step. */
  savedQuery: Float64Array;
  /** K for this generation, from the first kvLen seen (the prompt length). */
  k = 0;
  /** Decode steps planned (the seed included) and how many ran full. */
  steps = 0;
  fullSteps = 0;
  positionsRead = 0;
  /** Per full step after the first: mass on the previous selection, and on what a recycled step would attend. */
  recall: { topK: number; withAppended: number }[] = [];
  private readonly sinks: number;

  constructor(
    readonly policy: AttentionPolicy,
    private readonly dims: { numHeads: number; kvHeads: number; headDim: number },
  ) {
    this.savedQuery = new Float64Array(dims.headDim);
    this.sinks = policy.kind === 'streaming' ? (policy.sinks ?? DEFAULT_SINKS) : 0;
    dynamicThreshold(policy); // throws on an unresolved threshold
  }

  /**
   * The plan of decode step `step` (0 = the last prompt token: full for every policy) at kvLen cached positions (the
   * current token included). `scheduleQuery`: [numHeads][headDim], the query before RoPE.
   */
  plan(step: number, kvLen: number, scheduleQuery: ArrayLike<number>): SchedulePlan {
    const p = this.policy;
    const { numHeads, headDim, kvHeads } = this.dims;
    if (this.k === 0)
      this.k = p.kind === 'full' ? kvLen : generationK(p.k, kvLen, p.kind === 'streaming' ? this.sinks + 1 : 1);
    this.steps++;
    const full = (cosine: number | null): SchedulePlan => {
      this.fullSteps++;
      this.positionsRead += kvLen;
      if (selectsTopK(p))
        this.savedQuery = referenceMeanQueryCosine(scheduleQuery, this.savedQuery, numHeads, headDim).mean;
      return { full: true, positions: null, cosine };
    };
    if (step === 0 || p.kind === 'full') return full(null);
    if (p.kind === 'streaming') {
      if (kvLen <= this.k) return full(null);
      const list = referenceStreamingPositions(kvLen, this.k, this.sinks);
      this.positionsRead += list.length;
      return { full: false, positions: Array.from({ length: kvHeads }, () => list), cosine: null };
    }
    const cosine = referenceMeanQueryCosine(scheduleQuery, this.savedQuery, numHeads, headDim).cosine;
    const isFull = referenceIsFullStep({
      forceFull: p.kind === 'recycled' && isStrideFullStep(p.stride, step),
      seeded: this.lastFullLen > 0,
      checkDynamic: p.kind === 'recycled' && p.dynamic !== undefined && isDynamicCheckStep(p.dynamic.qc, step),
      cosine,
      sim: dynamicThreshold(p),
    });
    if (isFull) return full(cosine);
    const positions = this.selection.map((sel) => {
      const kept = sel.slice(0, attendedSelectionCount(p, sel.length, this.k, this.lastFullLen, kvLen));
      for (let q = this.lastFullLen; q < kvLen; q++) kept.push(q);
      return kept;
    });
    this.positionsRead += positions[0].length;
    return { full: false, positions, cosine };
  }

  /** After a full step of a selecting policy (SnapKV: the seed only): probs [numHeads][kvLen] of that step. */
  commitFull(probs: ArrayLike<number>[], kvLen: number): void {
    const p = this.policy;
    if (!selectsTopK(p) || (p.kind === 'snapkv' && this.lastFullLen > 0)) return;
    if (this.lastFullLen > 0) {
      const attended = this.selection.map((sel) =>
        sel.slice(0, attendedSelectionCount(p, sel.length, this.k, this.lastFullLen, kvLen)),
      );
      const r = referenceRecall(probs, this.selection, this.lastFullLen);
      const withAttended = referenceRecall(probs, attended, this.lastFullLen);
      this.recall.push({ topK: r.topK, withAppended: withAttended.withAppended });
    }
    this.selection = referenceGroupMax(probs, this.dims.kvHeads).map((agg) =>
      referenceRankedTopK(referenceMaxPool(agg), this.k),
    );
    this.lastFullLen = kvLen;
  }
}
