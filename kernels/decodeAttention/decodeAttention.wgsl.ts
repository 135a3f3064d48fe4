// Split-K decode attention (flash-decoding) over a "virtual" list of key positions, and its combine kernel.
//
// One kernel serves full and recycled (sparse) steps. Per KV head the keys attended are the virtual list
//   full step      (state.flag != 0): j = 0 .. kvLen-1                       -> position j
//   recycled step  (state.flag == 0): j < nAttend                                -> idx[kvHead][j]
//                                     nAttend <= j < nAttend + kvLen - lastFullLen -> lastFullLen + (j - nAttend)
// (nAttend: the leading part of the selection still attended, written by the schedule's decide kernel)
// so the flag written on the GPU by the schedule kernel picks the mode and no readback is needed. The dispatch is
// (numSplits, kvHeads); each split takes ceil(n / numSplits) consecutive virtual entries, so a recycled step with a
// short list simply gets short chunks. One workgroup handles all q heads of a GQA group: K/V rows are read once.
//
// Logits (q.k * scale) are written to scores[qHead][j] (virtual index; j = position on full steps): the top-K and
// the recall statistic read them with the per-head max/sum the combine (or head-stats) kernel writes to headStats.
//
// The decode step runs the kernel with ropeNewToken: q is then the qkv projection's row before RoPE (q heads, k
// heads, v heads), each workgroup rotates the queries of its group itself, and the one workgroup per KV head whose
// chunk holds the new token (virtual index n - 1, position kvLen - 1 in every mode) rotates its k, copies its v into
// the cache at kvLen - 1 and reads them back from there (a storage barrier within the workgroup: no other workgroup
// reads that position in this dispatch). So no RoPE dispatch runs before it; the arithmetic is the RoPE kernel's.
// The per-head combine of the splits runs in the kernel that consumes the output (combineWgsl for a plain output,
// the o matvec's splitCombine prologue in a decode step), and headStatsWgsl gives the top-K its per-head statistics.

import { ROPE_COS_SIN_WGSL } from '../rope/rope.wgsl';

/** State words shared by the attention, schedule and top-K kernels (one small buffer per layer): the word index of
 * each field, for the host. The WGSL side sees the same layout as the struct ATTENTION_STATE_WGSL. */
export const STATE = {
  flag: 0,
  lastFullLen: 1,
  nSel: 2,
  fullSteps: 3,
  steps: 4,
  positionsRead: 5,
  recallCount: 6,
  recallTopKSum: 7, // f32 bits
  recallWithNewSum: 8, // f32 bits
  lastCosine: 9, // f32 bits
  /** Selected positions a recycled step attends (the first nAttend of the index row). */
  nAttend: 10,
  words: 16,
} as const;

const STATE_F32_FIELDS: ReadonlySet<string> = new Set(['recallTopKSum', 'recallWithNewSum', 'lastCosine']);

/** `struct AttentionState { flag: u32, ... }`, generated from STATE: every kernel that reads or writes the state
 * interpolates this and names fields (`state.flag`), never word numbers. */
export const ATTENTION_STATE_WGSL: string = (() => {
  const fields = Object.entries(STATE)
    .filter(([name]) => name !== 'words')
    .sort((a, b) => a[1] - b[1]);
  fields.forEach(([name, word], i) => {
    if (word !== i) throw new Error(`STATE.${name} must be word ${i} (fields are contiguous from 0)`);
  });
  const decl = fields.map(([name]) => `${name}: ${STATE_F32_FIELDS.has(name) ? 'f32' : 'u32'}`);
  decl.push(`_reserved: array<u32, ${STATE.words - fields.length}>`);
  return `struct AttentionState { ${decl.join(', ')} }`;
})();

export const ATTENTION_WORKGROUP = 64;
export const MAX_SPLITS = 256;

export interface AttentionShape {
  kvDtype: 'f16' | 'f32';
  numHeads: number;
  kvHeads: number;
  headDim: number;
  capacity: number;
  /** Row stride of the index buffer [kvHeads][idxStride]. */
  idxStride: number;
  /** q is the qkv row before RoPE; the kernel rotates q and stores the new token's k, v (see the header). */
  ropeNewToken: boolean;
}

function kvType(dtype: 'f16' | 'f32'): { enable: string; type: string } {
  return dtype === 'f16' ? { enable: 'enable f16;', type: 'f16' } : { enable: '', type: 'f32' };
}

/** `fn rotated(src, d, pos)`: element d of the head row starting at src in the qkv buffer `q`, rotated for position
 * pos (the RoPE kernel's math). Needs HALF and the invFreq binding. Shared by both split kernels. */
