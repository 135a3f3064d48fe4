// Stories drawn from a model itself (temperature 1, seeded) by the plain-TS reference: stories260k's real tokenizer is
// not available (the fixture's is a placeholder), so its NLL runs score the model's own text, identical on every adapter.
import { sampleReference } from '../../kernels/sampling/sampling.reference';
import type { ModelConfig } from '../model/config';
import type { ModelWeights } from '../model/weights';
import { ReferenceModel } from '../reference/forward';

/** `length` token ids starting with BOS (1), each next id sampled from the reference's logits with `seed`. */
export function sampleStory(config: ModelConfig, weights: ModelWeights, length: number, seed: number): number[] {
  const ref = new ReferenceModel(config, weights);
  const ids = [1];
  let logits = ref.step(1) as Float32Array;
  for (let step = 0; ids.length < length; step++) {
    const next = sampleReference(logits, { temperature: 1, topK: 0, topP: 1, seed, step }).id;
    ids.push(next);
    logits = ref.step(next) as Float32Array;
  }
  return ids;
}
