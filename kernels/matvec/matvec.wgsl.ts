// WGSL for y[row] = sum_c W[row][c] * x[c], the decode hot path of every linear layer, with optional fusions:
//   rmsNorm   prologue: x is the un-normalised residual stream h; the kernel computes W (gamma * h) and scales each
//             result by rsqrt(mean(h^2) + eps), i.e. W rmsnorm(h), without a separate norm dispatch.
//   siluMul   gate_up epilogue: two matrices (gate, up) share x; y[r] = silu(gate_r . x) * (up_r . x).
//   accumulate residual epilogue: y[r] += result instead of y[r] = result.
//   splitCombine prologue: x is the output of split-K decode attention still in parts (per head and split an
//             accumulator, a max logit and a sum of exponentials); each workgroup first takes per head the max M and
//             the total sum_s e^(m_s - M) l_s (a few hundred values, shared by every workgroup: cache reads), then each
//             staged x value is sum_s e^(m_s - M) acc_s / total, the same arithmetic as the attention's combine
//             kernel, so the o projection needs no combine dispatch before it.
//
// Work layout: the weight is read in "units", one vec4 load each (q4: 32 columns = one scale group; f16: 8 columns;
// f32: 4). x is staged in workgroup memory one tile of columns at a time, already arranged for the unit's decode, so
// each x value is read from storage once per workgroup and the inner loop only reads workgroup memory. A workgroup
// holds SLOTS = WG / THREADS_PER_ROW groups of threads; the group in slot s owns output rows base + j * SLOTS + s for
// j < ROWS_PER_THREAD (interleaved, so stores and row reads of neighbouring threads are neighbours), walks the units
// of the tile THREADS_PER_ROW apart, and reuses each staged x unit for all its rows. Partial sums of a row's threads
// are combined with subgroup shuffles when the adapter has subgroups at least THREADS_PER_ROW wide, else with a tree
// in workgroup memory. Out-of-range rows are clamped for loads and skipped at the store: no branch in the hot loop.
//
// q4 decode without shifts: nibble k of a word, masked in place, is q * 16^k; minus 7 * 16^k it is (q - 7) * 16^k,
// an exact integer, converted once to f32 and multiplied by x * 16^-k (staged pre-scaled; powers of two are exact).
// The staged q4 unit is 8 vec4s, vec4 k = columns (k, k + 8, k + 16, k + 24) of the group: word j of the unit holds
// columns 8j..8j+7, so one vec4 mask of the four words yields nibble k of all four at once.
// The top nibble is shifted down by 4 first so that every masked value fits an i32.
//
// Shapes live in the uniform (not baked in) so that one pipeline serves every layer of a dtype. Weights may be
// bound in row chunks (bindings are limited in size); a binding starts at an aligned offset at or before its chunk's
// first row, `weightShift`/`scaleShift` say how many elements precede that row.

export type MatvecDtype = 'f32' | 'f16' | 'q4f16' | 'q4f32';

/** `fn splitStats(base, n) -> vec2<f32>`: over the n splits of a head whose records start at split `base` of
 * partMaxSum ([head][split] (max logit, sum of exp)), the max M and the total sum_s e^(m_s - M) l_s (the combine
 * kernel's order). Shared by both kernels' split-combine prologues; needs the partMaxSum binding. */
export const SPLIT_STATS_WGSL = /* wgsl */ `
fn splitStats(base: u32, n: u32) -> vec2<f32> {
  var m = -3.0e38;
  for (var s = 0u; s < n; s++) { m = max(m, partMaxSum[(base + s) * 2u]); }
  var total = 0.0;
  for (var s = 0u; s < n; s++) { total += exp(partMaxSum[(base + s) * 2u] - m) * partMaxSum[(base + s) * 2u + 1u]; }
  return vec2<f32>(m, total);
}`;

export interface MatvecShaderOptions {
  dtype: MatvecDtype;
  /** Power of two; threads cooperating on one row. */
  threadsPerRow: number;
  /** Threads per workgroup: a power of two >= threadsPerRow. */
  workgroupSize: number;
  /** Output rows each group of threadsPerRow threads computes (it reuses each x unit for all of them). */
  rowsPerThread: number;
  /** Units of x staged in workgroup memory per tile. */
  tileUnits: number;
  /** Reduce across a row's threads with subgroupShuffleXor (needs the subgroups feature and a subgroup size >=
   * threadsPerRow); otherwise a tree in workgroup memory. */
  subgroupReduce: boolean;
  /** Prologue: normalise x by RMS with a [cols] gamma vector of this element type. */
  rmsNorm?: 'f32' | 'f16';
  /** Epilogue: y[r] = silu(gate_r . x) * (up_r . x), the up matrix in bindings 6 (weight) and 7 (scales). */
  siluMul: boolean;
  /** Epilogue: y[r] += result. */
  accumulate: boolean;
  /** Prologue: x (binding 2) holds split attention accumulators [heads][maxSplits][headDim], binding 8 their
   * (max logit, sum of exp) pairs [heads][maxSplits][2], binding 9 a uniform whose u32 word 1 is the split count. */
  splitCombine?: SplitCombineShape;
}

