// Plain-TS reference for the FMA-rate kernel's output (what each invocation writes), in float64 with each step
// rounded to f32.

export function fmaPeakReference(
  invocations: number,
  chains: number,
  steps: number,
  m: number,
  c: number,
): Float32Array {
  const out = new Float32Array(invocations);
  const mf = Math.fround(m);
  const cf = Math.fround(c);
  for (let g = 0; g < invocations; g++) {
    const start = Math.fround((g % 1024) / 1024);
    let sum = 0;
    for (let i = 0; i < chains; i++) {
      for (const offset of [0, 0.25, 0.5, 0.75]) {
        let a = Math.fround(start + Math.fround(i + offset));
        for (let s = 0; s < steps; s++) a = Math.fround(a * mf + cf);
        sum += a;
      }
    }
    out[g] = sum;
  }
  return out;
}
