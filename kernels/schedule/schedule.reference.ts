// Plain-TS references of the schedule rules: dynamic cosine rule, streaming window, attention-mass recall.

/** cos(mean over heads of q, saved), q: [numHeads][headDim]. */
export function referenceMeanQueryCosine(
  q: ArrayLike<number>,
  saved: ArrayLike<number>,
  numHeads: number,
  headDim: number,
): { cosine: number; mean: Float64Array } {
  const mean = new Float64Array(headDim);
  for (let h = 0; h < numHeads; h++) for (let d = 0; d < headDim; d++) mean[d] += q[h * headDim + d] / numHeads;
  let dot = 0;
  let a = 0;
  let b = 0;
  for (let d = 0; d < headDim; d++) {
    dot += mean[d] * saved[d];
    a += mean[d] * mean[d];
    b += saved[d] * saved[d];
  }
  return { cosine: dot / Math.max(Math.sqrt(a * b), 1e-30), mean };
}

/** The recycled/SnapKV full-step rule of one layer. */
export function referenceIsFullStep(a: {
  forceFull: boolean;
  seeded: boolean;
  checkDynamic: boolean;
  cosine: number;
  sim: number;
}): boolean {
  return a.forceFull || !a.seeded || (a.checkDynamic && a.cosine < a.sim);
}

/** StreamingLLM: `sinks` first positions + the K - sinks most recent (the current one included). Ascending. */
export function referenceStreamingPositions(kvLen: number, k: number, sinks: number): number[] {
  const set = new Set<number>();
  for (let p = 0; p < Math.min(sinks, kvLen); p++) set.add(p);
  for (let p = Math.max(0, kvLen - (k - sinks)); p < kvLen; p++) set.add(p);
  return [...set].sort((x, y) => x - y);
}

/** Recycled step positions of one KV head: the selection plus everything appended since the last full step. */
export function referenceRecycledPositions(selected: number[], lastFullLen: number, kvLen: number): number[] {
  const appended = Array.from({ length: kvLen - lastFullLen }, (_, i) => lastFullLen + i);
  return [...selected, ...appended];
}

/** Mean over q heads of the probability mass on the previous selection (and with the appended positions too).
 * probs: [numHeads][kvLen]; selected: [kvHeads][] previous top-K. */
export function referenceRecall(
  probs: ArrayLike<number>[],
  selected: number[][],
  prevLastFullLen: number,
): { topK: number; withAppended: number } {
  const group = probs.length / selected.length;
  let topK = 0;
  let withAppended = 0;
  probs.forEach((row, h) => {
    let top = 0;
    for (const p of selected[Math.floor(h / group)]) top += row[p];
    let appended = 0;
    for (let p = prevLastFullLen; p < row.length; p++) appended += row[p];
    topK += top / probs.length;
    withAppended += (top + appended) / probs.length;
  });
  return { topK, withAppended };
}
