// Prefill matmul for q4 weights without workgroup memory: Y[tokens][rows] = X[tokens][cols] · W^T.
// Each invocation owns ROWS_PER_LANE weight rows and TOKENS_PER_LANE tokens (a register block of that many
// accumulators). The weight words of its rows are loaded and dequantised once, in registers; the activations are
// shared across the subgroup instead: lane l loads x[t][k0 + 4l .. 4l + 3] (one vec4 per lane and token) and every
// lane reads all of them from lane l (readLane, a subgroup shuffle). No barrier, no workgroup memory.
//
// Why this shape: on lavapipe (WGSL run on the CPU through LLVM, one SIMD lane per invocation) every load an
// invocation issues is split into one scalar load per lane, so a kernel's speed there is set by how many FMAs each
// loaded value feeds. Here a weight nibble feeds TOKENS_PER_LANE FMAs and each x value loaded once per subgroup feeds
// (subgroup size × ROWS_PER_LANE) FMAs through a register shuffle. The code is generated fully unrolled for one
// subgroup size (the lane each value comes from is known where the code is written); the shader checks that size at
// run time and writes NaN if the device ran it with another (a wrong result must not pass silently).
//
// With xTexture the activations are read from an rgba32float texture [tokens][cols / 4] instead of the storage
// buffer (the wrapper stages them there first, stageX.wgsl.ts). Why: lavapipe (Mesa 25.0) turns a storage load whose
// address differs per lane into a loop over the lanes with a bounds-check branch per element, while a texel fetch goes
// through its texture path (vector address arithmetic, then a branch-free gather). The x loads are most of this
// kernel's loads, so on lavapipe the texture makes it faster (docs/BENCH.md); the bench decides per adapter.

import { SUBGROUP_SIZES } from '../gpuContext';
import { readLane } from '../subgroupRead';

export interface MatmulRowsShader {
  dtype: 'q4f16' | 'q4f32';
  /** The device's (fixed) subgroup size: 4, 8, 16 or 32. One step covers 4 × subgroupSize columns. */
  subgroupSize: number;
  tokensPerLane: number;
  rowsPerLane: number;
  workgroupSize: number;
  /** Multiply in f16 (x rounded to f16; partial sums over each step in f16, then added in f32). */
  f16: boolean;
  /** Read x from an rgba32float texture [tokens][cols / 4] (binding 1) instead of a storage buffer. */
  xTexture: boolean;
}

/** Columns one loop step consumes: one vec4 of x per lane. */
export function matmulRowsKStep(subgroupSize: number): number {
  return 4 * subgroupSize;
}

