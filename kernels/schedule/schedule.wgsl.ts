// Per-layer schedule kernels of Recycled Attention: everything decided on the GPU, nothing read back per step.
//
// decide (before the attention, 1 workgroup): writes state.flag (1 = full step, 0 = recycled) for this layer.
//   recycled/snapkv: full  <=>  forceFull (host: stride step or prefill seed)
//                             || the layer was never seeded (lastFullLen == 0)
//                             || checkDynamic (host: every qc steps) && cos(mean_h q_h, savedQuery) < sim
//                    q is the schedule query: the query BEFORE RoPE (after RoPE the cosine falls with distance
//                    alone). On a full step the mean query is saved for the next comparison.
//                    state.nAttend = how many selected positions a recycled step attends: recycled keeps the set at
//                    K (each token decoded since the last full step displaces the weakest, the selection being
//                    ordered strongest first by rankSelection); SnapKV attends all of them.
//   streaming:       the index list holds the sinks; lastFullLen = kvLen - (K - sinks) makes the "appended" range
//                    the recent window; full (flag 1) while kvLen <= K.
//   full:            always full.
//   Counters (full steps, steps, positions read) accumulate in the state for the end-of-generation stats.
//   On a full step of a selecting policy it records lastFullLen = kvLen and nSel = min(K, kvLen) for the selection
//   the top-K kernels are about to write (commitsSelection), unless the recall statistic is measured: then the
//   commit kernel does it, after reading the previous selection's.
// commit (only with measureRecall: bench, CLI; after the attention, before the top-K, 1 workgroup, full steps): adds
//   to the recall accumulators the probability mass that the previous selection captured (per q head, mean over
//   heads), and the mass on what a recycled step at this position would attend (selection after displacement + the
//   positions appended since), then records lastFullLen and nSel as above.
// rankSelection (after the top-K, 1 workgroup per KV head of each layer it ranks, recycled only): orders the
//   selected positions strongest first by pooled score (ties: lower position first), a bitonic sort in the sort
//   scratch, so that displacement drops the weakest from the end.
import { ATTENTION_STATE_WGSL } from '../decodeAttention/decodeAttention.wgsl';
import { type SelectLayers, selectRowsWgsl } from '../topk/topk.wgsl';

export const POLICY_CODE = { full: 0, recycled: 1, streaming: 2, snapkv: 3 } as const;
export const SCHEDULE_WORKGROUP = 64;
const COMMIT_WORKGROUP = 256;

/** Uniform of the decide kernel: u32 words then f32 sim. */
export const DECIDE_PARAMS = {
  kvLen: 0,
  k: 1,
  policy: 2,
  forceFull: 3,
  checkDynamic: 4,
  sinks: 5,
  countStep: 6,
  sim: 7, // f32
  words: 8,
} as const;

