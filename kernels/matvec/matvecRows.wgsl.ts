// WGSL for the q4 matvec on CPU adapters (lavapipe, SwiftShader): one output row per invocation, x read through a
// uniform binding, no workgroup memory, no barrier. Same fusions as matvec.wgsl.ts (RMSNorm prologue, SiLU·mul
// gate_up epilogue, residual-add epilogue) and the same Params, so the wrapper binds both alike.
//
// Why a second kernel: a CPU driver runs the invocations of a workgroup as the lanes of SIMD registers, and Mesa's
// llvmpipe (Mesa 25) turns every storage or workgroup-memory load whose address it cannot prove constant into one
// scalar load per lane, each behind its own mask test and bounds check. A uniform-buffer load at an address that is
// the same in every lane becomes one load and a broadcast. The tiled kernel reads each x value from workgroup memory
// once per lane (32 scalar loads per unit, more than its weight loads), and its barriers make llvmpipe run the
// workgroup as coroutines. Here x comes from the uniform binding as broadcasts, each lane streams its own rows'
// weight words, and up to 16 rows per invocation reuse each broadcast x.
//
// q4 decode: nibble k of a word is masked in place (q * 16^k, exact as an i32; the top nibble is shifted down 4 first)
// and multiplied by x * 16^-k, staged once per unit and shared by every row. The -7 offset is taken out per unit:
// sum_c (q_c - 7) x_c = sum_c q_c x_c - 7 sum_c x_c, where the second sum is the same for every row.
// Word j of a unit holds columns 8j..8j+7, so the staged vec4 k is columns (k, k + 8, k + 16, k + 24).
//
// With subgroupSize set, x (and gamma) are not read through the uniform binding by every lane: lavapipe (Mesa 25.0)
// keeps the loop counter in a SIMD register, so `xin[u * 8u + m]` becomes a gather of 8 identical addresses, and the
// unit's 8 vec4 cost 256 scalar loads, most of the kernel's time (a probe without them ran 1.8x faster). Instead lane
// l loads vec4 l of the unit (two per lane on 4-lane subgroups) and the others read it from lane l (readLane). The
// code is generated for one subgroup size; the shader checks it at run time and writes NaN if the device ran another
// or left lanes out (as the rows matmul does).

import { SUBGROUP_SIZES } from '../gpuContext';
import { readLane } from '../subgroupRead';
import { SPLIT_STATS_WGSL } from './matvec.wgsl';

export interface MatvecRowsShaderOptions {
  dtype: 'q4f16' | 'q4f32';
  /** Columns (a multiple of 32): the uniform x array is sized by it. */
  cols: number;
  workgroupSize: number;
  /** Output rows per invocation, WG apart. */
  rowsPerThread: number;
  rmsNorm?: 'f32' | 'f16';
  siluMul: boolean;
  accumulate: boolean;
  /** The adapter's fixed subgroup size (4, 8, 16 or 32): x and gamma are loaded once per lane and broadcast. */
  subgroupSize?: number;
  /** x is split-K decode attention's partials (matvec.wgsl.ts's splitCombine prologue): each lane combines its vec4
   * of the unit across the splits before the broadcast. Needs subgroupSize and headDim a multiple of 32 (a unit lies
   * in one head). */
  splitCombine?: { heads: number; headDim: number; maxSplits: number };
}