export const ROTATED_WGSL = /* wgsl */ `
${ROPE_COS_SIN_WGSL}
fn rotated(src: u32, d: u32, pos: u32) -> f32 {
  if (d < HALF) {
    let cs = cosSin(f32(pos) * invFreq[d]);
    return q[src + d] * cs.x - q[src + d + HALF] * cs.y;
  }
  let cs = cosSin(f32(pos) * invFreq[d - HALF]);
  return q[src + d] * cs.x + q[src + d - HALF] * cs.y;
}
`;

/** `fn position(kvHead, j, full, nSel, lastFullLen)`: the key position of virtual index j (see the header). Needs
 * IDX_STRIDE and the idx binding. Shared by both split kernels. */
export const POSITION_WGSL = /* wgsl */ `
fn position(kvHead: u32, j: u32, full: bool, nSel: u32, lastFullLen: u32) -> u32 {
  if (full) { return j; }
  if (j < nSel) { return idx[kvHead * IDX_STRIDE + j]; }
  return lastFullLen + (j - nSel);
}
`;

/** The start of both split kernels' main (workgroup (split, kvHead)): the mode from the state, the length n of the
 * virtual list, and this split's chunk [start, end) of it. */
export const SPLIT_RANGE_WGSL = /* wgsl */ `let split = wid.x;
  let kvHead = wid.y;
  let full = state.flag != 0u;
  let lastFullLen = state.lastFullLen;
  let nSel = state.nAttend;
  var n = params.kvLen;
  if (!full) { n = nSel + (params.kvLen - lastFullLen); }
  let chunk = (n + params.numSplits - 1u) / params.numSplits;
  let start = min(n, split * chunk);
  let end = min(n, start + chunk);`;

/** Rotates the group's queries (from the qkv row, position kvLen - 1) into qs, and in the workgroup whose chunk holds
 * the new token stores its rotated k and its v into the caches. */
function newTokenWgsl(): string {
  return /* wgsl */ `
${ROTATED_WGSL}

fn loadQuery(kvHead: u32, tid: u32, n: u32, chunk: u32, split: u32) {
  let pos = params.kvLen - 1u;
  for (var i = tid; i < G * D4; i += WG) {
    let src = (kvHead * G + i / D4) * D;
    let d = (i % D4) * 4u;
    qs[i] = vec4f(rotated(src, d, pos), rotated(src, d + 1u, pos), rotated(src, d + 2u, pos), rotated(src, d + 3u, pos)) *
      params.scale;
  }
  if (split == (n - 1u) / chunk) {
    let kSrc = (NQ + kvHead) * D;
    let vSrc = (NQ + NKV + kvHead) * D;
    let row = kvHead * CAP + pos;
    for (var d4 = tid; d4 < D4; d4 += WG) {
      let d = d4 * 4u;
      kc[row * D4 + d4] = vec4<KV>(vec4f(rotated(kSrc, d, pos), rotated(kSrc, d + 1u, pos), rotated(kSrc, d + 2u, pos),
        rotated(kSrc, d + 3u, pos)));
    }
    for (var d = tid; d < D; d += WG) { vc[row * D + d] = KV(q[vSrc + d]); }
  }
  storageBarrier(); // the new row, written above, is read back by this workgroup's passes
  workgroupBarrier();
}
`;
}

/** Loads the group's queries (RoPE applied) into qs, scaled. */
const PLAIN_QUERY_WGSL = /* wgsl */ `
fn loadQuery(kvHead: u32, tid: u32, n: u32, chunk: u32, split: u32) {
  for (var i = tid; i < G * D4; i += WG) {
    let b = kvHead * G * D + i * 4u;
    qs[i] = vec4f(q[b], q[b + 1u], q[b + 2u], q[b + 3u]) * params.scale;
  }
  workgroupBarrier();
}
`;

