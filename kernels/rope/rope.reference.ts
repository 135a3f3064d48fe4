// Plain-TS reference for RoPE (HF rotate-half) and the KV store, written from their definitions.

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