export function matvecRowsWgsl(o: MatvecRowsShaderOptions): string {
  const matrices = o.siluMul ? 2 : 1;
  const wg = o.workgroupSize;
  const scaleType = o.dtype === 'q4f16' ? 'u32' : 'f32';
  const sc = o.splitCombine;
  if (sc && (o.subgroupSize === undefined || sc.headDim % 32 !== 0 || o.rmsNorm || sc.heads * sc.headDim !== o.cols)) {
    throw new Error('matvec rows: splitCombine needs a subgroup size, whole units per head and no rmsNorm');
  }
  const bindings = [
    '@group(0) @binding(0) var<uniform> params: Params;',
    '@group(0) @binding(1) var<storage, read> weight: array<vec4<u32>>;',
    sc
      ? '@group(0) @binding(2) var<storage, read> xin: array<vec4<f32>>; // [head][split][headDim / 4]'
      : `@group(0) @binding(2) var<uniform> xin: array<vec4<f32>, ${o.cols / 4}>;`,
    '@group(0) @binding(3) var<storage, read_write> y: array<f32>;',
    `@group(0) @binding(4) var<storage, read> scales: array<${scaleType}>;`,
  ];
  if (sc) {
    bindings.push('@group(0) @binding(8) var<storage, read> partMaxSum: array<f32>; // [head][split] (max, sum)');
    bindings.push('@group(0) @binding(9) var<uniform> splitParams: vec4<u32>; // .y: split count');
  }
  // gamma through a uniform binding as well (its index is the same in every lane): f16 as 8 halves per vec4<u32>.
  if (o.rmsNorm === 'f16') bindings.push(`@group(0) @binding(5) var<uniform> gamma: array<vec4<u32>, ${o.cols / 8}>;`);
  if (o.rmsNorm === 'f32') bindings.push(`@group(0) @binding(5) var<uniform> gamma: array<vec4<f32>, ${o.cols / 4}>;`);
  if (o.siluMul) {
    bindings.push('@group(0) @binding(6) var<storage, read> weightUp: array<vec4<u32>>;');
    bindings.push(`@group(0) @binding(7) var<storage, read> scalesUp: array<${scaleType}>;`);
  }

  // The unit's 32 x values in natural order: 8 vec4 (columns 4m..4m+3), gamma applied.
  const loadX: string[] = [];
  const SG = o.subgroupSize;
  if (SG !== undefined && !SUBGROUP_SIZES.includes(SG)) throw new Error(`matvec rows: subgroup size ${SG}`);
  // Broadcast loads: vec4 m of the unit is loaded by lane m % SG into slot m / SG (lanes past 8 repeat lane % 8).
  const slots = SG === undefined ? 0 : Math.max(1, 8 / SG);
  const slotIndex = (slot: number) => (SG !== undefined && SG >= 8 ? '(lane & 7u)' : `${slot * (SG ?? 0)}u + lane`);
  if (sc) {
    // Entering a head: its max logit M and total sum_s e^(m_s - M) l_s over the splits (the combine kernel's order).
    const unitsPerHead = sc.headDim / 32;
    loadX.push(
      `let splitBase = (u / ${unitsPerHead}u) * ${sc.maxSplits}u;`,
      `if (u % ${unitsPerHead}u == 0u) { headStats = splitStats(splitBase, splitCount); }`,
    );
  }
  for (let slot = 0; slot < slots; slot++) {
    if (sc) {
      // This lane's vec4 of the unit, summed over the splits as the combine kernel does, then divided by the total.
      const quarter = sc.headDim / 4;
      loadX.push(`let hd${slot} = (u * 8u + ${slotIndex(slot)}) % ${quarter}u;
    var hs${slot} = vec4<f32>(0.0);
    for (var s = 0u; s < splitCount; s++) {
      hs${slot} += exp(partMaxSum[(splitBase + s) * 2u] - headStats.x) * xin[(splitBase + s) * ${quarter}u + hd${slot}];
    }
    let hv${slot} = hs${slot} / headStats.y;`);
      continue;
    }
    loadX.push(`let hv${slot} = xin[u * 8u + ${slotIndex(slot)}];`);
    if (o.rmsNorm === 'f16') {
      loadX.push(
        `let gm${slot} = ${slotIndex(slot)};`,
        `let gw${slot} = gamma[u * 4u + (gm${slot} >> 1u)];`,
        `let gh${slot} = select(gw${slot}.zw, gw${slot}.xy, (gm${slot} & 1u) == 0u);`,
        `let gv${slot} = vec4<f32>(unpack2x16float(gh${slot}.x), unpack2x16float(gh${slot}.y));`,
      );
    } else if (o.rmsNorm === 'f32') loadX.push(`let gv${slot} = gamma[u * 8u + ${slotIndex(slot)}];`);
  }
  const fromLane = (v: string, m: number, sg: number) => readLane(`${v}${Math.floor(m / sg)}`, m % sg);
  if (SG !== undefined && o.rmsNorm) {
    // Each lane squares and scales its own vec4 and only the product is broadcast; the sum of squares is reduced
    // across the subgroup once, after the loop (lanes past 8 hold repeats, so the sum is scaled by 8 / SG).
    for (let slot = 0; slot < slots; slot++) {
      loadX.push(`sumSquares += dot(hv${slot}, hv${slot});`, `let xg${slot} = hv${slot} * gv${slot};`);
    }
  }
  for (let m = 0; m < 8; m++) {
    if (SG !== undefined && o.rmsNorm) {
      loadX.push(`let x${m} = ${fromLane('xg', m, SG)};`);
      continue;
    }
    loadX.push(`let h${m} = ${SG === undefined ? `xin[u * 8u + ${m}u]` : fromLane('hv', m, SG)};`);
    if (o.rmsNorm) loadX.push(`sumSquares += dot(h${m}, h${m});`);
    if (o.rmsNorm === 'f16') {
      const half = m % 2 === 0 ? 'xy' : 'zw';
      loadX.push(
        `let gw${m} = gamma[u * 4u + ${m >> 1}u].${half};`,
        `let x${m} = h${m} * vec4<f32>(unpack2x16float(gw${m}.x), unpack2x16float(gw${m}.y));`,
      );
    } else if (o.rmsNorm === 'f32') loadX.push(`let x${m} = h${m} * gamma[u * 8u + ${m}u];`);
    else loadX.push(`let x${m} = h${m};`);
  }
  // Staged vec4 k = columns (k, k + 8, k + 16, k + 24) times 16^-k (16^-6 for k = 7, shifted down by 4).
  const col = (c: number) => `x${c >> 2}.${'xyzw'[c & 3]}`;
  for (let k = 0; k < 8; k++) {
    const scale = 2 ** (-4 * Math.min(k, 6));
    loadX.push(`let xs${k} = vec4<f32>(${col(k)}, ${col(k + 8)}, ${col(k + 16)}, ${col(k + 24)}) * ${scale};`);
  }
  loadX.push('let s = (x0 + x1) + (x2 + x3) + (x4 + x5) + (x6 + x7);');
  loadX.push('let sum7 = 7.0 * (s.x + s.y + s.z + s.w);');

  const scaleOf = (s: string, idx: string) =>
    o.dtype === 'q4f16' ? `unpack2x16float(${s}[${idx} >> 1u])[${idx} & 1u]` : `${s}[${idx}]`;
  const unitDot = (w: string, s: string) => {
    const terms: string[] = [];
    for (let k = 0; k < 8; k++) {
      const word = k === 7 ? '(w >> vec4<u32>(4u))' : 'w';
      const mask = `0x${(0xf * 2 ** (k === 7 ? 24 : 4 * k)).toString(16)}u`;
      terms.push(`vec4<f32>(bitcast<vec4<i32>>(${word} & vec4<u32>(${mask}))) * xs${k}`);
    }
    return `  let w = ${w}[wi];
  let d = ((${terms[0]} + ${terms[1]}) + (${terms[2]} + ${terms[3]})) +
          ((${terms[4]} + ${terms[5]}) + (${terms[6]} + ${terms[7]}));
  return ${scaleOf(s, 'si')} * (d.x + d.y + d.z + d.w - sum7);`;
  };
  const dotFn = (name: string, w: string, s: string) => `fn ${name}(wi: u32, si: u32, ${Array.from(
    { length: 8 },
    (_, k) => `xs${k}: vec4<f32>`,
  ).join(', ')}, sum7: f32) -> f32 {
${unitDot(w, s)}
}`;
  const xsArgs = `${Array.from({ length: 8 }, (_, k) => `xs${k}`).join(', ')}, sum7`;

  const rows: string[] = [];
  const body: string[] = [];
  const accs: string[] = [];
  for (let j = 0; j < o.rowsPerThread; j++) {
    rows.push(`let r${j} = min(base + ${j * wg}u, last) * units;`);
    for (let m = 0; m < matrices; m++) {
      accs.push(`var acc${j}_${m} = 0.0;`);
      const [fn, ws, ss] =
        m === 0 ? ['dotWeight', 'weightShift', 'scaleShift'] : ['dotUp', 'weightShiftUp', 'scaleShiftUp'];
      body.push(`acc${j}_${m} += ${fn}(params.${ws} + r${j} + u, params.${ss} + r${j} + u, ${xsArgs});`);
    }
  }
  const store: string[] = [];
  for (let j = 0; j < o.rowsPerThread; j++) {
    const g = o.rmsNorm ? `acc${j}_0 * invRms` : `acc${j}_0`;
    const value = o.siluMul
      ? `let g${j} = ${g};\n    let v${j} = g${j} / (1.0 + exp(-g${j})) * ${o.rmsNorm ? `acc${j}_1 * invRms` : `acc${j}_1`};`
      : `let v${j} = ${g};`;
    const target = `y[params.outputOffset + base + ${j * wg}u]`;
    const result = o.accumulate ? `${target} + v${j}` : `v${j}`;
    store.push(`if (base + ${j * wg}u < params.rowCount) {
    ${value}
    ${target} = ${o.subgroupSize === undefined ? result : `select(${result}, nan, wrongSubgroup)`};
  }`);
  }

  return /* wgsl */ `${SG === undefined ? '' : 'enable subgroups;'}
struct Params {
  rowCount: u32,
  inputOffset: u32, // unused: the x binding starts at x
  outputOffset: u32,
  cols: u32,
  units: u32, // vec4 loads per row: cols / 32
  weightShift: u32,
  scaleShift: u32,
  weightShiftUp: u32,
  scaleShiftUp: u32,
  eps: f32,
  laneBase: u32, // always 0 (subgroupRead.ts)
}
${bindings.join('\n')}

${sc ? SPLIT_STATS_WGSL : ''}
${dotFn('dotWeight', 'weight', 'scales')}
${o.siluMul ? dotFn('dotUp', 'weightUp', 'scalesUp') : ''}

@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) groups: vec3u,
        @builtin(local_invocation_index) li: u32${
          SG === undefined
            ? ''
            : `,
        @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) subgroupSize: u32`
        }) {
  let base = (wid.x + wid.y * groups.x) * ${wg * o.rowsPerThread}u + li;
  let last = params.rowCount - 1u;
  let units = params.units;
  ${SG === undefined ? '' : 'let laneBase = params.laneBase;'}
  ${rows.join('\n  ')}
  ${accs.join('\n  ')}
  ${o.rmsNorm ? 'var sumSquares = 0.0;' : ''}
  ${sc ? "let splitCount = splitParams.y;\n  var headStats = vec2<f32>(0.0, 1.0); // (M, total) of the unit's head" : ''}
  for (var u = 0u; u < units; u++) {
    ${loadX.join('\n    ')}
    ${body.join('\n    ')}
  }
  ${o.rmsNorm && SG !== undefined ? `let sumAll = subgroupAdd(sumSquares)${SG > 8 ? ` * ${8 / SG}` : ''};` : ''}
  ${o.rmsNorm ? `let invRms = inverseSqrt(${SG === undefined ? 'sumSquares' : 'sumAll'} / f32(params.cols) + params.eps);` : ''}
  ${
    SG === undefined
      ? ''
      : `let wrongSubgroup = subgroupSize != ${SG}u || subgroupAdd(1u) != ${SG}u; // and every lane is there
  let nan = bitcast<f32>(0x7fc00000u | u32(wrongSubgroup)); // a runtime NaN (WGSL rejects a constant one)`
  }
  ${store.join('\n  ')}
}
`;
}
