// RMSNorm over segments of length N: y = x * rsqrt(mean(x^2) + eps) * weight, in f32. One workgroup per segment.
// A "row" (token) holds SEGMENTS consecutive segments starting at ROW_OFFSET, rows ROW_STRIDE apart: the plain norm is
// one segment per row; Qwen3's q/k norm is one segment per head inside the qkv row.
// With a residual (plain norm only): x += residual first, written back to x, then y = norm(x) -- the transformer's
// residual add fused into the norm that follows it (one dispatch instead of two, the same f32 results).

export interface RmsNormShaderShape {
  n: number;
  segments: number;
  rowStride: number;
  rowOffset: number;
  eps: number;
  weightType: 'f32' | 'f16';
  inPlace: boolean;
  /** x += residual before normalising (needs a separate output). */
  residual: boolean;
  workgroup: number;
}

export function rmsNormWgsl(s: RmsNormShaderShape): string {
  if (s.residual && s.inPlace) throw new Error('rmsnorm: a residual needs a separate output');
  const io = s.inPlace
    ? '@group(0) @binding(1) var<storage, read_write> x: array<f32>;\n@group(0) @binding(2) var<storage, read> weight: array<WEIGHT>;'
    : `@group(0) @binding(1) var<storage, ${s.residual ? 'read_write' : 'read'}> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<WEIGHT>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;${
        s.residual ? '\n@group(0) @binding(4) var<storage, read> residual: array<f32>;' : ''
      }`;
  // Each thread adds the residual to the elements it owns and reads only those back below.
  const load = s.residual ? 'x[base + c] + residual[base + c];\n    x[base + c] = v' : 'x[base + c]';
  const store = s.inPlace ? 'x' : 'y';
  return `${s.weightType === 'f16' ? 'enable f16;\n' : ''}
struct Params { rows: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> params: Params;
${io.replaceAll('WEIGHT', s.weightType)}

const N = ${s.n}u;
const SEGMENTS = ${s.segments}u;
const ROW_STRIDE = ${s.rowStride}u;
const ROW_OFFSET = ${s.rowOffset}u;
const EPS = f32(${s.eps.toExponential()});
const WG = ${s.workgroup}u;

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let segment = wg.x + wg.y * nwg.x;
  if (segment >= params.rows * SEGMENTS) { return; }
  let base = (segment / SEGMENTS) * ROW_STRIDE + ROW_OFFSET + (segment % SEGMENTS) * N;
  var sum = 0.0;
  for (var c = li; c < N; c += WG) {
    let v = ${load};
    sum += v * v;
  }
  partial[li] = sum;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half /= 2u) {
    if (li < half) { partial[li] += partial[li + half]; }
    workgroupBarrier();
  }
  let scale = inverseSqrt(partial[0] / f32(N) + EPS);
  // Each thread rewrites only the elements it read, so the in-place form needs no extra barrier.
  for (var c = li; c < N; c += WG) {
    ${store}[base + c] = x[base + c] * scale * f32(weight[c]);
  }
}
`;
}
