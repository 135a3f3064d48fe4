// WGSL for y[row] = sum_c W[row][c] * x[c] when a row cannot be read in vectors: f32 rows whose length is not a
// multiple of 4, f16 rows not a multiple of 8 (tiny test shapes; every real model uses the tiled kernel in
// matvec.wgsl.ts). Groups of THREADS_PER_ROW threads walk one row each and sum with a tree in workgroup memory.
// f16 is read as u32 pairs and decoded with unpack2x16float, so it needs no `shader-f16`.

export interface MatvecScalarShaderOptions {
  dtype: 'f32' | 'f16';
  /** Power of two; threads cooperating on one row. */
  threadsPerRow: number;
  /** Threads per workgroup (power of two, >= threadsPerRow). */
  workgroupSize: number;
}

export function matvecScalarWgsl(o: MatvecScalarShaderOptions): string {
  // i: element index from the start of the binding (weightShift: elements between the binding's aligned start and
  // the chunk's first row). f16: two halves per word, the lower one first.
  const load = o.dtype === 'f32' ? 'weight[i]' : 'unpack2x16float(weight[i >> 1u])[i & 1u]';
  return /* wgsl */ `
struct Params {
  rowCount: u32,
  inputOffset: u32,
  outputOffset: u32,
  cols: u32,
  weightShift: u32,
}
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> weight: array<${o.dtype === 'f32' ? 'f32' : 'u32'}>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

const THREADS_PER_ROW = ${o.threadsPerRow}u;
const WG = ${o.workgroupSize}u;
var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) groups: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let lane = li % THREADS_PER_ROW;
  let row = (wid.x + wid.y * groups.x) * (WG / THREADS_PER_ROW) + li / THREADS_PER_ROW;
  var acc = 0.0;
  if (row < params.rowCount) {
    for (var c = lane; c < params.cols; c += THREADS_PER_ROW) {
      let i = params.weightShift + row * params.cols + c;
      acc += ${load} * x[params.inputOffset + c];
    }
  }
  partial[li] = acc;
  for (var stride = THREADS_PER_ROW / 2u; stride > 0u; stride /= 2u) {
    workgroupBarrier();
    if (lane < stride) {
      partial[li] += partial[li + stride];
    }
  }
  if (lane == 0u && row < params.rowCount) {
    y[params.outputOffset + row] = partial[li];
  }
}
`;
}
