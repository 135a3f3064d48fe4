// Tiled matmul for prefill: Y[tokens][ROWS] = X[tokens][COLS] · W^T, W of any stored dtype, dequantised while
// loading tiles. A workgroup of 16×16 threads computes a 64-token × 64-row tile; each thread a 4×4 block. The K
// dimension goes 32 at a time (one q4 group) through workgroup memory holding f32 values (16 KiB in all).
import type { GpuLinear } from '../types';

export const MATMUL_TILE = 64;
export const MATMUL_K_STEP = 32;

/** Shapes come from the uniform, so one shader per dtype serves every layer (fewer compiles, smaller caches). */
export function matmulWgsl(dtype: GpuLinear['dtype']): string {
  const q4 = dtype === 'q4f16' || dtype === 'q4f32';
  const weightDecls = q4
    ? `@group(0) @binding(2) var<storage, read> weight: array<u32>;
@group(0) @binding(3) var<storage, read> scales: array<${dtype === 'q4f16' ? 'f16' : 'f32'}>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;`
    : `@group(0) @binding(2) var<storage, read> weight: array<${dtype}>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;`;
  // Each thread loads 8 consecutive k values of one W row: for q4 exactly one u32 word and its group's scale.
  const loadWeightTile = q4
    ? `if (wRow < rows) {
      let word = weight[wRow * (cols / 8u) + (k0 + lk) / 8u];
      let scale = f32(scales[wRow * (cols / 32u) + k0 / 32u]);
      for (var e = 0u; e < 8u; e++) {
        wTile[(lk + e) * 16u + lr / 4u][lr % 4u] = (f32((word >> (4u * e)) & 0xfu) - 7.0) * scale;
      }
    } else {
      for (var e = 0u; e < 8u; e++) { wTile[(lk + e) * 16u + lr / 4u][lr % 4u] = 0.0; }
    }`
    : `for (var e = 0u; e < 8u; e++) {
      let k = k0 + lk + e;
      var w = 0.0;
      if (wRow < rows && k < cols) { w = f32(weight[wRow * cols + k]); }
      wTile[(lk + e) * 16u + lr / 4u][lr % 4u] = w;
    }`;
  return `${dtype === 'f16' || dtype === 'q4f16' ? 'enable f16;\n' : ''}
struct Params { tokens: u32, rows: u32, cols: u32, pad0: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
${weightDecls}

const K_STEP = ${MATMUL_K_STEP}u;

// Tiles stored k-major as vec4s: xTile[k * 16 + i] holds tokens 4i..4i+3 at k; wTile likewise for rows. A thread
// then reads one vec4 of tokens and one vec4 of rows per k.
var<workgroup> xTile: array<vec4f, ${MATMUL_K_STEP * 16}>;
var<workgroup> wTile: array<vec4f, ${MATMUL_K_STEP * 16}>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let rowBase = wg.x * ${MATMUL_TILE}u;
  let tokenBase = wg.y * ${MATMUL_TILE}u;
  let tokens = params.tokens;
  let rows = params.rows;
  let cols = params.cols;
  // Loader role: 256 threads = 64 tile lines × 4 runs of 8 k values.
  let lr = li / 4u;
  let lk = (li % 4u) * 8u;
  let xToken = tokenBase + lr;
  let wRow = rowBase + lr;
  // acc[j][i]: row rowBase + 4*lid.x + j, token tokenBase + 4*lid.y + i.
  var acc: array<vec4f, 4>;
  for (var k0 = 0u; k0 < cols; k0 += K_STEP) {
    for (var e = 0u; e < 8u; e++) {
      let k = k0 + lk + e;
      var v = 0.0;
      if (xToken < tokens && k < cols) { v = x[xToken * cols + k]; }
      xTile[(lk + e) * 16u + lr / 4u][lr % 4u] = v;
    }
    ${loadWeightTile}
    workgroupBarrier();
    for (var k = 0u; k < K_STEP; k++) {
      let xs = xTile[k * 16u + lid.y];
      let ws = wTile[k * 16u + lid.x];
      acc[0] = fma(xs, vec4f(ws.x), acc[0]);
      acc[1] = fma(xs, vec4f(ws.y), acc[1]);
      acc[2] = fma(xs, vec4f(ws.z), acc[2]);
      acc[3] = fma(xs, vec4f(ws.w), acc[3]);
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let token = tokenBase + lid.y * 4u + i;
    if (token >= tokens) { break; }
    for (var j = 0u; j < 4u; j++) {
      let row = rowBase + lid.x * 4u + j;
      if (row < rows) { y[token * rows + row] = acc[j][i]; }
    }
  }
}
`;
}
