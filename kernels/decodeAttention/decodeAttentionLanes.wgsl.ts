// The split kernel of decode attention for CPU adapters: same bindings, dispatch (numSplits, kvHeads), virtual list,
// new-token RoPE and KV store, and outputs (scores, partAcc, partMaxSum) as splitAttentionWgsl, so the combine and
// the o matvec's splitCombine prologue read it unchanged.
//
// Why a second kernel: a CPU driver runs a workgroup's invocations as the lanes of SIMD registers, and lavapipe
// (Mesa 25.0) turns every load from workgroup or storage memory whose address it cannot prove constant into a loop
// over the lanes with a branch per element. The GPU kernel keeps the queries and each tile's probabilities in
// workgroup memory and reads them back for every key: on lavapipe those reads, not the K and V rows, were its cost.
// Here each lane owns positions (j = start + lane, step LANES) from start to finish: the queries come through a
// uniform binding (a branch-free gather there) into registers (the code is unrolled over heads and head dims), pass 1
// writes the lane's logits, pass 2 reads them back (exp(logit - max)) with the lane's V rows into per-lane
// accumulators, and one workgroup-memory reduction at the end merges the lanes. At most three barriers per workgroup
// instead of one per tile and reduction step, which also makes it quicker for llvmpipe to compile.

import { ROPE_COS_SIN4_WGSL } from '../rope/rope.wgsl';
import type { AttentionShape } from './decodeAttention.wgsl';
import {
  ATTENTION_PARAMS_WGSL,
  ATTENTION_STATE_WGSL,
  MAX_SPLITS,
  POSITION_WGSL,
  SPLIT_RANGE_WGSL,
} from './decodeAttention.wgsl';

/** Invocations per workgroup: one SIMD register's worth on lavapipe (8 lanes of 256 bits), two on SwiftShader. */
export const LANES = 8;
/** The unrolled registers per lane are G × headDim / 4 vec4 of queries and as many of accumulators. */
export const LANES_MAX_VEC4 = 128;

/** Bytes of the uniform binding the lanes kernel reads its queries from (the whole qkv row with ropeNewToken). */
export function lanesQueryBytes(s: Pick<AttentionShape, 'numHeads' | 'kvHeads' | 'headDim' | 'ropeNewToken'>): number {
  return (s.ropeNewToken ? s.numHeads + 2 * s.kvHeads : s.numHeads) * s.headDim * 4;
}

/** Whether the lanes kernel takes this shape: its registers are unrolled per head and head dim, its queries come
 * through a uniform binding of at most maxUniformBytes, and it rotates 4 dims at a time (headDim a multiple of 8). */
export function lanesKernelFits(
  s: Pick<AttentionShape, 'numHeads' | 'kvHeads' | 'headDim' | 'ropeNewToken'>,
  maxUniformBytes: number,
): boolean {
  return (
    (s.numHeads / s.kvHeads) * (s.headDim / 4) <= LANES_MAX_VEC4 &&
    s.headDim % 8 === 0 &&
    lanesQueryBytes(s) <= maxUniformBytes
  );
}

const sumTree = (terms: string[]): string => {
  if (terms.length === 1) return terms[0];
  const half = Math.ceil(terms.length / 2);
  return `(${sumTree(terms.slice(0, half))} + ${sumTree(terms.slice(half))})`;
};

