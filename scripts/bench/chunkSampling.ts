// Whole-model prefill time from a sample of its chunks, for CPU adapters where prefilling 1K tokens of the 1B shape
// takes longer than the bench may (issue #10: the prefill section within 15 minutes on lavapipe).
//
// A prefill of n tokens is the chunks [0, c), [c, 2c), ... run one after another; each chunk's time depends only on
// where it starts (its linears cost the same everywhere, its attention grows with the keys before it), not on the
// KV values. So each sampled chunk runs alone through the whole model at its real start position, with synthetic KV
// before it, and the chunks not run get the per-token time interpolated linearly (in start position) between the
// nearest measured chunks on either side. The first and the last chunk are always measured; with every chunk
// measured the estimate is their plain sum.

export interface PrefillChunk {
  /** Position of the chunk's first token. */
  start: number;
  tokens: number;
}

/** The chunks the engine runs for a prefill of n tokens from position 0 at `chunk` tokens per chunk. */
export function prefillChunks(n: number, chunk: number): PrefillChunk[] {
  if (!(Number.isInteger(n) && n > 0 && Number.isInteger(chunk) && chunk > 0)) {
    throw new Error(`prefillChunks: n and chunk must be positive integers (got ${n}, ${chunk})`);
  }
  const out: PrefillChunk[] = [];
  for (let start = 0; start < n; start += chunk) out.push({ start, tokens: Math.min(chunk, n - start) });
  return out;
}

/** The order to measure chunks 0..count-1 in: the first, the last, then the middle of the widest gap left (ties: the
 * earlier gap), so that stopping anywhere leaves the measured chunks spread evenly. */
export function samplingOrder(count: number): number[] {
  if (count <= 0) return [];
  const order = count === 1 ? [0] : [0, count - 1];
  const taken = new Set(order);
  while (order.length < count) {
    const sorted = [...taken].sort((a, b) => a - b);
    let best = -1;
    let bestGap = 0;
    for (let i = 0; i + 1 < sorted.length; i++) {
      const gap = sorted[i + 1] - sorted[i];
      if (gap > bestGap) {
        bestGap = gap;
        best = i;
      }
    }
    const mid = sorted[best] + Math.floor(bestGap / 2);
    order.push(mid);
    taken.add(mid);
  }
  return order;
}

/**
 * Estimated prefill time (ms) of all `chunks` from the measured ones (`measuredMs`: chunk index -> ms). Measured
 * chunks count their own time; each other chunk its token count times the per-token time interpolated linearly in
 * start position between the nearest measured chunks before and after it.
 */
export function estimatePrefillMs(chunks: PrefillChunk[], measuredMs: ReadonlyMap<number, number>): number {
  const last = chunks.length - 1;
  if (!measuredMs.has(0) || !measuredMs.has(last)) {
    throw new Error('estimatePrefillMs: the first and the last chunk must be measured');
  }
  const measured = [...measuredMs.keys()].sort((a, b) => a - b);
  for (const i of measured) {
    if (!(i >= 0 && i <= last)) throw new Error(`estimatePrefillMs: chunk ${i} out of range`);
  }
  const perToken = (i: number) => (measuredMs.get(i) as number) / chunks[i].tokens;
  let total = 0;
  let left = 0; // index into `measured`: the nearest measured chunk at or before i
  for (let i = 0; i <= last; i++) {
    const ms = measuredMs.get(i);
    if (ms !== undefined) {
      total += ms;
      if (measured[left + 1] === i) left++;
      continue;
    }
    const a = measured[left];
    const b = measured[left + 1];
    const f = (chunks[i].start - chunks[a].start) / (chunks[b].start - chunks[a].start);
    total += chunks[i].tokens * (perToken(a) + f * (perToken(b) - perToken(a)));
  }
  return total;
}
