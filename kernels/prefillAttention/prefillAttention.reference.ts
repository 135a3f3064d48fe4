// Plain-TS causal attention over a KV cache: what the prefill kernel must compute (in float64).

export interface PrefillAttentionReferenceArgs {
  /** [tokens][numHeads][headDim] */
  q: Float32Array;
  /** Cache values as numbers, [kvHeads][capacity][headDim] (f16 caches: already rounded to f16). */
  k: Float32Array;
  v: Float32Array;
  tokens: number;
  startPos: number;
  numHeads: number;
  kvHeads: number;
  headDim: number;
  capacity: number;
}

/** Query t (position startPos + t) of head h attends to keys 0..startPos + t of kv head h / (numHeads / kvHeads). */
export function prefillAttentionReference(a: PrefillAttentionReferenceArgs): Float32Array {
  const { tokens, startPos, numHeads, kvHeads, headDim, capacity } = a;
  const group = numHeads / kvHeads;
  const scale = 1 / Math.sqrt(headDim);
  const out = new Float32Array(tokens * numHeads * headDim);
  const scores = new Float64Array(startPos + tokens);
  const acc = new Float64Array(headDim);
  for (let t = 0; t < tokens; t++) {
    const keyCount = startPos + t + 1;
    for (let h = 0; h < numHeads; h++) {
      const qBase = (t * numHeads + h) * headDim;
      const cacheBase = Math.floor(h / group) * capacity * headDim;
      let max = Number.NEGATIVE_INFINITY;
      for (let j = 0; j < keyCount; j++) {
        let dot = 0;
        for (let d = 0; d < headDim; d++) dot += a.q[qBase + d] * a.k[cacheBase + j * headDim + d];
        scores[j] = dot * scale;
        if (scores[j] > max) max = scores[j];
      }
      let sum = 0;
      acc.fill(0);
      for (let j = 0; j < keyCount; j++) {
        const p = Math.exp(scores[j] - max);
        sum += p;
        for (let d = 0; d < headDim; d++) acc[d] += p * a.v[cacheBase + j * headDim + d];
      }
      for (let d = 0; d < headDim; d++) out[qBase + d] = acc[d] / sum;
    }
  }
  return out;
}