export function splitAttentionLanesWgsl(s: AttentionShape): string {
  if (!lanesKernelFits(s, Number.POSITIVE_INFINITY)) {
    throw new Error('decode attention lanes kernel: the shape needs too many registers or an odd head size');
  }
  const G = s.numHeads / s.kvHeads;
  const D = s.headDim;
  const D4 = D / 4;
  const H4 = D4 / 2; // vec4s in half a head
  const type = s.kvDtype;
  const cacheAccess = s.ropeNewToken ? 'read_write' : 'read';
  const heads = [...Array(G).keys()];
  const dims = [...Array(D4).keys()];
  const perHead = (f: (g: number) => string) => heads.map(f).join('\n  ');
  const perHeadDim = (f: (g: number, d4: number) => string) => heads.flatMap((g) => dims.map((d4) => f(g, d4)));

  // Queries, scaled, into registers q{g}_{d4}; with ropeNewToken rotated for position kvLen - 1 (rotate-half: dims d
  // and d + D/2 pair up, 4 pairs per vec4, the RoPE kernel's math per component).
  const query: string[] = [];
  for (const g of heads) query.push(`let qb${g} = (kvHead * G + ${g}u) * D4;`);
  if (s.ropeNewToken) {
    query.push('let pos = params.kvLen - 1u;');
    for (let i = 0; i < H4; i++) query.push(`let cs${i} = cosSin4(f32(pos) * invFreq[${i}u]);`);
    for (const g of heads) {
      for (const d4 of dims) query.push(`let x${g}_${d4} = qu[qb${g} + ${d4}u];`);
      for (const d4 of dims) {
        const rotated =
          d4 < H4
            ? `x${g}_${d4} * cs${d4}.c - x${g}_${d4 + H4} * cs${d4}.s`
            : `x${g}_${d4} * cs${d4 - H4}.c + x${g}_${d4 - H4} * cs${d4 - H4}.s`;
        query.push(`let q${g}_${d4} = (${rotated}) * params.scale;`);
      }
    }
  } else {
    query.push(...perHeadDim((g, d4) => `let q${g}_${d4} = qu[qb${g} + ${d4}u] * params.scale;`));
  }

  // The workgroup whose chunk holds the new token stores its rotated k and its v, then reads them back.
  const newToken = s.ropeNewToken
    ? /* wgsl */ `if (split == (n - 1u) / chunk) {
    let kRow = (NQ + kvHead) * D4;
    let vRow = (NQ + NKV + kvHead) * D4;
    let row = kvHead * CAP + pos;
    for (var d4 = lane; d4 < D4; d4 += LANES) {
      let first = d4 < H4;
      let cs = cosSin4(f32(pos) * invFreq[select(d4 - H4, d4, first)]);
      let x = qu[kRow + d4];
      let partner = qu[kRow + select(d4 - H4, d4 + H4, first)];
      kc[row * D4 + d4] = vec4<KV>(select(x * cs.c + partner * cs.s, x * cs.c - partner * cs.s, first));
      vc[row * D4 + d4] = vec4<KV>(qu[vRow + d4]);
    }
  }
  storageBarrier();
  workgroupBarrier();`
    : '';

  const loadRow = (cache: string, name: string) =>
    dims.map((d4) => `let ${name}${d4} = vec4f(${cache}[base + ${d4}u]);`);
  const dotsOf = (g: number) => sumTree(dims.map((d4) => `dot(q${g}_${d4}, k${d4})`));

  return /* wgsl */ `${type === 'f16' ? 'enable f16;' : ''}
alias KV = ${type};
const NQ: u32 = ${s.numHeads}u;
const NKV: u32 = ${s.kvHeads}u;
const H4: u32 = ${H4}u;
const G: u32 = ${G}u;
const D: u32 = ${D}u;
const D4: u32 = ${D4}u;
const CAP: u32 = ${s.capacity}u;
const IDX_STRIDE: u32 = ${s.idxStride}u;
const LANES: u32 = ${LANES}u;
const MAX_SPLITS: u32 = ${MAX_SPLITS}u;
const NEG: f32 = -3.0e38;

${ATTENTION_PARAMS_WGSL}
@group(0) @binding(0) var<uniform> params: AttentionParams;
@group(0) @binding(1) var<uniform> qu: array<vec4f, ${lanesQueryBytes(s) / 16}>; // with ropeNewToken: the qkv row
@group(0) @binding(2) var<storage, ${cacheAccess}> kc: array<vec4<KV>>; // rows of D/4 vec4s
@group(0) @binding(3) var<storage, ${cacheAccess}> vc: array<vec4<KV>>;
@group(0) @binding(4) var<storage, read> idx: array<u32>;
${ATTENTION_STATE_WGSL}
@group(0) @binding(5) var<storage, read> state: AttentionState;
@group(0) @binding(6) var<storage, read_write> scores: array<f32>;
@group(0) @binding(7) var<storage, read_write> partAcc: array<vec4f>;  // [numHeads][MAX_SPLITS][D / 4]
@group(0) @binding(8) var<storage, read_write> partMaxSum: array<f32>; // [numHeads][MAX_SPLITS][2]
${s.ropeNewToken ? `@group(0) @binding(9) var<uniform> invFreq: array<vec4f, ${H4}>; // [D / 2]` : ''}

var<workgroup> laneMax: array<f32, ${LANES * G}>;   // [lane][head]
var<workgroup> laneSum: array<f32, ${LANES * G}>;   // [lane][head]
var<workgroup> laneAcc: array<vec4f, ${LANES * G * D4}>; // [lane][head][D / 4]
${s.ropeNewToken ? ROPE_COS_SIN4_WGSL : ''}
${POSITION_WGSL}
@compute @workgroup_size(${LANES})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lane: u32) {
  ${SPLIT_RANGE_WGSL}

  ${query.join('\n  ')}
  ${newToken}

  // Pass 1: this lane's logits, into scores[], and its max per head.
  ${perHead((g) => `var m${g} = NEG;`)}
  for (var j = start + lane; j < end; j += LANES) {
    let base = (kvHead * CAP + position(kvHead, j, full, nSel, lastFullLen)) * D4;
    ${loadRow('kc', 'k').join('\n    ')}
    ${heads
      .map(
        (g) => `let s${g} = ${dotsOf(g)};
    scores[(kvHead * G + ${g}u) * CAP + j] = s${g};
    m${g} = max(m${g}, s${g});`,
      )
      .join('\n    ')}
  }
  ${perHead((g) => `laneMax[lane * G + ${g}u] = m${g};`)}
  workgroupBarrier();
  ${perHead((g) => `var max${g} = NEG;`)}
  for (var l = 0u; l < LANES; l++) {
    ${perHead((g) => `max${g} = max(max${g}, laneMax[l * G + ${g}u]);`)}
  }

  // Pass 2: p = exp(logit - max) of the lane's own logits, times its V rows, into its accumulators.
  ${perHead((g) => `var sum${g} = 0.0;`)}
  ${perHeadDim((g, d4) => `var a${g}_${d4} = vec4f(0.0);`).join('\n  ')}
  for (var j = start + lane; j < end; j += LANES) {
    let base = (kvHead * CAP + position(kvHead, j, full, nSel, lastFullLen)) * D4;
    ${perHead((g) => `let p${g} = exp(scores[(kvHead * G + ${g}u) * CAP + j] - max${g});\n    sum${g} += p${g};`)}
    ${loadRow('vc', 'v').join('\n    ')}
    ${perHeadDim((g, d4) => `a${g}_${d4} += p${g} * v${d4};`).join('\n    ')}
  }

  // Merge the lanes: each lane adds up a share of the accumulators.
  ${perHead((g) => `laneSum[lane * G + ${g}u] = sum${g};`)}
  ${perHeadDim((g, d4) => `laneAcc[lane * G * D4 + ${g * D4 + d4}u] = a${g}_${d4};`).join('\n  ')}
  workgroupBarrier();
  for (var i = lane; i < G * D4; i += LANES) {
    var total = vec4f(0.0);
    for (var l = 0u; l < LANES; l++) { total += laneAcc[l * G * D4 + i]; }
    let h = kvHead * G + i / D4;
    partAcc[(h * MAX_SPLITS + split) * D4 + i % D4] = total;
  }
  if (lane == 0u) {
    ${perHead(
      (g) => `var total${g} = 0.0;
    for (var l = 0u; l < LANES; l++) { total${g} += laneSum[l * G + ${g}u]; }
    partMaxSum[((kvHead * G + ${g}u) * MAX_SPLITS + split) * 2u] = max${g};
    partMaxSum[((kvHead * G + ${g}u) * MAX_SPLITS + split) * 2u + 1u] = total${g};`,
    )}
  }
}
`;
}
