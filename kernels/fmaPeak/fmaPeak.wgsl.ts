// The adapter's f32 FMA rate, the physical limit prefill is measured against: every invocation runs CHAINS
// independent vec4 FMA chains (enough to cover the FMA latency on a CPU or a GPU lane) for `iterations` steps,
// with nothing else in the loop. Each chain is x <- fma(x, m, c) with |m| < 1, so values stay bounded.

export interface FmaPeakShader {
  /** Independent vec4 accumulators per invocation. */
  chains: number;
  workgroupSize: number;
}

/** FMAs per loop iteration in the shader: the loop body is unrolled UNROLL times. */
export const FMA_PEAK_UNROLL = 4;

export function fmaPeakWgsl(s: FmaPeakShader): string {
  const chains = [...Array(s.chains).keys()];
  const body = chains.map((i) => `a${i} = fma(a${i}, m, c);`).join(' ');
  return /* wgsl */ `
struct Params { iterations: u32, m: f32, c: f32, pad0: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>; // one value per invocation

@compute @workgroup_size(${s.workgroupSize})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let start = f32(gid.x % 1024u) / 1024.0;
  ${chains.map((i) => `var a${i} = vec4f(start) + vec4f(${i}.0, ${i}.25, ${i}.5, ${i}.75);`).join('\n  ')}
  let m = vec4f(params.m);
  let c = vec4f(params.c);
  for (var i = 0u; i < params.iterations; i++) {
    ${Array(FMA_PEAK_UNROLL).fill(body).join('\n    ')}
  }
  out[gid.x] = dot(${chains.map((i) => `a${i}`).join(' + ')}, vec4f(1.0));
}
`;
}