export function matmulRowsWgsl(s: MatmulRowsShader): string {
  const { subgroupSize: SG, tokensPerLane: TB, rowsPerLane: R, workgroupSize: WG } = s;
  if (!SUBGROUP_SIZES.includes(SG)) throw new Error(`matmul rows: subgroup size ${SG} is not supported`);
  if (WG % SG !== 0) throw new Error(`matmul rows: workgroup size ${WG} is not a multiple of the subgroup size ${SG}`);
  const kStep = matmulRowsKStep(SG);
  const wordsPerStep = kStep / 8; // 2, 4, 8 or 16 u32 words of 8 nibbles
  const groupsPerStep = Math.max(1, kStep / 32); // scales per step (a step of 16 columns uses half a group)
  const wordsPerGroupPart = wordsPerStep / groupsPerStep;
  const A = s.f16 ? 'f16' : 'f32';
  const tokens = [...Array(TB).keys()];
  const rowsIdx = [...Array(R).keys()];
  const tr = (f: (t: number, r: number) => string) => tokens.flatMap((t) => rowsIdx.map((r) => f(t, r)));

  const step: string[] = [];
  const xLoad = (t: number) =>
    s.xTexture ? `textureLoad(xTex, vec2u(k0 / 4u + lane, xRow${t}), 0)` : `x[xRow${t} + k0 / 4u + lane]`;
  for (const t of tokens) step.push(`let xv${t} = vec4<${A}>(${xLoad(t)});`);
  // Weight words of this step, as vec4/vec2 loads.
  const wordVec = Math.min(4, wordsPerStep);
  for (const r of rowsIdx) {
    for (let v = 0; v < wordsPerStep / wordVec; v++) {
      step.push(`let wv${r}_${v} = weight[(wRow${r} + k0 / 8u) / ${wordVec}u + ${v}u];`);
    }
  }
  for (let g = 0; g < groupsPerStep; g++) {
    for (const r of rowsIdx) {
      step.push(`let s${r}_${g} = ${A}(scales[sRow${r} + (k0 + ${g * 32}u) / 32u]);`);
      if (!s.f16) step.push(`let o${r}_${g} = -7.0 * s${r}_${g};`);
    }
    if (s.f16) step.push(...tr((t, r) => `var p${t}_${r} = 0.0h;`));
    for (let wi = 0; wi < wordsPerGroupPart; wi++) {
      const word = g * wordsPerGroupPart + wi;
      const wordRef = (r: number) =>
        wordVec === 1 ? `wv${r}_${word}` : `wv${r}_${Math.floor(word / wordVec)}[${word % wordVec}]`;
      for (let e = 0; e < 8; e++) {
        const k = word * 8 + e; // column within the step: held by lane k / 4, component k % 4
        for (const r of rowsIdx) {
          const nibble = `f32((${wordRef(r)} >> ${4 * e}u) & 15u)`;
          step.push(
            s.f16
              ? `let w${r}_${k} = f16(${nibble}) - 7.0h;`
              : `let w${r}_${k} = fma(${nibble}, s${r}_${g}, o${r}_${g});`,
          );
        }
        for (const t of tokens) {
          step.push(`let x${t}_${k} = ${readLane(`xv${t}[${k % 4}]`, Math.floor(k / 4))};`);
          for (const r of rowsIdx) {
            step.push(
              s.f16
                ? `p${t}_${r} = fma(x${t}_${k}, w${r}_${k}, p${t}_${r});`
                : `a${t}_${r} = fma(x${t}_${k}, w${r}_${k}, a${t}_${r});`,
            );
          }
        }
      }
    }
    if (s.f16) step.push(...tr((t, r) => `a${t}_${r} = fma(f32(p${t}_${r}), f32(s${r}_${g}), a${t}_${r});`));
  }

  const wVecType = wordVec === 4 ? 'vec4u' : wordVec === 2 ? 'vec2u' : 'u32';
  return /* wgsl */ `${s.f16 || s.dtype === 'q4f16' ? 'enable f16;\n' : ''}enable subgroups;
struct Params { tokens: u32, rows: u32, cols: u32, laneBase: u32 } // laneBase: always 0 (subgroupRead.ts)
@group(0) @binding(0) var<uniform> params: Params;
${
  s.xTexture
    ? '@group(0) @binding(1) var xTex: texture_2d<f32>;               // rgba32float [tokens][cols / 4]'
    : '@group(0) @binding(1) var<storage, read> x: array<vec4f>;      // [tokens][cols / 4]'
}
@group(0) @binding(2) var<storage, read> weight: array<${wVecType}>; // q4 words [rows][cols / 8]
@group(0) @binding(3) var<storage, read> scales: array<${s.dtype === 'q4f16' ? 'f16' : 'f32'}>; // [rows][cols / 32]
@group(0) @binding(4) var<storage, read_write> y: array<f32>;  // [tokens][rows]

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32,
        @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) subgroupSize: u32) {
  let tokens = params.tokens;
  let laneBase = params.laneBase;
  let rows = params.rows;
  let cols = params.cols;
  // Dispatched as (token tiles, row tiles): workgroups run in x order, so the token tiles of one block of rows run back
  // to back while its weights are still in the core's caches (lavapipe: up to 1.2x faster than rows first).
  let tokenBase = wg.x * ${TB}u;
  let rowBase = wg.y * ${WG * R}u + li;
  // Rows and tokens past the end are clamped to the last one (valid memory, uniform control flow) and not stored.
${rowsIdx
  .map(
    (r) => `  let row${r} = min(rowBase + ${r * WG}u, rows - 1u);
  let wRow${r} = row${r} * (cols / 8u);
  let sRow${r} = row${r} * (cols / 32u);`,
  )
  .join('\n')}
${tokens
  .map((t) => `  let xRow${t} = min(tokenBase + ${t}u, tokens - 1u)${s.xTexture ? '' : ' * (cols / 4u)'};`)
  .join('\n')}
${tr((t, r) => `  var a${t}_${r} = 0.0;`).join('\n')}
  for (var k0 = 0u; k0 < cols; k0 += ${kStep}u) {
    ${step.join('\n    ')}
  }
  let wrongSubgroup = subgroupSize != ${SG}u;
  let nan = bitcast<f32>(0x7fc00000u | u32(wrongSubgroup)); // a runtime NaN (WGSL rejects a constant one)
${tr(
  (t, r) => `  if (rowBase + ${r * WG}u < rows && tokenBase + ${t}u < tokens) {
    y[(tokenBase + ${t}u) * rows + rowBase + ${r * WG}u] = select(a${t}_${r}, nan, wrongSubgroup);
  }`,
).join('\n')}
}
`;
}
