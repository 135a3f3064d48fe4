// core/model/rope.ts (RoPE inverse frequencies from the parsed config) against HF's Llama-3 formula written out here
// element by element in f64, and against hand-checked anchors.
import { describe, expect, test } from 'vitest';
import type { Llama3RopeScaling } from '../../core/model/config';
import { ropeInverseFrequencies } from '../../core/model/rope';

/** HF `_compute_llama3_parameters`, element by element: keep short wavelengths, divide long ones by `factor`,
 * interpolate between. */
function llama3InverseFrequenciesReference(headDim: number, theta: number, s: Llama3RopeScaling): Float64Array {
  const out = new Float64Array(headDim / 2);
  const lowFreqWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
  const highFreqWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
  for (let i = 0; i < headDim / 2; i++) {
    const invFreq = 1 / theta ** ((2 * i) / headDim);
    const wavelen = (2 * Math.PI) / invFreq;
    let scaled: number;
    if (wavelen < highFreqWavelen) {
      scaled = invFreq;
    } else if (wavelen > lowFreqWavelen) {
      scaled = invFreq / s.factor;
    } else {
      const smooth =
        (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      scaled = (1 - smooth) * (invFreq / s.factor) + smooth * invFreq;
    }
    out[i] = scaled;
  }
  return out;
}

const LLAMA_3_2: Llama3RopeScaling = {
  type: 'llama3',
  factor: 32,
  lowFreqFactor: 1,
  highFreqFactor: 4,
  originalMaxPositionEmbeddings: 8192,
};

describe('rope inverse frequencies', () => {
  test('llama3 scaling matches the reference and its definition at the anchors', () => {
    for (const [headDim, theta, scaling] of [
      [64, 500000, LLAMA_3_2],
      [128, 500000, { ...LLAMA_3_2, factor: 8 }],
    ] as const) {
      const got = ropeInverseFrequencies({ headDim, ropeTheta: theta, ropeScaling: scaling });
      const want = llama3InverseFrequenciesReference(headDim, theta, scaling);
      for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThanOrEqual(1e-7 * want[i]);
      // Highest frequency is kept, lowest divided by the factor; some frequencies lie in the smooth band between.
      expect(got[0]).toBe(1);
      const last = theta ** (-(headDim - 2) / headDim);
      expect(got[headDim / 2 - 1]).toBeCloseTo(last / scaling.factor, 12);
      const plain = ropeInverseFrequencies({ headDim, ropeTheta: theta, ropeScaling: null });
      const smoothBand = [...got].filter((f, i) => f < plain[i] * 0.999 && f > (plain[i] / scaling.factor) * 1.001);
      expect(smoothBand.length).toBeGreaterThan(0);
    }
  });

  test('no scaling; bad configs are refused', () => {
    const plain = ropeInverseFrequencies({ headDim: 8, ropeTheta: 10000, ropeScaling: null });
    expect([...plain]).toEqual([1, 0.1, 0.01, 0.001].map(Math.fround));
    expect(() => ropeInverseFrequencies({ headDim: 7, ropeTheta: 10000, ropeScaling: null })).toThrow(/even/);
    expect(() => ropeInverseFrequencies({ headDim: 8, ropeTheta: 0, ropeScaling: null })).toThrow(/rope_theta/);
    const inverted = { ...LLAMA_3_2, lowFreqFactor: 4, highFreqFactor: 1 };
    expect(() => ropeInverseFrequencies({ headDim: 8, ropeTheta: 10000, ropeScaling: inverted })).toThrow(
      /high_freq_factor/,
    );
  });
});
