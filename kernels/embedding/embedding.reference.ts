// Plain-TS reference for the embedding lookup.
import { type ReferenceLinear, referenceWeight } from '../matmul/matmul.reference';

/** out[t][c] = table[ids[t]][c]; an id outside the vocabulary gives a zero row. */
export function embeddingReference(table: ReferenceLinear, ids: ArrayLike<number>): Float32Array {
  const hidden = table.cols;
  const out = new Float32Array(ids.length * hidden);
  for (let t = 0; t < ids.length; t++) {
    const id = ids[t];
    if (id >= table.rows) continue;
    for (let c = 0; c < hidden; c++) out[t * hidden + c] = referenceWeight(table, id, c);
  }
  return out;
}
