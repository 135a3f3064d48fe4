// Plain-TS references of the top-K pipeline: GQA max-aggregation, max-pool (kernel 7, same), sort-based top-K.

/** agg[kvHead][pos] = max over the q heads of the group of probs[h][pos]. probs: [numHeads][L]. */
export function referenceGroupMax(probs: ArrayLike<number>[], kvHeads: number): Float64Array[] {
  const group = probs.length / kvHeads;
  const L = probs[0].length;
  return Array.from({ length: kvHeads }, (_, kvh) => {
    const agg = new Float64Array(L).fill(-Infinity);
    for (let g = 0; g < group; g++) {
      const row = probs[kvh * group + g];
      for (let p = 0; p < L; p++) agg[p] = Math.max(agg[p], row[p]);
    }
    return agg;
  });
}

/** Max-pool along positions, stride 1, "same" padding (positions outside the row are ignored). */
export function referenceMaxPool(values: ArrayLike<number>, kernel = 7): Float64Array {
  const radius = (kernel - 1) / 2;
  const out = new Float64Array(values.length);
  for (let p = 0; p < values.length; p++) {
    let m = -Infinity;
    for (let t = Math.max(0, p - radius); t <= Math.min(values.length - 1, p + radius); t++) m = Math.max(m, values[t]);
    out[p] = m;
  }
  return out;
}

/** The K largest values' positions, ties to the lower position, sorted ascending. Sort-based on purpose. */
export function referenceTopK(values: ArrayLike<number>, k: number): number[] {
  const order = Array.from({ length: values.length }, (_, i) => i);
  order.sort((a, b) => values[b] - values[a] || a - b);
  return order.slice(0, Math.min(k, values.length)).sort((a, b) => a - b);
}

/** The K largest values' positions ordered strongest first (ties: the lower position first), the order in which a
 * recycled step displaces selected positions from the end. */
export function referenceRankedTopK(values: ArrayLike<number>, k: number): number[] {
  const order = Array.from({ length: values.length }, (_, i) => i);
  order.sort((a, b) => values[b] - values[a] || a - b);
  return order.slice(0, Math.min(k, values.length));
}
