// RoPE (HF rotate-half: pairs i and i + d/2) on q and k of the fused qkv projection, and the KV-cache store.
// One thread per (token, head, pair): q heads are rotated into q [tokens][nq][d], k heads rotated into the K cache,
// v heads copied into the V cache; caches are [kvHeads][capacity][headDim] at position startPos + token.
// Prefill runs it; a decode step's one token is rotated and stored by the decode attention kernel (same cosSin, same
// arithmetic, so both paths write the same cache).

export interface RopeShaderShape {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  capacity: number;
  cacheType: 'f32' | 'f16';
}

export const ROPE_WORKGROUP = 256;

const TRIG_CONSTANTS_WGSL = /* wgsl */ `// pi/2 in three parts (Cody-Waite): HI and MID have 8 significant bits, so k * HI and k * MID are exact for
// k < 2^16 (angles up to ~1e5 rad) even where fma is not fused; k * LO is tiny, so its rounding does not matter.
const PIO2_HI = 1.5703125;
const PIO2_MID = 0.000484466552734375;
const PIO2_LO = -6.39757837817001e-7;
const TWO_OVER_PI = 0.6366197723675814;
`;

/** `fn cosSin(a: f32) -> vec2f`, shared with the decode attention (which rotates the decode token itself): both
 * kernels must give the same rotated values bit for bit. */
export const ROPE_COS_SIN_WGSL = /* wgsl */ `${TRIG_CONSTANTS_WGSL}
// Driver cos/sin are only specified to ~2^-11 near zero (SwiftShader is that coarse), so rotate with our own:
// reduce to r in [-pi/4, pi/4] plus a quadrant, then Taylor polynomials (error < 2e-9 on that interval).
fn cosSin(a: f32) -> vec2f {
  let k = round(a * TWO_OVER_PI);
  let r = fma(-k, PIO2_LO, fma(-k, PIO2_MID, fma(-k, PIO2_HI, a)));
  let r2 = r * r;
  let s = r + r * r2 * (-1.0 / 6.0 + r2 * (1.0 / 120.0 + r2 * (-1.0 / 5040.0 + r2 * (1.0 / 362880.0))));
  let c = 1.0 + r2 * (-0.5 + r2 * (1.0 / 24.0 + r2 * (-1.0 / 720.0 + r2 * (1.0 / 40320.0 + r2 * (-1.0 / 3628800.0)))));
  switch (i32(k) & 3) {
    case 0: { return vec2f(c, s); }
    case 1: { return vec2f(-s, c); }
    case 2: { return vec2f(-c, -s); }
    default: { return vec2f(s, -c); }
  }
}
`;

/** `fn cosSin4(a: vec4f) -> CosSin4`: cosSin of 4 angles, the same operations per component (so the same bits), the
 * quadrant picked by selects instead of a switch: for the decode attention's lanes kernel, which rotates a whole head
 * in straight-line code that a CPU driver compiles faster without branches. */
export const ROPE_COS_SIN4_WGSL = /* wgsl */ `${TRIG_CONSTANTS_WGSL}
struct CosSin4 { c: vec4f, s: vec4f }
fn cosSin4(a: vec4f) -> CosSin4 {
  let k = round(a * TWO_OVER_PI);
  let r = fma(-k, vec4f(PIO2_LO), fma(-k, vec4f(PIO2_MID), fma(-k, vec4f(PIO2_HI), a)));
  let r2 = r * r;
  let s = r + r * r2 * (-1.0 / 6.0 + r2 * (1.0 / 120.0 + r2 * (-1.0 / 5040.0 + r2 * (1.0 / 362880.0))));
  let c = 1.0 + r2 * (-0.5 + r2 * (1.0 / 24.0 + r2 * (-1.0 / 720.0 + r2 * (1.0 / 40320.0 + r2 * (-1.0 / 3628800.0)))));
  // Quadrant 0: (c, s), 1: (-s, c), 2: (-c, -s), 3: (s, -c).
  let quadrant = vec4i(k) & vec4i(3);
  let odd = (quadrant & vec4i(1)) != vec4i(0);
  let cosAbs = select(c, s, odd);
  let sinAbs = select(s, c, odd);
  let cosNeg = (quadrant == vec4i(1)) | (quadrant == vec4i(2));
  let sinNeg = quadrant >= vec4i(2);
  return CosSin4(select(cosAbs, -cosAbs, cosNeg), select(sinAbs, -sinAbs, sinNeg));
}
`;

export function ropeWgsl(s: RopeShaderShape): string {
  const half = s.headDim / 2;
  const toCache = s.cacheType === 'f16' ? 'f16' : '';
  return `${s.cacheType === 'f16' ? 'enable f16;\n' : ''}
struct Params { tokens: u32, startPos: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> invFreq: array<f32>;
@group(0) @binding(3) var<storage, read_write> q: array<f32>;
@group(0) @binding(4) var<storage, read_write> kCache: array<${s.cacheType}>;
@group(0) @binding(5) var<storage, read_write> vCache: array<${s.cacheType}>;

const NQ = ${s.numHeads}u;
const NKV = ${s.numKvHeads}u;
const D = ${s.headDim}u;
const HALF = ${half}u;
const CAPACITY = ${s.capacity}u;
const HEADS_PER_TOKEN = NQ + 2u * NKV;

${ROPE_COS_SIN_WGSL}
@compute @workgroup_size(${ROPE_WORKGROUP})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let idx = (wg.x + wg.y * nwg.x) * ${ROPE_WORKGROUP}u + li;
  if (idx >= params.tokens * HEADS_PER_TOKEN * HALF) { return; }
  let t = idx / (HEADS_PER_TOKEN * HALF);
  let head = (idx / HALF) % HEADS_PER_TOKEN;
  let i = idx % HALF;
  let pos = params.startPos + t;
  let src = (t * HEADS_PER_TOKEN + head) * D;
  let x1 = qkv[src + i];
  let x2 = qkv[src + i + HALF];
  if (head >= NQ + NKV) {
    let dst = ((head - NQ - NKV) * CAPACITY + pos) * D;
    vCache[dst + i] = ${toCache}(x1);
    vCache[dst + i + HALF] = ${toCache}(x2);
    return;
  }
  // The angle is rounded to f32 like HF's (inv_freq @ position_ids).float().
  let cs = cosSin(f32(pos) * invFreq[i]);
  let c = cs.x;
  let s = cs.y;
  let y1 = x1 * c - x2 * s;
  let y2 = x2 * c + x1 * s;
  if (head < NQ) {
    let dst = (t * NQ + head) * D;
    q[dst + i] = y1;
    q[dst + i + HALF] = y2;
  } else {
    let dst = ((head - NQ) * CAPACITY + pos) * D;
    kCache[dst + i] = ${toCache}(y1);
    kCache[dst + i + HALF] = ${toCache}(y2);
  }
}
`;
}
