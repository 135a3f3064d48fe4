// ModelRunner over the plain-TS reference forward pass: `--backend reference` and the tests' ground truth. Every
// attention policy runs through the schedule simulation of core/attention (the same rules the GPU kernels follow);
// sampling uses the same semantics and RNG as the GPU sampler.

import { sampleReference } from '../../kernels/sampling/sampling.reference';
import { type LayerAttentionStats, summarizeAttentionStats } from '../attention/decodeAttention';
import { resolveAttentionPolicy, validateAttentionPolicy } from '../attention/policy';
import { ReferenceLayerSchedule, type SchedulePlan } from '../attention/schedule.reference';
import type { ModelConfig } from '../model/config';
import type { ModelWeights } from '../model/weights';
import { ReferenceModel } from '../reference/forward';
import type { DecodeInput, DecodeRuntimeStats, KvInfo, ModelRunner, PrefillOptions, SamplingParams } from './runner';
import type { AttentionPolicy, AttentionStats } from './types';

interface LayerCounters {
  schedule: ReferenceLayerSchedule;
  seedLen: number;
  positionsFull: number;
}

export class ReferenceRunner implements ModelRunner {
  readonly capacity: number;
  readonly kvInfo: KvInfo;
  private readonly model: ReferenceModel;
  private logits: Float32Array | null = null;
  private policy: AttentionPolicy = { kind: 'full' };
  private layers: LayerCounters[] = [];
  /** Tokens of submitted steps not yet taken, with the position each step fed (for discardPending). */
  private pending: { token: number; pos: number }[] = [];

  constructor(
    private readonly config: ModelConfig,
    weights: ModelWeights,
    contextWindow: number,
  ) {
    this.model = new ReferenceModel(config, weights);
    this.capacity = contextWindow;
    this.kvInfo = { dtype: 'f32', numLayers: config.numLayers, kvHeads: config.numKvHeads, headDim: config.headDim };
  }

  /** One token per chunk (the reference runs token by token). */
  async prefill(ids: number[], startPos: number, opts: PrefillOptions = {}): Promise<void> {
    this.model.truncate(startPos);
    this.model.recordAttention = false;
    for (let i = 0; i < ids.length; i++) {
      if (opts.signal?.aborted) return;
      this.model.step(ids[i], false);
      opts.onChunk?.(i + 1);
    }
  }

  beginGeneration(policy: AttentionPolicy): void {
    validateAttentionPolicy(policy);
    this.policy = resolveAttentionPolicy(policy, this.config.architecture);
    const dims = { numHeads: this.config.numHeads, kvHeads: this.config.numKvHeads, headDim: this.config.headDim };
    this.layers = Array.from({ length: this.config.numLayers }, () => ({
      schedule: new ReferenceLayerSchedule(this.policy, dims),
      seedLen: 0,
      positionsFull: 0,
    }));
  }

  async decodeStep(id: number, pos: number, sampling: SamplingParams, step: number): Promise<number> {
    this.model.truncate(pos);
    const kvLen = pos + 1;
    const plans: (SchedulePlan | undefined)[] = [];
    const attend = (layer: number, kvHead: number, length: number, preRopeQuery: Float32Array) => {
      if (kvHead === 0) {
        const counters = this.layers[layer];
        if (step === 0) counters.seedLen = kvLen;
        else counters.positionsFull += kvLen;
        plans[layer] = counters.schedule.plan(step, length, preRopeQuery);
      }
      return plans[layer]?.positions?.[kvHead] ?? null;
    };
    this.model.recordAttention = true;
    const logits = this.model.step(id, true, attend) as Float32Array;
    plans.forEach((plan, layer) => {
      if (plan?.full) this.layers[layer].schedule.commitFull(this.model.lastAttention[layer], kvLen);
    });
    this.logits = logits;
    return sampleReference(logits, { ...sampling, step }).id;
  }

  submitStep(input: DecodeInput, pos: number, sampling: SamplingParams, step: number): void {
    let id: number;
    if (input === 'sampled') {
      const last = this.pending[this.pending.length - 1] ?? this.lastTaken;
      if (!last) throw new Error("decode: input 'sampled' needs a previous step");
      id = last.token;
    } else {
      id = input;
    }
    this.model.truncate(pos);
    const logits = this.model.step(id, true)!;
    this.logits = logits;
    this.pending.push({ token: sampleReference(logits, { ...sampling, step }).id, pos });
  }

  private lastTaken?: { token: number; pos: number };

  async takeToken(): Promise<number> {
    const p = this.pending.shift();
    if (!p) throw new Error('takeToken: no decode step in flight');
    this.lastTaken = p;
    return p.token;
  }

  async discardPending(): Promise<number> {
    const dropped = this.pending.length;
    if (dropped > 0) this.model.truncate(this.pending[0].pos);
    this.pending = [];
    return dropped;
  }

  runtimeStats(): DecodeRuntimeStats | undefined {
    return undefined;
  }

  async readLogits(): Promise<Float32Array> {
    if (!this.logits) throw new Error('no decode step has run yet');
    return this.logits;
  }

  async attentionStats(): Promise<AttentionStats | undefined> {
    const layers: LayerAttentionStats[] = this.layers.map(({ schedule: s, seedLen, positionsFull }) => {
      const seeded = seedLen > 0 ? 1 : 0;
      return {
        steps: s.steps - seeded,
        fullSteps: s.fullSteps - seeded,
        positionsRead: s.positionsRead - seedLen,
        positionsFull,
        recallSteps: s.recall.length,
        recallTopKSum: s.recall.reduce((a, r) => a + r.topK, 0),
        recallWithAppendedSum: s.recall.reduce((a, r) => a + r.withAppended, 0),
      };
    });
    return { ...summarizeAttentionStats(this.policy, layers), msPerFullStep: 0, msPerRecycledStep: 0 };
  }

  async readKvLayer(): Promise<{ k: Uint8Array; v: Uint8Array }> {
    throw new Error('KV snapshots need the webgpu backend.');
  }

  writeKvLayer(): void {
    throw new Error('KV snapshots need the webgpu backend.');
  }

  dispose(): void {}
}
