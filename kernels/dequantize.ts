// The one CPU dequantiser: any stored weight dtype (HostLinear) as f32 values. References, the plain-TS forward pass
// and the loader tests all read weights through it.
import { f16ArrayToF32, f16BitsToF32 } from './half';
import { type HostLinear, Q4_GROUP_SIZE } from './linearUpload';

/** Row `row` of a weight as f32 [cols]. q4 (MLC q4*_1): element c is nibble c % 8 (lowest first) of word c / 8, value
 * (q - 7) * scale of its group of 32 along cols. */
export function dequantizeRow(w: HostLinear, row: number, out = new Float32Array(w.cols)): Float32Array {
  const { cols } = w;
  if (w.dtype === 'f32') {
    out.set(w.data.subarray(row * cols, (row + 1) * cols));
    return out;
  }
  if (w.dtype === 'f16') {
    for (let c = 0; c < cols; c++) out[c] = f16BitsToF32(w.data[row * cols + c]);
    return out;
  }
  const groups = cols / Q4_GROUP_SIZE;
  const wordsPerRow = cols / 8;
  for (let g = 0; g < groups; g++) {
    const s = w.scales[row * groups + g];
    const scale = w.dtype === 'q4f16' ? f16BitsToF32(s) : s;
    for (let word = 0; word < Q4_GROUP_SIZE / 8; word++) {
      const packed = w.qweight[row * wordsPerRow + g * (Q4_GROUP_SIZE / 8) + word];
      const base = g * Q4_GROUP_SIZE + word * 8;
      for (let j = 0; j < 8; j++) out[base + j] = (((packed >>> (4 * j)) & 0xf) - 7) * scale;
    }
  }
  return out;
}

/** The whole weight as row-major f32 [rows][cols] (f32 weights are returned as they are, not copied). */
export function dequantizeLinear(w: HostLinear): Float32Array {
  if (w.dtype === 'f32') return w.data;
  if (w.dtype === 'f16') return f16ArrayToF32(w.data);
  const out = new Float32Array(w.rows * w.cols);
  for (let r = 0; r < w.rows; r++) dequantizeRow(w, r, out.subarray(r * w.cols, (r + 1) * w.cols));
  return out;
}