export function splitAttentionWgsl(s: AttentionShape): string {
  const group = s.numHeads / s.kvHeads;
  const { enable, type } = kvType(s.kvDtype);
  const wg = ATTENTION_WORKGROUP;
  const cacheAccess = s.ropeNewToken ? 'read_write' : 'read';
  return /* wgsl */ `${enable}
alias KV = ${type};
const NQ: u32 = ${s.numHeads}u;
const NKV: u32 = ${s.kvHeads}u;
const HALF: u32 = ${s.headDim / 2}u;
const G: u32 = ${group}u;            // q heads per kv head
const D: u32 = ${s.headDim}u;
const D4: u32 = ${s.headDim / 4}u;
const CAP: u32 = ${s.capacity}u;
const IDX_STRIDE: u32 = ${s.idxStride}u;
const WG: u32 = ${wg}u;
const DPT: u32 = ${Math.ceil(s.headDim / wg)}u;  // head dims per thread in the V pass
const MAX_SPLITS: u32 = ${MAX_SPLITS}u;
const NEG: f32 = -3.0e38;

${ATTENTION_PARAMS_WGSL}
@group(0) @binding(0) var<uniform> params: AttentionParams;
@group(0) @binding(1) var<storage, read> q: array<f32>; // ropeNewToken: the qkv row before RoPE
@group(0) @binding(2) var<storage, ${cacheAccess}> kc: array<vec4<${type}>>; // rows of D/4 vec4s
@group(0) @binding(3) var<storage, ${cacheAccess}> vc: array<${type}>;
@group(0) @binding(4) var<storage, read> idx: array<u32>;
${ATTENTION_STATE_WGSL}
@group(0) @binding(5) var<storage, read> state: AttentionState;
@group(0) @binding(6) var<storage, read_write> scores: array<f32>;
@group(0) @binding(7) var<storage, read_write> partAcc: array<f32>;   // [numHeads][MAX_SPLITS][D]
@group(0) @binding(8) var<storage, read_write> partMaxSum: array<f32>; // [numHeads][MAX_SPLITS][2]
${s.ropeNewToken ? '@group(0) @binding(9) var<storage, read> invFreq: array<f32>; // [D / 2]' : ''}

var<workgroup> qs: array<vec4f, ${(group * s.headDim) / 4}>;
var<workgroup> probTile: array<f32, ${group * wg}>;
var<workgroup> posTile: array<u32, ${wg}>;
var<workgroup> red: array<f32, ${wg}>;
var<workgroup> headMax: array<f32, ${group}>;
${s.ropeNewToken ? newTokenWgsl() : PLAIN_QUERY_WGSL}

${POSITION_WGSL}
// Tree reduction of red[] (max or sum); every thread gets the result.
fn reduce(tid: u32, isMax: bool) -> f32 {
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    workgroupBarrier();
    if (tid < stride) {
      if (isMax) { red[tid] = max(red[tid], red[tid + stride]); } else { red[tid] = red[tid] + red[tid + stride]; }
    }
  }
  workgroupBarrier();
  let r = red[0];
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32) {
  ${SPLIT_RANGE_WGSL}

  loadQuery(kvHead, tid, n, chunk, split);

  // Pass 1: logits for this chunk, kept in scores[] (the same thread reads them back in pass 2).
  var localMax: array<f32, G>;
  for (var g = 0u; g < G; g++) { localMax[g] = NEG; }
  for (var j = start + tid; j < end; j += WG) {
    // Each K row is read once, 4 values per load, for all heads of the group.
    let kBase = (kvHead * CAP + position(kvHead, j, full, nSel, lastFullLen)) * D4;
    var dots: array<f32, G>;
    for (var g = 0u; g < G; g++) { dots[g] = 0.0; } // explicit: SwiftShader kept values across iterations
    for (var d4 = 0u; d4 < D4; d4++) {
      let k4 = vec4f(kc[kBase + d4]);
      for (var g = 0u; g < G; g++) { dots[g] += dot(qs[g * D4 + d4], k4); }
    }
    for (var g = 0u; g < G; g++) {
      scores[(kvHead * G + g) * CAP + j] = dots[g];
      localMax[g] = max(localMax[g], dots[g]);
    }
  }
  for (var g = 0u; g < G; g++) {
    red[tid] = localMax[g];
    let m = reduce(tid, true);
    if (tid == 0u) { headMax[g] = m; }
  }
  workgroupBarrier();

  // Pass 2: tiles of WG positions; each thread owns DPT head dims of the accumulator for every head of the group.
  var acc: array<f32, ${group * Math.ceil(s.headDim / wg)}>;
  var localSum: array<f32, G>;
  for (var tileStart = start; tileStart < end; tileStart += WG) {
    let j = tileStart + tid;
    if (j < end) {
      posTile[tid] = position(kvHead, j, full, nSel, lastFullLen);
      for (var g = 0u; g < G; g++) {
        let p = exp(scores[(kvHead * G + g) * CAP + j] - headMax[g]);
        probTile[g * WG + tid] = p;
        localSum[g] += p;
      }
    }
    workgroupBarrier();
    let count = min(WG, end - tileStart);
    for (var t = 0u; t < count; t++) {
      let vBase = (kvHead * CAP + posTile[t]) * D;
      for (var i = 0u; i < DPT; i++) {
        let d = tid + i * WG;
        if (d < D) {
          let value = f32(vc[vBase + d]);
          for (var g = 0u; g < G; g++) { acc[g * DPT + i] += probTile[g * WG + t] * value; }
        }
      }
    }
    workgroupBarrier();
  }

  for (var g = 0u; g < G; g++) {
    let h = kvHead * G + g;
    red[tid] = localSum[g];
    let sum = reduce(tid, false);
    let slot = h * MAX_SPLITS + split;
    for (var i = 0u; i < DPT; i++) {
      let d = tid + i * WG;
      if (d < D) { partAcc[slot * D + d] = acc[g * DPT + i]; }
    }
    if (tid == 0u) {
      partMaxSum[slot * 2u] = headMax[g];
      partMaxSum[slot * 2u + 1u] = sum;
    }
  }
}
`;
}

