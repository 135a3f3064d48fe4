// Plain-TS simulation of one layer's decode attention under a policy: the reference for createDecodeAttention.
// Same step rules as the GPU (see decodeAttention.ts), computed from the building-block references.

import {
  fullPositions,
  referenceDecodeAttention,
  referenceProbabilities,
} from '../../kernels/decodeAttention/decodeAttention.reference';
import {
  referenceIsFullStep,
  referenceMeanQueryCosine,
  referenceRecall,
  referenceRecycledPositions,
  referenceStreamingPositions,
} from '../../kernels/recycled/schedule.reference';
import { referenceGroupMax, referenceMaxPool, referenceTopK } from '../../kernels/recycled/topk.reference';
import type { AttentionPolicy } from './policy';
import { DEFAULT_SINKS, dynamicThreshold, isDynamicCheckStep, isStrideFullStep, resolveK, selectsTopK } from './policy';

export interface ReferenceLayerShape {
  numHeads: number;
  kvHeads: number;
  headDim: number;
  capacity: number;
  /** [kvHeads][capacity][headDim] */
  k: Float32Array;
  v: Float32Array;
}

export interface ReferenceStepResult {
  out: Float32Array;
  full: boolean;
  cosine: number | null;
}

export class ReferenceLayerAttention {
  selection: number[][] = [];
  lastFullLen = 0;
  savedQuery: Float64Array;
  fullSteps = 0;
  positionsRead = 0;
  recall: { topK: number; withAppended: number }[] = [];
  private readonly sinks: number;

  constructor(
    private readonly policy: AttentionPolicy,
    private readonly shape: ReferenceLayerShape,
  ) {
    this.savedQuery = new Float64Array(shape.headDim);
    this.sinks = policy.kind === 'streaming' ? (policy.sinks ?? DEFAULT_SINKS) : 0;
  }

  private kFor(kvLen: number): number {
    if (this.policy.kind === 'full') return kvLen;
    return resolveK(this.policy.k, kvLen, this.policy.kind === 'streaming' ? this.sinks + 1 : 1);
  }

  private attend(q: Float32Array, positions: number[][]) {
    const s = this.shape;
    return referenceDecodeAttention({ ...s, q, positions });
  }

  /** Full step with selection: recall of the previous selection, then the new top-K. */
  private fullSelectingStep(q: Float32Array, kvLen: number): Float32Array {
    const s = this.shape;
    const r = this.attend(q, fullPositions(s.kvHeads, kvLen));
    const probs = referenceProbabilities(r);
    if (this.lastFullLen > 0) this.recall.push(referenceRecall(probs, this.selection, this.lastFullLen));
    const k = this.kFor(kvLen);
    this.selection = referenceGroupMax(probs, s.kvHeads).map((agg) => referenceTopK(referenceMaxPool(agg), k));
    this.lastFullLen = kvLen;
    this.savedQuery = referenceMeanQueryCosine(q, this.savedQuery, s.numHeads, s.headDim).mean;
    return r.out;
  }

  /** Full attention of the last prompt position; the first selection for recycled/SnapKV. */
  seedFromPrefill(q: Float32Array, kvLen: number): Float32Array {
    if (selectsTopK(this.policy)) return this.fullSelectingStep(q, kvLen);
    return this.attend(q, fullPositions(this.shape.kvHeads, kvLen)).out;
  }

  step(q: Float32Array, kvLen: number, step: number): ReferenceStepResult {
    const s = this.shape;
    const p = this.policy;
    if (p.kind === 'full') {
      this.fullSteps++;
      this.positionsRead += kvLen;
      return { out: this.attend(q, fullPositions(s.kvHeads, kvLen)).out, full: true, cosine: null };
    }
    if (p.kind === 'streaming') {
      const k = this.kFor(kvLen);
      const full = kvLen <= k;
      const list = full ? fullPositions(1, kvLen)[0] : referenceStreamingPositions(kvLen, k, this.sinks);
      this.fullSteps += full ? 1 : 0;
      this.positionsRead += list.length;
      return { out: this.attend(q, new Array(s.kvHeads).fill(list)).out, full, cosine: null };
    }
    const cosine = referenceMeanQueryCosine(q, this.savedQuery, s.numHeads, s.headDim).cosine;
    const full = referenceIsFullStep({
      forceFull: p.kind === 'recycled' && isStrideFullStep(p.stride, step),
      seeded: this.lastFullLen > 0,
      checkDynamic: p.kind === 'recycled' && p.dynamic !== undefined && isDynamicCheckStep(p.dynamic.qc, step),
      cosine,
      sim: dynamicThreshold(p),
    });
    if (full) {
      this.fullSteps++;
      this.positionsRead += kvLen;
      return { out: this.fullSelectingStep(q, kvLen), full, cosine };
    }
    const positions = this.selection.map((sel) => referenceRecycledPositions(sel, this.lastFullLen, kvLen));
    this.positionsRead += positions[0].length;
    return { out: this.attend(q, positions).out, full, cosine };
  }
}
