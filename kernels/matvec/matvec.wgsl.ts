// WGSL for y[row] = sum_c W[row][c] * x[c], the decode hot path of every linear layer.
//
// Layout of the work: a workgroup holds ROWS_PER_GROUP row slots of THREADS_PER_ROW threads. The threads of one slot
// walk their row in "units" (one vectorised load each), accumulate in f32, and sum their partials with a tree
// reduction in workgroup memory. Shapes live in the uniform (not baked in) so that one pipeline serves every layer
// and every test shape of a dtype. Weights are read as u32 words / vec4s whatever their dtype, so f16 and q4f16 data
// are decoded with unpack2x16float and need no `shader-f16`. Weights may be bound in row chunks (bindings are limited
// in size); `params.rowCount` is the chunk's row count and `params.outputOffset` already includes its first row.

export type MatvecDtype = 'f32' | 'f16' | 'q4f16' | 'q4f32';

export interface MatvecShaderOptions {
  dtype: MatvecDtype;
  /** Power of two; threads cooperating on one row. */
  threadsPerRow: number;
  rowsPerGroup: number;
  /** f32: vec4 loads (cols % 4 == 0); f16: vec4<u32> loads of 8 halves (cols % 8 == 0). q4 is always vectorised. */
  vectorized: boolean;
  /** inputOffset % 4 == 0: x is read as vec4<f32>. Only used by vectorised paths. */
  alignedInput: boolean;
}

/** Columns consumed by one load ("unit") of a row. */
export function matvecUnitCols(dtype: MatvecDtype, vectorized: boolean): number {
  if (dtype === 'q4f16' || dtype === 'q4f32') return 32; // one vec4<u32> = 32 nibbles = exactly one scale group
  if (!vectorized) return 1;
  return dtype === 'f32' ? 4 : 8;
}

export function matvecWgsl(o: MatvecShaderOptions): string {
  const q4 = o.dtype === 'q4f16' || o.dtype === 'q4f32';
  const vectorized = q4 || o.vectorized;
  const xVec4 = vectorized && o.alignedInput;

  const weightType = o.dtype === 'f32' ? (vectorized ? 'vec4<f32>' : 'f32') : vectorized ? 'vec4<u32>' : 'u32';
  const scalesBinding =
    o.dtype === 'q4f16'
      ? '@group(0) @binding(4) var<storage, read> scales: array<u32>; // f16 pairs'
      : o.dtype === 'q4f32'
        ? '@group(0) @binding(4) var<storage, read> scales: array<f32>;'
        : '';

  const loadX4 = xVec4
    ? `fn loadX4(c: u32) -> vec4<f32> { return x[(params.inputOffset + c) >> 2u]; }`
    : `fn loadX4(c: u32) -> vec4<f32> {
  let i = params.inputOffset + c;
  return vec4<f32>(x[i], x[i + 1u], x[i + 2u], x[i + 3u]);
}`;

  let unitDot: string;
  if (o.dtype === 'f32' && vectorized) {
    unitDot = `return dot(weight[row * params.units + u], loadX4(u * 4u));`;
  } else if (o.dtype === 'f32') {
    unitDot = `return weight[row * params.cols + u] * x[params.inputOffset + u];`;
  } else if (o.dtype === 'f16' && vectorized) {
    unitDot = `let w = weight[row * params.units + u];
  let c = u * 8u;
  let lo = vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
  let hi = vec4<f32>(unpack2x16float(w.z), unpack2x16float(w.w));
  return dot(lo, loadX4(c)) + dot(hi, loadX4(c + 4u));`;
  } else if (o.dtype === 'f16') {
    unitDot = `let i = row * params.cols + u; // element index; two halves per word, the lower one first
  return unpack2x16float(weight[i >> 1u])[i & 1u] * x[params.inputOffset + u];`;
  } else {
    const scale = o.dtype === 'q4f16' ? 'unpack2x16float(scales[g >> 1u])[g & 1u]' : 'scales[g]';
    unitDot = `let g = row * params.units + u; // this row's u-th group of 32 columns
  let w = weight[g];
  let c = u * 32u;
  var s = 0.0;
  for (var k = 0u; k < 4u; k++) {
    // Eight nibbles per word, lowest bits first; value = (q - 7) * scale.
    let lo = vec4<f32>((vec4<u32>(w[k]) >> vec4<u32>(0u, 4u, 8u, 12u)) & vec4<u32>(15u)) - 7.0;
    let hi = vec4<f32>((vec4<u32>(w[k]) >> vec4<u32>(16u, 20u, 24u, 28u)) & vec4<u32>(15u)) - 7.0;
    s += dot(lo, loadX4(c + 8u * k)) + dot(hi, loadX4(c + 8u * k + 4u));
  }
  return s * ${scale};`;
  }

  return /* wgsl */ `
struct Params {
  rowCount: u32,
  inputOffset: u32,
  outputOffset: u32,
  cols: u32,
  units: u32, // loads per row: cols / (columns per load)
}
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> weight: array<${weightType}>;
@group(0) @binding(2) var<storage, read> x: array<${xVec4 ? 'vec4<f32>' : 'f32'}>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
${scalesBinding}

const THREADS_PER_ROW = ${o.threadsPerRow}u;
const ROWS_PER_GROUP = ${o.rowsPerGroup}u;
var<workgroup> partial: array<f32, ${o.threadsPerRow * o.rowsPerGroup}>;

${loadX4}

fn unitDot(row: u32, u: u32) -> f32 {
  ${unitDot}
}

@compute @workgroup_size(${o.threadsPerRow * o.rowsPerGroup})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) groups: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let lane = li % THREADS_PER_ROW;
  let row = (wid.x + wid.y * groups.x) * ROWS_PER_GROUP + li / THREADS_PER_ROW; // 2D dispatch folds into one index
  let units = params.units;
  var acc = 0.0;
  if (row < params.rowCount) {
    for (var u = lane; u < units; u += THREADS_PER_ROW) {
      acc += unitDot(row, u);
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
