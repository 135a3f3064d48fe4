// Random-weight models built in memory for timing (no files, no md5): a Llama-3.2-1B-shaped q4 model and a small
// one. Values are small random numbers; only their bytes and shapes matter for speed.
import type { ModelConfig } from '../../core/model/config';
import type { HostLinear, HostVector, ModelWeights } from '../../core/model/weights';
import { f32ToF16Bits } from '../../kernels/half';

export type SyntheticShape = { name: string } & Pick<
  ModelConfig,
  'hiddenSize' | 'intermediateSize' | 'numLayers' | 'numHeads' | 'numKvHeads' | 'headDim' | 'vocabSize'
>;

/** Llama-3.2-1B's shape; the vocabulary is cut to 32K to keep the bench's host memory and build time small. */
export const LLAMA_1B: SyntheticShape = {
  name: 'Llama-3.2-1B-shaped q4',
  hiddenSize: 2048,
  intermediateSize: 8192,
  numLayers: 16,
  numHeads: 32,
  numKvHeads: 8,
  headDim: 64,
  vocabSize: 32000,
};

/** The shape of the trained retrieval fixture (2 layers, hidden 128), for a small-model comparison. */
export const SMALL: SyntheticShape = {
  name: 'small (retrieval-llama shape) q4',
  hiddenSize: 128,
  intermediateSize: 352,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 32,
  vocabSize: 68,
};

export function syntheticConfig(s: SyntheticShape, contextWindow: number, f16: boolean): ModelConfig {
  return {
    architecture: 'llama',
    hiddenSize: s.hiddenSize,
    intermediateSize: s.intermediateSize,
    numLayers: s.numLayers,
    numHeads: s.numHeads,
    numKvHeads: s.numKvHeads,
    headDim: s.headDim,
    vocabSize: s.vocabSize,
    rmsNormEps: 1e-5,
    ropeTheta: 500000,
    ropeScaling: null,
    tieWordEmbeddings: false,
    qkvBias: false,
    qkNorm: false,
    contextWindow,
    prefillChunkSize: 2048,
    quantization: f16 ? 'q4f16_1' : 'q4f32_1',
    bosTokenId: 1,
    eosTokenIds: [2],
    convTemplate: null,
  };
}

/** xorshift32: a seeded u32 generator for synthetic weights and KV (the values never matter, only that they vary). */
export function xorshift(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/** q4 weights: random nibbles, one small scale per group (a few distinct values keep generation fast). */
function q4(rows: number, cols: number, f16: boolean, rand: () => number): HostLinear {
  const qweight = new Uint32Array((rows * cols) / 8);
  for (let i = 0; i < qweight.length; i++) qweight[i] = rand();
  const groups = (rows * cols) / 32;
  const scale = 0.02 / Math.sqrt(cols / 2048);
  if (f16) {
    const scales = new Uint16Array(groups).fill(f32ToF16Bits(scale));
    return { dtype: 'q4f16', rows, cols, qweight, scales };
  }
  return { dtype: 'q4f32', rows, cols, qweight, scales: new Float32Array(groups).fill(scale) };
}

function ones(n: number): HostVector {
  return { dtype: 'f32', data: new Float32Array(n).fill(1) };
}

export function syntheticWeights(s: SyntheticShape, f16: boolean, seed = 1): ModelWeights {
  const rand = xorshift(seed);
  const qkvRows = (s.numHeads + 2 * s.numKvHeads) * s.headDim;
  return {
    embed: q4(s.vocabSize, s.hiddenSize, f16, rand),
    layers: Array.from({ length: s.numLayers }, () => ({
      inputNorm: ones(s.hiddenSize),
      qkv: q4(qkvRows, s.hiddenSize, f16, rand),
      oProj: q4(s.hiddenSize, s.numHeads * s.headDim, f16, rand),
      postNorm: ones(s.hiddenSize),
      gateUp: q4(2 * s.intermediateSize, s.hiddenSize, f16, rand),
      down: q4(s.hiddenSize, s.intermediateSize, f16, rand),
    })),
    finalNorm: ones(s.hiddenSize),
    lmHead: q4(s.vocabSize, s.hiddenSize, f16, rand),
  };
}
