// Plain-TS reference for the embedding lookup.
import { dequantizeRow } from '../dequantize';
import type { HostLinear } from '../linearUpload';

/** out[t][c] = table[ids[t]][c]; an id outside the vocabulary gives a zero row. */
export function embeddingReference(table: HostLinear, ids: ArrayLike<number>): Float32Array {
  const hidden = table.cols;
  const out = new Float32Array(ids.length * hidden);
  for (let t = 0; t < ids.length; t++) {
    const id = ids[t];
    if (id >= table.rows) continue;
    dequantizeRow(table, id, out.subarray(t * hidden, (t + 1) * hidden));
  }
  return out;
}
