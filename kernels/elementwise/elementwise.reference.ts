// Plain-TS references for the elementwise kernels (float64 arithmetic).

/** SwiGLU: out[t][j] = silu(gate) * up, gate = gateUp[t][j], up = gateUp[t][I + j]. */
export function siluMulReference(gateUp: Float32Array, tokens: number, intermediate: number): Float64Array {
  const out = new Float64Array(tokens * intermediate);
  for (let t = 0; t < tokens; t++) {
    for (let j = 0; j < intermediate; j++) {
      const gate = gateUp[t * 2 * intermediate + j];
      const up = gateUp[t * 2 * intermediate + intermediate + j];
      const sigmoid = 1 / (1 + Math.exp(-gate));
      out[t * intermediate + j] = gate * sigmoid * up;
    }
  }
  return out;
}

export function addReference(x: Float32Array, y: Float32Array, count: number): Float64Array {
  const out = Float64Array.from(x);
  for (let i = 0; i < count; i++) out[i] = x[i] + y[i];
  return out;
}

/** x[t][j] + bias[j] for the first `tokens` rows of width bias.length; later rows unchanged. */
export function addBiasReference(x: Float32Array, bias: ArrayLike<number>, tokens: number): Float64Array {
  const out = Float64Array.from(x);
  const width = bias.length;
  for (let t = 0; t < tokens; t++) for (let j = 0; j < width; j++) out[t * width + j] = x[t * width + j] + bias[j];
  return out;
}
