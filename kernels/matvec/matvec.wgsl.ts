// WGSL for y[row] = sum_c W[row][c] * x[c], the decode hot path of every linear layer.
//
// Layout of the work: a workgroup holds `slots` groups of THREADS_PER_ROW threads; each group owns ROWS_PER_THREAD
// consecutive rows. Its threads walk the columns in "units" (one vectorised weight load each), load x for a unit
// once and use it for all their rows, accumulate in f32, and sum their partials with a tree reduction in workgroup
// memory. Shapes live in the uniform (not baked in) so that one pipeline serves every layer
// and every test shape of a dtype. Weights are read as u32 words / vec4s whatever their dtype, so f16 and q4f16 data
// are decoded with unpack2x16float and need no `shader-f16`. Weights may be bound in row chunks (bindings are limited
// in size); `params.rowCount` is the chunk's row count and `params.outputOffset` already includes its first row.

export type MatvecDtype = 'f32' | 'f16' | 'q4f16' | 'q4f32';

export interface MatvecShaderOptions {
  dtype: MatvecDtype;
  /** Power of two; threads cooperating on one row. */
  threadsPerRow: number;
  /** Groups of threadsPerRow threads in a workgroup. */
  slots: number;
  /** Rows each group of threads computes together (x is loaded once for all of them). */
  rowsPerThread: number;
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

  // A "unit" is one vectorised weight load of a row; its x values are loaded once (loadXUnit) and reused for every
  // row the thread handles (dotUnit), which matters most for q4 where x is 8x the bytes of the weights.
  let xUnit: string;
  let unitDot: string;
  if (o.dtype === 'f32' && vectorized) {
    xUnit = 'alias XUnit = vec4<f32>;\nfn loadXUnit(u: u32) -> XUnit { return loadX4(u * 4u); }';
    unitDot = 'return dot(weight[row * params.units + u], xs);';
  } else if (o.dtype === 'f32') {
    xUnit = 'alias XUnit = f32;\nfn loadXUnit(u: u32) -> XUnit { return x[params.inputOffset + u]; }';
    unitDot = 'return weight[row * params.cols + u] * xs;';
  } else if (o.dtype === 'f16' && vectorized) {
    xUnit = `alias XUnit = array<vec4<f32>, 2>;
fn loadXUnit(u: u32) -> XUnit { return XUnit(loadX4(u * 8u), loadX4(u * 8u + 4u)); }`;
    unitDot = `let w = weight[row * params.units + u];
  let lo = vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
  let hi = vec4<f32>(unpack2x16float(w.z), unpack2x16float(w.w));
  return dot(lo, xs[0]) + dot(hi, xs[1]);`;
  } else if (o.dtype === 'f16') {
    xUnit = 'alias XUnit = f32;\nfn loadXUnit(u: u32) -> XUnit { return x[params.inputOffset + u]; }';
    unitDot = `let i = row * params.cols + u; // element index; two halves per word, the lower one first
  return unpack2x16float(weight[i >> 1u])[i & 1u] * xs;`;
  } else {
    xUnit = `alias XUnit = array<vec4<f32>, 8>;
fn loadXUnit(u: u32) -> XUnit {
  let c = u * 32u;
  return XUnit(loadX4(c), loadX4(c + 4u), loadX4(c + 8u), loadX4(c + 12u),
               loadX4(c + 16u), loadX4(c + 20u), loadX4(c + 24u), loadX4(c + 28u));
}`;
    const scale = o.dtype === 'q4f16' ? 'unpack2x16float(scales[g >> 1u])[g & 1u]' : 'scales[g]';
    unitDot = `let g = row * params.units + u; // this row's u-th group of 32 columns
  let w = weight[g];
  var s = 0.0;
  for (var k = 0u; k < 4u; k++) {
    // Eight nibbles per word, lowest bits first; value = (q - 7) * scale.
    let lo = vec4<f32>((vec4<u32>(w[k]) >> vec4<u32>(0u, 4u, 8u, 12u)) & vec4<u32>(15u)) - 7.0;
    let hi = vec4<f32>((vec4<u32>(w[k]) >> vec4<u32>(16u, 20u, 24u, 28u)) & vec4<u32>(15u)) - 7.0;
    s += dot(lo, xs[2u * k]) + dot(hi, xs[2u * k + 1u]);
  }
  return s * ${scale};`;
  }

  const wg = o.threadsPerRow * o.slots;
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
const ROWS_PER_THREAD = ${o.rowsPerThread}u;
const ROWS_PER_GROUP = ${o.slots * o.rowsPerThread}u;
const WG = ${wg}u;
// partial[k * WG + li]: thread li's sum for the k-th of its rows.
var<workgroup> partial: array<f32, ${wg * o.rowsPerThread}>;

${loadX4}

${xUnit}

fn dotUnit(row: u32, u: u32, xs: XUnit) -> f32 {
  ${unitDot}
}

@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) groups: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let lane = li % THREADS_PER_ROW;
  // 2D dispatch folds into one workgroup index; each slot of THREADS_PER_ROW threads owns ROWS_PER_THREAD rows.
  let firstRow = (wid.x + wid.y * groups.x) * ROWS_PER_GROUP + (li / THREADS_PER_ROW) * ROWS_PER_THREAD;
  let units = params.units;
  var acc: array<f32, ${o.rowsPerThread}>;
  for (var u = lane; u < units; u += THREADS_PER_ROW) {
    if (firstRow >= params.rowCount) {
      break;
    }
    let xs = loadXUnit(u);
    for (var k = 0u; k < ROWS_PER_THREAD; k++) {
      if (firstRow + k < params.rowCount) {
        acc[k] += dotUnit(firstRow + k, u, xs);
      }
    }
  }
  for (var k = 0u; k < ROWS_PER_THREAD; k++) {
    partial[k * WG + li] = acc[k];
  }
  for (var stride = THREADS_PER_ROW / 2u; stride > 0u; stride /= 2u) {
    workgroupBarrier();
    if (lane < stride) {
      for (var k = 0u; k < ROWS_PER_THREAD; k++) {
        partial[k * WG + li] += partial[k * WG + li + stride];
      }
    }
  }
  if (lane == 0u) {
    for (var k = 0u; k < ROWS_PER_THREAD; k++) {
      if (firstRow + k < params.rowCount) {
        y[params.outputOffset + firstRow + k] = partial[k * WG + li];
      }
    }
  }
}
`;
}
