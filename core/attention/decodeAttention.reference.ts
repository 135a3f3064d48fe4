// Plain-TS simulation of one layer's decode attention under a policy: the reference for createDecodeAttention.
// Same step rules as the GPU (see decodeAttention.ts), computed from the building-block references.

import {
  fullPositions,
  referenceDecodeAttention,
  referenceProbabilities,
} from '../../kernels/decodeAttention/decodeAttention.reference';
import type { AttentionPolicy } from './policy';
import { ReferenceLayerSchedule } from './schedule.reference';

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
  readonly schedule: ReferenceLayerSchedule;
  private seedLen = 0;

  constructor(
    readonly policy: AttentionPolicy,
    private readonly shape: ReferenceLayerShape,
  ) {
    this.schedule = new ReferenceLayerSchedule(policy, shape);
  }

  /** Counters as the GPU keeps them: decode steps after the seed. */
  get fullSteps(): number {
    return this.schedule.fullSteps - (this.seedLen > 0 ? 1 : 0);
  }
  get positionsRead(): number {
    return this.schedule.positionsRead - this.seedLen;
  }
  get recall() {
    return this.schedule.recall;
  }
  get selection(): number[][] {
    return this.schedule.selection;
  }
  get lastFullLen(): number {
    return this.schedule.lastFullLen;
  }

  private run(step: number, q: Float32Array, kvLen: number, scheduleQuery: ArrayLike<number>): ReferenceStepResult {
    const s = this.shape;
    const plan = this.schedule.plan(step, kvLen, scheduleQuery);
    const r = referenceDecodeAttention({ ...s, q, positions: plan.positions ?? fullPositions(s.kvHeads, kvLen) });
    if (plan.full) this.schedule.commitFull(referenceProbabilities(r), kvLen);
    return { out: r.out, full: plan.full, cosine: plan.cosine };
  }

  /** Full attention of the last prompt position; the first selection for recycled/SnapKV. `scheduleQuery` (the query
   * before RoPE; default q) is what the dynamic schedule compares. */
  seedFromPrefill(q: Float32Array, kvLen: number, scheduleQuery: ArrayLike<number> = q): Float32Array {
    this.seedLen = kvLen;
    return this.run(0, q, kvLen, scheduleQuery).out;
  }

  step(q: Float32Array, kvLen: number, step: number, scheduleQuery: ArrayLike<number> = q): ReferenceStepResult {
    if (step < 1) throw new Error(`reference layer attention: decode step must be >= 1 (got ${step})`);
    return this.run(step, q, kvLen, scheduleQuery);
  }
}