export function decideWgsl(s: { numHeads: number; headDim: number; commitsSelection: boolean }): string {
  const wg = SCHEDULE_WORKGROUP;
  return /* wgsl */ `
const NQ: u32 = ${s.numHeads}u;
const D: u32 = ${s.headDim}u;
const WG: u32 = ${wg}u;

struct Params {
  kvLen: u32, k: u32, policy: u32, forceFull: u32,
  checkDynamic: u32, sinks: u32, countStep: u32, sim: f32,
}
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;              // [NQ][D]
@group(0) @binding(2) var<storage, read_write> savedQuery: array<f32>; // [D] mean query at the last full step
${ATTENTION_STATE_WGSL}
@group(0) @binding(3) var<storage, read_write> state: AttentionState;

var<workgroup> meanQ: array<f32, D>;
var<workgroup> red: array<vec3f, WG>;
var<workgroup> decided: u32;

@compute @workgroup_size(${wg})
fn main(@builtin(local_invocation_index) tid: u32) {
  var part = vec3f(0.0);
  for (var d = tid; d < D; d += WG) {
    var m = 0.0;
    for (var h = 0u; h < NQ; h++) { m += q[h * D + d]; }
    m = m / f32(NQ);
    meanQ[d] = m;
    let s = savedQuery[d];
    part += vec3f(m * s, m * m, s * s);
  }
  red[tid] = part;
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    workgroupBarrier();
    if (tid < stride) { red[tid] += red[tid + stride]; }
  }
  workgroupBarrier();
  if (tid == 0u) {
    let r = red[0];
    let cosine = r.x / max(sqrt(r.y * r.z), 1e-30);
    let kvLen = params.kvLen;
    var full = 1u;
    var lastFullLen = state.lastFullLen;
    var nSel = state.nSel;
    var nAttend = nSel;
    if (params.policy == ${POLICY_CODE.recycled}u || params.policy == ${POLICY_CODE.snapkv}u) {
      let drifted = params.checkDynamic != 0u && cosine < params.sim;
      full = select(0u, 1u, params.forceFull != 0u || lastFullLen == 0u || drifted);
      state.lastCosine = cosine;${
        s.commitsSelection
          ? `
      if (full == 1u) {
        state.lastFullLen = kvLen;
        state.nSel = min(params.k, kvLen);
      }`
          : ''
      }
      if (params.policy == ${POLICY_CODE.recycled}u && full == 0u) {
        // Keep the set at K: tokens decoded since the last full step (the current one excluded: it is attended
        // itself) displace the weakest selected positions.
        let decoded = kvLen - 1u - min(kvLen - 1u, lastFullLen);
        nAttend = min(nSel, params.k - min(params.k, decoded));
      }
    } else if (params.policy == ${POLICY_CODE.streaming}u) {
      full = select(0u, 1u, kvLen <= params.k);
      nSel = min(params.sinks, kvLen);
      lastFullLen = max(nSel, kvLen - min(kvLen, params.k - params.sinks));
      state.lastFullLen = lastFullLen;
      state.nSel = nSel;
      nAttend = nSel;
    }
    state.flag = full;
    state.nAttend = nAttend;
    if (params.countStep != 0u) {
      state.steps += 1u;
      state.fullSteps += full;
      state.positionsRead += select(nAttend + kvLen - lastFullLen, kvLen, full == 1u);
    }
    decided = full;
  }
  let full = workgroupUniformLoad(&decided);
  let selecting = params.policy == ${POLICY_CODE.recycled}u || params.policy == ${POLICY_CODE.snapkv}u;
  if (full == 1u && selecting) {
    for (var d = tid; d < D; d += WG) { savedQuery[d] = meanQ[d]; }
  }
}
`;
}

export function commitWgsl(s: { numHeads: number; kvHeads: number; capacity: number; idxStride: number }): string {
  const wg = COMMIT_WORKGROUP;
  return /* wgsl */ `
const NQ: u32 = ${s.numHeads}u;
const G: u32 = ${s.numHeads / s.kvHeads}u;
const CAP: u32 = ${s.capacity}u;
const IDX_STRIDE: u32 = ${s.idxStride}u;
const WG: u32 = ${wg}u;

struct Params { kvLen: u32, k: u32, displaces: u32, _b: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> scores: array<f32>;    // [NQ][CAP] logits of this full step
@group(0) @binding(2) var<storage, read> headStats: array<f32>; // [NQ][2] (max, sum)
@group(0) @binding(3) var<storage, read> idx: array<u32>;       // previous selection
${ATTENTION_STATE_WGSL}
@group(0) @binding(4) var<storage, read_write> state: AttentionState;

var<workgroup> red: array<vec3f, WG>;
var<workgroup> header: vec3u; // flag, previous lastFullLen, previous nSel

@compute @workgroup_size(${wg})
fn main(@builtin(local_invocation_index) tid: u32) {
  if (tid == 0u) { header = vec3u(state.flag, state.lastFullLen, state.nSel); }
  let h0 = workgroupUniformLoad(&header);
  if (h0.x == 0u) { return; }
  let prevLen = h0.y;
  let prevSel = h0.z;
  let kvLen = params.kvLen;
  if (prevLen > 0u) {
    // Per-thread sums over all heads, one reduction: mean over heads of the mass on the previous selection (x), on
    // the part of it a recycled step here would still attend (y), and on the positions appended since (z).
    var kept = prevSel;
    if (params.displaces != 0u) {
      let decoded = kvLen - 1u - min(kvLen - 1u, prevLen);
      kept = min(prevSel, params.k - min(params.k, decoded));
    }
    var part = vec3f(0.0);
    for (var h = 0u; h < NQ; h++) {
      let kvHead = h / G;
      let m = headStats[h * 2u];
      let w = 1.0 / (headStats[h * 2u + 1u] * f32(NQ));
      for (var j = tid; j < prevSel; j += WG) {
        let p = exp(scores[h * CAP + idx[kvHead * IDX_STRIDE + j]] - m) * w;
        part.x += p;
        part.y += select(0.0, p, j < kept);
      }
      for (var p = prevLen + tid; p < kvLen; p += WG) { part.z += exp(scores[h * CAP + p] - m) * w; }
    }
    red[tid] = part;
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
      workgroupBarrier();
      if (tid < stride) { red[tid] += red[tid + stride]; }
    }
    workgroupBarrier();
    if (tid == 0u) {
      state.recallCount += 1u;
      state.recallTopKSum += red[0].x;
      state.recallWithNewSum += red[0].y + red[0].z;
    }
  }
  if (tid == 0u) {
    state.lastFullLen = kvLen;
    state.nSel = min(params.k, kvLen);
  }
}
`;
}