export interface SplitCombineShape {
  heads: number;
  headDim: number;
  maxSplits: number;
}

/** Columns consumed by one vec4 load ("unit") of a row. */
export function matvecUnitCols(dtype: MatvecDtype): number {
  if (dtype === 'q4f16' || dtype === 'q4f32') return 32; // one vec4<u32> = 32 nibbles = exactly one scale group
  return dtype === 'f32' ? 4 : 8;
}

/** vec4<f32> of staged x per unit. */
function stagedPerUnit(dtype: MatvecDtype): number {
  return dtype === 'q4f16' || dtype === 'q4f32' ? 8 : matvecUnitCols(dtype) / 4;
}

/** Bytes of workgroup memory the kernel declares (for checking against the device limit). */
export function matvecWorkgroupBytes(o: MatvecShaderOptions): number {
  const matrices = o.siluMul ? 2 : 1;
  const staged = o.tileUnits * stagedPerUnit(o.dtype) * 16;
  const tree = o.subgroupReduce || o.threadsPerRow === 1 ? 0 : o.workgroupSize * o.rowsPerThread * matrices * 4;
  const norm = o.rmsNorm ? o.workgroupSize * 4 : 0;
  const combine = o.splitCombine ? o.splitCombine.heads * 8 : 0;
  return staged + tree + norm + combine;
}

