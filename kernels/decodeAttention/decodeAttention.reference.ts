// Plain-TS decode attention (f64 accumulation): the reference the GPU kernels are tested against.

export interface ReferenceAttentionInput {
  /** [numHeads][headDim], RoPE applied. */
  q: Float32Array;
  /** [kvHeads][capacity][headDim] as f32 (f16 caches: the values after rounding to f16). */
  k: Float32Array;
  v: Float32Array;
  numHeads: number;
  kvHeads: number;
  headDim: number;
  capacity: number;
  /** Attended positions per KV head. Full attention: 0..kvLen-1 for every head. */
  positions: number[][];
}

export interface ReferenceAttentionOutput {
  /** [numHeads][headDim] */
  out: Float32Array;
  /** Per q head, the scaled logit of each attended position, in the order of `positions`. */
  logits: Float64Array[];
  /** Per q head: max logit and sum of exp(logit - max); probability = exp(logit - max) / sum. */
  maxLogit: Float64Array;
  sumExp: Float64Array;
}

export function fullPositions(kvHeads: number, kvLen: number): number[][] {
  const all = Array.from({ length: kvLen }, (_, i) => i);
  return Array.from({ length: kvHeads }, () => all);
}

export function referenceDecodeAttention(a: ReferenceAttentionInput): ReferenceAttentionOutput {
  const { q, k, v, numHeads, kvHeads, headDim, capacity, positions } = a;
  const group = numHeads / kvHeads;
  const scale = 1 / Math.sqrt(headDim);
  const out = new Float32Array(numHeads * headDim);
  const logits: Float64Array[] = [];
  const maxLogit = new Float64Array(numHeads);
  const sumExp = new Float64Array(numHeads);
  for (let h = 0; h < numHeads; h++) {
    const kvHead = Math.floor(h / group);
    const list = positions[kvHead];
    const s = new Float64Array(list.length);
    let m = -Infinity;
    for (let j = 0; j < list.length; j++) {
      const base = (kvHead * capacity + list[j]) * headDim;
      let dot = 0;
      for (let d = 0; d < headDim; d++) dot += q[h * headDim + d] * k[base + d];
      s[j] = dot * scale;
      m = Math.max(m, s[j]);
    }
    let sum = 0;
    const acc = new Float64Array(headDim);
    for (let j = 0; j < list.length; j++) {
      const p = Math.exp(s[j] - m);
      sum += p;
      const base = (kvHead * capacity + list[j]) * headDim;
      for (let d = 0; d < headDim; d++) acc[d] += p * v[base + d];
    }
    for (let d = 0; d < headDim; d++) out[h * headDim + d] = acc[d] / sum;
    logits.push(s);
    maxLogit[h] = m;
    sumExp[h] = sum;
  }
  return { out, logits, maxLogit, sumExp };
}

/** Per q head softmax probabilities of a full step, [numHeads][kvLen]. */
export function referenceProbabilities(r: ReferenceAttentionOutput): Float64Array[] {
  return r.logits.map((s, h) => s.map((x) => Math.exp(x - r.maxLogit[h]) / r.sumExp[h]));
}

/** The combine of split-K partials (f64): per head, with M = max_s m_s, out[d] = sum_s e^(m_s - M) acc_s[d] /
 * sum_s e^(m_s - M) l_s over the first numSplits splits. partAcc is [heads][maxSplits][headDim], partMaxSum
 * [heads][maxSplits][2] = (m_s, l_s). */
export function referenceSplitCombine(
  partAcc: Float32Array,
  partMaxSum: Float32Array,
  shape: { heads: number; headDim: number; maxSplits: number; numSplits: number },
): Float32Array {
  const { heads, headDim, maxSplits, numSplits } = shape;
  const out = new Float32Array(heads * headDim);
  for (let h = 0; h < heads; h++) {
    const base = h * maxSplits;
    let m = -Infinity;
    for (let s = 0; s < numSplits; s++) m = Math.max(m, partMaxSum[(base + s) * 2]);
    let total = 0;
    const acc = new Float64Array(headDim);
    for (let s = 0; s < numSplits; s++) {
      const w = Math.exp(partMaxSum[(base + s) * 2] - m);
      total += w * partMaxSum[(base + s) * 2 + 1];
      for (let d = 0; d < headDim; d++) acc[d] += w * partAcc[(base + s) * headDim + d];
    }
    for (let d = 0; d < headDim; d++) out[h * headDim + d] = acc[d] / total;
  }
  return out;
}
