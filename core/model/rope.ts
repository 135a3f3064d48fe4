// RoPE inverse frequencies from the parsed model config (default, or Llama-3 scaling as config.ts accepts it). The
// rope kernel takes the result as a buffer and knows nothing about scaling.
import type { ModelConfig } from './config';

/** inv_freq[i] = theta^(-2i/d) for i < d/2, then the Llama-3 adjustment; computed in f64, rounded once to f32. */
export function ropeInverseFrequencies(
  config: Pick<ModelConfig, 'headDim' | 'ropeTheta' | 'ropeScaling'>,
): Float32Array {
  const { headDim, ropeTheta: theta, ropeScaling: s } = config;
  if (!Number.isInteger(headDim) || headDim < 2 || headDim % 2 !== 0) {
    throw new Error(`rope: head_dim must be a positive even integer, got ${headDim}.`);
  }
  if (!(theta > 0)) throw new Error(`rope: rope_theta must be positive, got ${theta}.`);
  const base = Array.from({ length: headDim / 2 }, (_, i) => theta ** (-(2 * i) / headDim));
  if (!s) return Float32Array.from(base);
  const { factor, lowFreqFactor: low, highFreqFactor: high, originalMaxPositionEmbeddings: original } = s;
  if (!(high > low)) throw new Error(`rope_scaling llama3: high_freq_factor (${high}) must exceed low (${low}).`);
  // Llama 3.1: long wavelengths are slowed by `factor`, short ones kept, a smooth blend in between.
  const lowFreqWavelen = original / low;
  const highFreqWavelen = original / high;
  return Float32Array.from(
    base.map((f) => {
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < highFreqWavelen) return f;
      if (wavelen > lowFreqWavelen) return f / factor;
      const smooth = (original / wavelen - low) / (high - low);
      return (1 - smooth) * (f / factor) + smooth * f;
    }),
  );
}
