// ModelRunner over the plain-TS reference forward pass: `--backend reference` and the tests' ground truth.
// Full attention only; sampling uses the same semantics and RNG as the GPU sampler.
import { sampleReference } from '../../kernels/sampling/sampling.reference';
import type { ModelConfig } from '../model/config';
import type { ModelWeights } from '../model/weights';
import { ReferenceModel } from '../reference/forward';
import type { KvInfo, ModelRunner, PrefillOptions, SamplingParams } from './runner';
import type { AttentionPolicy, AttentionStats } from './types';

export class ReferenceRunner implements ModelRunner {
  readonly capacity: number;
  readonly kvInfo: KvInfo;
  private readonly model: ReferenceModel;
  private logits: Float32Array | null = null;

  constructor(config: ModelConfig, weights: ModelWeights, contextWindow: number) {
    this.model = new ReferenceModel(config, weights);
    this.capacity = contextWindow;
    this.kvInfo = { dtype: 'f32', numLayers: config.numLayers, kvHeads: config.numKvHeads, headDim: config.headDim };
  }

  /** One token per chunk (the reference runs token by token). */
  async prefill(ids: number[], startPos: number, opts: PrefillOptions = {}): Promise<void> {
    this.model.truncate(startPos);
    for (let i = 0; i < ids.length; i++) {
      if (opts.signal?.aborted) return;
      this.model.step(ids[i], false);
      opts.onChunk?.(i + 1);
    }
  }

  beginGeneration(policy: AttentionPolicy): void {
    if (policy.kind !== 'full') {
      throw new Error(
        `The reference backend runs full attention only (asked for "${policy.kind}"); use --backend webgpu.`,
      );
    }
  }

  async decodeStep(id: number, pos: number, sampling: SamplingParams, step: number): Promise<number> {
    this.model.truncate(pos);
    const logits = this.model.step(id, true)!;
    this.logits = logits;
    return sampleReference(logits, { ...sampling, step }).id;
  }

  async readLogits(): Promise<Float32Array> {
    if (!this.logits) throw new Error('no decode step has run yet');
    return this.logits;
  }

  async attentionStats(): Promise<AttentionStats | undefined> {
    return undefined;
  }

  async readKvLayer(): Promise<{ k: Uint8Array; v: Uint8Array }> {
    throw new Error('KV snapshots need the webgpu backend.');
  }

  writeKvLayer(): void {
    throw new Error('KV snapshots need the webgpu backend.');
  }

  dispose(): void {}
}