/** Per q head (max logit, sum of exp) of the splits, as the combine kernel computes them, into headStats: the top-K's
 * input when the output itself is combined by its consumer. One thread per head. */
/** `fn headStatFromSplits(h, numSplits) -> vec2f`: q head h's (max logit, sum of exp(logit - max)) over the split
 * partials, for a shader that declares `partMaxSum: array<f32>` ([numHeads][MAX_SPLITS][2]). The head-stats kernel and
 * the top-K pooling (which derives them itself, saving this kernel's dispatch) share it. */
export const HEAD_STAT_FROM_SPLITS_WGSL = /* wgsl */ `
fn headStatFromSplits(h: u32, numSplits: u32) -> vec2f {
  let base = h * ${MAX_SPLITS}u;
  var m = -3.0e38;
  for (var s = 0u; s < numSplits; s++) { m = max(m, partMaxSum[(base + s) * 2u]); }
  var total = 0.0;
  for (var s = 0u; s < numSplits; s++) {
    total += exp(partMaxSum[(base + s) * 2u] - m) * partMaxSum[(base + s) * 2u + 1u];
  }
  return vec2f(m, total);
}`;

/** The split attention's uniform (the wrapper writes these four words), declared once for every kernel that binds it:
 * the split, combine and head-stats kernels and the top-K pooling (numSplits). */
export const ATTENTION_PARAMS_WGSL = 'struct AttentionParams { kvLen: u32, numSplits: u32, scale: f32, _pad: u32 }';

export function headStatsWgsl(s: { numHeads: number }): string {
  const wg = ATTENTION_WORKGROUP;
  return /* wgsl */ `
const NQ: u32 = ${s.numHeads}u;

${ATTENTION_PARAMS_WGSL}
@group(0) @binding(0) var<uniform> params: AttentionParams;
@group(0) @binding(1) var<storage, read> partMaxSum: array<f32>;
@group(0) @binding(2) var<storage, read_write> headStats: array<f32>; // [numHeads][2] = (max logit, sum of exp)
${HEAD_STAT_FROM_SPLITS_WGSL}

@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let h = gid.x;
  if (h >= NQ) { return; }
  let stat = headStatFromSplits(h, params.numSplits);
  headStats[h * 2u] = stat.x;
  headStats[h * 2u + 1u] = stat.y;
}
`;
}

/** Merges the splits of each q head: out = sum_s acc_s e^(m_s - M) / sum_s l_s e^(m_s - M); headStats = (M, L). */
export function combineWgsl(s: { numHeads: number; headDim: number }): string {
  const wg = ATTENTION_WORKGROUP;
  return /* wgsl */ `
const D: u32 = ${s.headDim}u;
const WG: u32 = ${wg}u;
const MAX_SPLITS: u32 = ${MAX_SPLITS}u;

${ATTENTION_PARAMS_WGSL}
@group(0) @binding(0) var<uniform> params: AttentionParams;
@group(0) @binding(1) var<storage, read> partAcc: array<f32>;
@group(0) @binding(2) var<storage, read> partMaxSum: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;       // [numHeads][D]
@group(0) @binding(4) var<storage, read_write> headStats: array<f32>; // [numHeads][2] = (max logit, sum of exp)

var<workgroup> weight: array<f32, MAX_SPLITS>;

@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32) {
  let h = wid.x;
  let base = h * MAX_SPLITS;
  var m = -3.0e38;
  for (var s = 0u; s < params.numSplits; s++) { m = max(m, partMaxSum[(base + s) * 2u]); }
  var total = 0.0;
  for (var s = 0u; s < params.numSplits; s++) {
    let w = exp(partMaxSum[(base + s) * 2u] - m);
    total += w * partMaxSum[(base + s) * 2u + 1u];
    if (s % WG == tid) { weight[s] = w; }
  }
  workgroupBarrier();
  for (var d = tid; d < D; d += WG) {
    var o = 0.0;
    for (var s = 0u; s < params.numSplits; s++) { o += weight[s] * partAcc[(base + s) * D + d]; }
    out[h * D + d] = o / total;
  }
  if (tid == 0u) {
    headStats[h * 2u] = m;
    headStats[h * 2u + 1u] = total;
  }
}
`;
}
