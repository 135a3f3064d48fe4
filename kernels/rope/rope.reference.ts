// Plain-TS reference for RoPE (HF rotate-half) and Llama-3 frequency scaling, written from their definitions.

/** HF `_compute_llama3_parameters`, element by element: keep short wavelengths, divide long ones by `factor`,
 * interpolate between. */
export function llama3InverseFrequenciesReference(
  headDim: number,
  theta: number,
  s: { factor: number; low_freq_factor: number; high_freq_factor: number; original_max_position_embeddings: number },
): Float64Array {
  const out = new Float64Array(headDim / 2);
  const lowFreqWavelen = s.original_max_position_embeddings / s.low_freq_factor;
  const highFreqWavelen = s.original_max_position_embeddings / s.high_freq_factor;
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
        (s.original_max_position_embeddings / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      scaled = (1 - smooth) * (invFreq / s.factor) + smooth * invFreq;
    }
    out[i] = scaled;
  }
  return out;
}

export interface RopeReferenceResult {
  /** Rotated queries [tokens][nq][d]. */
  q: Float32Array;
  /** Rotated keys and plain values [nkv][tokens][d] for positions startPos.. (the cache rows they belong in). */
  k: Float32Array;
  v: Float32Array;
}

/** out = x * cos + rotate_half(x) * sin with rotate_half(x) = [-x2, x1]; angle = f32(f32(pos) * invFreq[i]) as in HF,
 * cos/sin in f64 on that angle. */
export function ropeReference(
  qkv: Float32Array,
  o: { tokens: number; startPos: number; numHeads: number; numKvHeads: number; headDim: number; invFreq: Float32Array },
): RopeReferenceResult {
  const { tokens, startPos, numHeads: nq, numKvHeads: nkv, headDim: d } = o;
  const half = d / 2;
  const row = (nq + 2 * nkv) * d;
  const q = new Float32Array(tokens * nq * d);
  const k = new Float32Array(nkv * tokens * d);
  const v = new Float32Array(nkv * tokens * d);
  const rotate = (src: number, dst: Float32Array, at: number, pos: number) => {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(Math.fround(pos) * o.invFreq[i]);
      const x1 = qkv[src + i];
      const x2 = qkv[src + half + i];
      dst[at + i] = x1 * Math.cos(angle) - x2 * Math.sin(angle);
      dst[at + half + i] = x2 * Math.cos(angle) + x1 * Math.sin(angle);
    }
  };
  for (let t = 0; t < tokens; t++) {
    const pos = startPos + t;
    for (let h = 0; h < nq; h++) rotate(t * row + h * d, q, (t * nq + h) * d, pos);
    for (let h = 0; h < nkv; h++) {
      rotate(t * row + (nq + h) * d, k, (h * tokens + t) * d, pos);
      const vSrc = t * row + (nq + nkv + h) * d;
      v.set(qkv.subarray(vSrc, vSrc + d), (h * tokens + t) * d);
    }
  }
  return { q, k, v };
}