/** The rank sort's workgroup: 256 on a GPU; on a CPU adapter one SIMD register's lanes, where a wider workgroup runs as
 * coroutines that switch at each of the bitonic network's barriers (lavapipe, 1K selected: 2.6 ms per layer at 256). */
export const RANK_WORKGROUP = 256;
export const RANK_WORKGROUP_CPU = 8;

/** Padded row length of the sort scratch for index rows of idxStride entries (a power of two). */
export function rankScratchRow(idxStride: number): number {
  let n = 1;
  while (n < idxStride) n *= 2;
  return n;
}

export function rankSelectionWgsl(
  s: { kvHeads: number; capacity: number; idxStride: number; workgroupSize?: number } & SelectLayers,
): string {
  const wg = s.workgroupSize ?? RANK_WORKGROUP;
  return /* wgsl */ `${selectRowsWgsl(s)}
const ROW: u32 = ${rankScratchRow(s.idxStride)}u;
const WG: u32 = ${wg}u;

@group(0) @binding(0) var<storage, read> values: array<f32>;         // pooled [layers][kvHeads][CAP]: the top-K's input
@group(0) @binding(1) var<storage, read> states: array<u32>;         // the layers' state records, STATE_LAYER apart
@group(0) @binding(2) var<storage, read_write> idx: array<u32>;      // [layers][kvHeads][IDX_STRIDE] (IDX_LAYER apart)
@group(0) @binding(3) var<storage, read_write> keys: array<vec2u>;   // [layers × kvHeads][ROW] (score bits, position)

var<workgroup> header: vec2u; // flag, nSel

// a comes before b: the higher score, then the lower position (f32 bits of values >= 0 order like u32).
fn before(a: vec2u, b: vec2u) -> bool { return a.x > b.x || (a.x == b.x && a.y < b.y); }

@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32) {
  let row = wid.x; // KV head row % KVH of layer row / KVH
  if (tid == 0u) { header = vec2u(stateWord(row, STATE_FLAG), stateWord(row, STATE_N_SEL)); }
  let h = workgroupUniformLoad(&header);
  if (h.x == 0u) { return; }
  let n = h.y;
  var size = 1u;
  while (size < n) { size = size * 2u; }
  let base = row * ROW;
  let idxRow = idxBase(row);
  let valuesRow = valuesBase(row);
  for (var i = tid; i < size; i += WG) {
    var key = vec2u(0u, 0xffffffffu); // padding sorts last
    if (i < n) {
      let p = idx[idxRow + i];
      key = vec2u(bitcast<u32>(values[valuesRow + p]), p);
    }
    keys[base + i] = key;
  }
  storageBarrier();
  workgroupBarrier();
  for (var k = 2u; k <= size; k = k * 2u) {
    for (var j = k / 2u; j > 0u; j = j / 2u) {
      for (var i = tid; i < size; i += WG) {
        let l = i ^ j;
        if (l > i) {
          let a = keys[base + i];
          let b = keys[base + l];
          // Blocks with (i & k) == 0 end up in "before" order, the others reversed: a bitonic merge network.
          if (before(b, a) == ((i & k) == 0u)) {
            keys[base + i] = b;
            keys[base + l] = a;
          }
        }
      }
      storageBarrier();
      workgroupBarrier();
    }
  }
  for (var i = tid; i < n; i += WG) { idx[idxRow + i] = keys[base + i].y; }
}
`;
}