export function matvecWgsl(o: MatvecShaderOptions): string {
  const q4 = o.dtype === 'q4f16' || o.dtype === 'q4f32';
  const matrices = o.siluMul ? 2 : 1;
  const xv = stagedPerUnit(o.dtype);
  const wg = o.workgroupSize;
  const tpr = o.threadsPerRow;
  const slots = wg / tpr;
  const treeReduce = tpr > 1 && !o.subgroupReduce;
  const weightType = o.dtype === 'f32' ? 'vec4<f32>' : 'vec4<u32>';
  const scaleType = o.dtype === 'q4f16' ? 'u32' : 'f32'; // q4f16: f16 pairs

  const bindings = [
    '@group(0) @binding(0) var<uniform> params: Params;',
    `@group(0) @binding(1) var<storage, read> weight: array<${weightType}>;`,
    '@group(0) @binding(2) var<storage, read> x: array<f32>;',
    '@group(0) @binding(3) var<storage, read_write> y: array<f32>;',
  ];
  if (q4) bindings.push(`@group(0) @binding(4) var<storage, read> scales: array<${scaleType}>;`);
  if (o.rmsNorm) {
    bindings.push(`@group(0) @binding(5) var<storage, read> gamma: array<${o.rmsNorm === 'f16' ? 'u32' : 'f32'}>;`);
  }
  if (o.splitCombine) {
    bindings.push('@group(0) @binding(8) var<storage, read> partMaxSum: array<f32>;');
    bindings.push('@group(0) @binding(9) var<uniform> splitParams: vec4<u32>; // .y: split count');
  }
  if (o.siluMul) {
    bindings.push(`@group(0) @binding(6) var<storage, read> weightUp: array<${weightType}>;`);
    if (q4) bindings.push(`@group(0) @binding(7) var<storage, read> scalesUp: array<${scaleType}>;`);
  }

  // x value at column c (within the row of x), gamma applied for the RMSNorm prologue.
  const gammaAt =
    o.rmsNorm === 'f16' ? 'unpack2x16float(gamma[c >> 1u])[c & 1u]' : o.rmsNorm === 'f32' ? 'gamma[c]' : '';
  const sc = o.splitCombine;
  const xAt = sc
    ? `const COMBINE_HEADS = ${sc.heads}u;
const COMBINE_D = ${sc.headDim}u;
const MAX_SPLITS = ${sc.maxSplits}u;
var<workgroup> combineStats: array<vec2<f32>, COMBINE_HEADS>; // per head (max logit M, total)

// Per head: M = max_s m_s, total = sum_s e^(m_s - M) l_s (the order and arithmetic of the combine kernel).
${SPLIT_STATS_WGSL}
fn combineSplitStats(li: u32) {
  for (var h = li; h < COMBINE_HEADS; h += WG) { combineStats[h] = splitStats(h * MAX_SPLITS, splitParams.y); }
  workgroupBarrier();
}

fn xAt(c: u32) -> f32 {
  let h = c / COMBINE_D;
  let stats = combineStats[h];
  let base = h * MAX_SPLITS;
  var v = 0.0;
  for (var s = 0u; s < splitParams.y; s++) {
    v += exp(partMaxSum[(base + s) * 2u] - stats.x) * x[(base + s) * COMBINE_D + c % COMBINE_D];
  }
  return v / stats.y;
}`
    : `fn xAt(c: u32) -> f32 {
  let v = x[params.inputOffset + c];${o.rmsNorm ? `\n  sumSquares += v * v;\n  return v * ${gammaAt};` : '\n  return v;'}
}`;

  // Stage unit u's vec4 k of x into workgroup memory.
  const stage = q4
    ? `let c = u * 32u + k;
      // Nibble k is multiplied as (q - 7) * 16^k (k = 7: 16^6, it is shifted down by 4 first).
      let scale = exp2(-4.0 * f32(min(k, 6u)));
      xs[i] = vec4<f32>(xAt(c), xAt(c + 8u), xAt(c + 16u), xAt(c + 24u)) * scale;`
    : `let c = u * ${matvecUnitCols(o.dtype)}u + 4u * k;
      xs[i] = vec4<f32>(xAt(c), xAt(c + 1u), xAt(c + 2u), xAt(c + 3u));`;

  // Dot product of one unit of a row with the staged x (xu0..xu{xv-1}).
  const scaleOf = (s: string, idx: string) =>
    o.dtype === 'q4f16' ? `unpack2x16float(${s}[${idx} >> 1u])[${idx} & 1u]` : `${s}[${idx}]`;
  const unitDot = (w: string, s: string) => {
    if (o.dtype === 'f32') return `fn dot_${w}(wi: u32, si: u32) -> f32 { return dot(${w}[wi], xu0); }`;
    if (o.dtype === 'f16') {
      return `fn dot_${w}(wi: u32, si: u32) -> f32 {
  let w = ${w}[wi];
  return dot(vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y)), xu0) +
         dot(vec4<f32>(unpack2x16float(w.z), unpack2x16float(w.w)), xu1);
}`;
    }
    const nib = (k: number) => {
      const word = k === 7 ? '(w >> vec4<u32>(4u))' : 'w';
      const shift = k === 7 ? 24 : 4 * k;
      const mask = `0x${(0xf * 2 ** shift).toString(16)}u`;
      const offset = 7 * 2 ** shift;
      return `vec4<f32>(bitcast<vec4<i32>>(${word} & vec4<u32>(${mask})) - vec4<i32>(${offset}))`;
    };
    const terms = [`var d = ${nib(0)} * xu0;`];
    for (let k = 1; k < 8; k++) terms.push(`d = fma(${nib(k)}, xu${k}, d);`);
    return `fn dot_${w}(wi: u32, si: u32) -> f32 {
  let w = ${w}[wi];
  ${terms.join('\n  ')}
  return (d.x + d.y + d.z + d.w) * ${scaleOf(s === 'weight' ? 'scales' : 'scalesUp', 'si')};
}`;
  };

  // Accumulators acc_j_m: output row j of this thread, matrix m (0: weight / gate, 1: up).
  const accs: string[] = [];
  for (let j = 0; j < o.rowsPerThread; j++) for (let m = 0; m < matrices; m++) accs.push(`acc_${j}_${m}`);
  const rowDecl: string[] = [];
  const rowBody: string[] = [];
  for (let j = 0; j < o.rowsPerThread; j++) {
    rowDecl.push(`let r${j} = min(base + ${j}u * SLOTS, last) * units;`);
    rowBody.push(`acc_${j}_0 += dot_weight(params.weightShift + r${j} + u, params.scaleShift + r${j} + u);`);
    if (o.siluMul) {
      rowBody.push(`acc_${j}_1 += dot_weightUp(params.weightShiftUp + r${j} + u, params.scaleShiftUp + r${j} + u);`);
    }
  }

  let reduce = '';
  if (tpr > 1 && o.subgroupReduce) {
    reduce = `for (var off = THREADS_PER_ROW / 2u; off > 0u; off >>= 1u) {
${accs.map((a) => `    ${a} += subgroupShuffleXor(${a}, off);`).join('\n')}
  }`;
  } else if (treeReduce) {
    reduce = `${accs.map((a, i) => `partial[${i}u * WG + li] = ${a};`).join('\n  ')}
  for (var stride = THREADS_PER_ROW / 2u; stride > 0u; stride >>= 1u) {
    workgroupBarrier();
    if (lane < stride) {
      for (var i = 0u; i < ${accs.length}u; i++) {
        partial[i * WG + li] += partial[i * WG + li + stride];
      }
    }
  }
  ${accs.map((a, i) => `${a} = partial[${i}u * WG + li];`).join('\n  ')}`;
  }

  const normScale = o.rmsNorm
    ? `normPartial[li] = sumSquares;
  workgroupBarrier();
  var total = 0.0;
  for (var i = 0u; i < WG; i++) {
    total += normPartial[i];
  }
  let invRms = inverseSqrt(total / f32(params.cols) + params.eps);`
    : '';
  const store: string[] = [];
  for (let j = 0; j < o.rowsPerThread; j++) {
    const g = o.rmsNorm ? `acc_${j}_0 * invRms` : `acc_${j}_0`;
    const up = o.rmsNorm ? `acc_${j}_1 * invRms` : `acc_${j}_1`;
    // silu(g) = g * sigmoid(g); for very negative g exp overflows to inf and the quotient is -0, as it should be.
    const value = o.siluMul
      ? `let g${j} = ${g};\n    let v${j} = g${j} / (1.0 + exp(-g${j})) * ${up};`
      : `let v${j} = ${g};`;
    const target = `y[params.outputOffset + base + ${j}u * SLOTS]`;
    store.push(`if (base + ${j}u * SLOTS < params.rowCount) {
    ${value}
    ${target} = ${o.accumulate ? `${target} + v${j}` : `v${j}`};
  }`);
  }

  return /* wgsl */ `${o.subgroupReduce && tpr > 1 ? 'enable subgroups;\n' : ''}
struct Params {
  rowCount: u32,
  inputOffset: u32,
  outputOffset: u32,
  cols: u32,
  units: u32, // vec4 loads per row: cols / ${matvecUnitCols(o.dtype)}
  weightShift: u32, // vec4s between the weight binding's start and this chunk's first row
  scaleShift: u32, // scales between the scales binding's start and this chunk's first row
  weightShiftUp: u32,
  scaleShiftUp: u32,
  eps: f32,
}
${bindings.join('\n')}

const THREADS_PER_ROW = ${tpr}u;
const WG = ${wg}u;
const SLOTS = ${slots}u;
const ROWS_PER_GROUP = ${slots * o.rowsPerThread}u;
const TILE_UNITS = ${o.tileUnits}u;
const XV = ${xv}u; // staged vec4s per unit
var<workgroup> xs: array<vec4<f32>, ${o.tileUnits * xv}>;
${treeReduce ? `var<workgroup> partial: array<f32, ${wg * accs.length}>;` : ''}
${o.rmsNorm ? `var<workgroup> normPartial: array<f32, ${wg}>;` : ''}
${o.rmsNorm ? 'var<private> sumSquares: f32;' : ''}
${Array.from({ length: xv }, (_, k) => `var<private> xu${k}: vec4<f32>;`).join('\n')}

${xAt}

${unitDot('weight', 'weight')}
${o.siluMul ? unitDot('weightUp', 'weightUp') : ''}

@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) groups: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let lane = li % THREADS_PER_ROW;
  let base = (wid.x + wid.y * groups.x) * ROWS_PER_GROUP + li / THREADS_PER_ROW;
  let last = params.rowCount - 1u;
  let units = params.units;
  ${sc ? 'combineSplitStats(li);' : ''}
  ${rowDecl.join('\n  ')}
  ${accs.map((a) => `var ${a} = 0.0;`).join('\n  ')}
  for (var t0 = 0u; t0 < units; t0 += TILE_UNITS) {
    let tile = min(TILE_UNITS, units - t0);
    if (t0 > 0u) {
      workgroupBarrier(); // everyone is done with the previous tile
    }
    for (var i = li; i < tile * XV; i += WG) {
      let u = t0 + i / XV;
      let k = i % XV;
      ${stage}
    }
    workgroupBarrier();
    for (var ul = lane; ul < tile; ul += THREADS_PER_ROW) {
      let u = t0 + ul;
      ${Array.from({ length: xv }, (_, k) => `xu${k} = xs[ul * XV + ${k}u];`).join('\n      ')}
      ${rowBody.join('\n      ')}
    }
  }
  ${reduce}
  ${normScale}
  if (lane != 0u) {
    return;
  }
  ${store.join('\n  ')}
}
`;
}
