// Top-K selection for Recycled Attention, per layer and per KV head, entirely on the GPU.
//
// 1. aggregatePool: p_h(pos) = exp(score_h(pos) - max_h) / sum_h   (softmax per q head)
//                   agg(pos) = max over the q heads of the GQA group
//                   pooled(pos) = max of agg over [pos-3, pos+3] ∩ [0, L)   (max-pool, kernel 7, stride 1, same)
// 2. radixSelect:   one workgroup per KV head. Pooled values are >= 0, so their f32 bits order like u32. Four
//                   8-bit histogram passes (MSB first) find the bits T of the K-th largest value and how many values
//                   equal to T are needed; a scan then writes, in ascending position order, every position with
//                   value > T and the first `need` positions with value == T (ties: lower position wins).
// Both kernels read the layer's state flag and exit at once on recycled steps, so they can be encoded every step.
import { ATTENTION_STATE_WGSL } from '../decodeAttention/decodeAttention.wgsl';

export const POOL_TILE = 256;
export const POOL_RADIUS = 3; // kernel 7
export const SELECT_WORKGROUP = 256; // = histogram bins
const HIST_STRIPES = 8;

export function aggregatePoolWgsl(s: { numHeads: number; kvHeads: number; capacity: number }): string {
  const group = s.numHeads / s.kvHeads;
  const halo = POOL_TILE + 2 * POOL_RADIUS;
  return /* wgsl */ `
const G: u32 = ${group}u;
const CAP: u32 = ${s.capacity}u;
const TILE: u32 = ${POOL_TILE}u;
const R: u32 = ${POOL_RADIUS}u;
const HALO: u32 = ${halo}u;

struct Params { kvLen: u32, k: u32, _a: u32, _b: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> scores: array<f32>;    // [numHeads][CAP] logits
@group(0) @binding(2) var<storage, read> headStats: array<f32>; // [numHeads][2] (max, sum)
${ATTENTION_STATE_WGSL}
@group(0) @binding(3) var<storage, read> state: AttentionState;
@group(0) @binding(4) var<storage, read_write> pooled: array<f32>; // [kvHeads][CAP]

var<workgroup> agg: array<f32, HALO>;

@compute @workgroup_size(${POOL_TILE})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32) {
  if (state.flag == 0u) { return; }
  let kvHead = wid.y;
  let tileStart = wid.x * TILE;
  let L = params.kvLen;
  for (var i = tid; i < HALO; i += TILE) {
    let p = i32(tileStart + i) - i32(R);
    var value = -1.0; // outside [0, L): never wins the max (probabilities are >= 0)
    if (p >= 0 && u32(p) < L) {
      for (var g = 0u; g < G; g++) {
        let h = kvHead * G + g;
        value = max(value, exp(scores[h * CAP + u32(p)] - headStats[h * 2u]) / headStats[h * 2u + 1u]);
      }
    }
    agg[i] = value;
  }
  workgroupBarrier();
  let pos = tileStart + tid;
  if (pos < L) {
    var m = agg[tid];
    for (var t = 1u; t <= 2u * R; t++) { m = max(m, agg[tid + t]); }
    pooled[kvHead * CAP + pos] = m;
  }
}
`;
}

export function radixSelectWgsl(s: { capacity: number; idxStride: number }): string {
  const wg = SELECT_WORKGROUP;
  return /* wgsl */ `
const CAP: u32 = ${s.capacity}u;
const IDX_STRIDE: u32 = ${s.idxStride}u;
const WG: u32 = ${wg}u;

struct Params { kvLen: u32, k: u32, _a: u32, _b: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> values: array<f32>; // [kvHeads][CAP], >= 0
${ATTENTION_STATE_WGSL}
@group(0) @binding(2) var<storage, read> state: AttentionState;
@group(0) @binding(3) var<storage, read_write> idx: array<u32>; // [kvHeads][IDX_STRIDE]

var<workgroup> hist: array<atomic<u32>, ${256 * HIST_STRIPES}>;
var<workgroup> merged: array<u32, 256>;
var<workgroup> prefixBits: u32;
var<workgroup> remaining: u32;
var<workgroup> scan: array<vec2u, WG>;

@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32) {
  if (state.flag == 0u) { return; }
  let kvHead = wid.x;
  let L = params.kvLen;
  let K = min(params.k, L);
  let row = kvHead * CAP;
  if (tid == 0u) { prefixBits = 0u; remaining = K; }
  var mask = 0u;
  // Probabilities share few exponents, so many threads hit the same bin: striped copies cut atomic contention.
  let stripe = (tid % ${HIST_STRIPES}u) * 256u;
  for (var round = 0u; round < 4u; round++) {
    let shift = 24u - 8u * round;
    for (var i = tid; i < ${256 * HIST_STRIPES}u; i += WG) { atomicStore(&hist[i], 0u); }
    let prefix = workgroupUniformLoad(&prefixBits); // also the barrier after the clear
    for (var p = tid; p < L; p += WG) {
      let bits = bitcast<u32>(values[row + p]);
      if ((bits & mask) == prefix) { atomicAdd(&hist[stripe + ((bits >> shift) & 255u)], 1u); }
    }
    workgroupBarrier();
    var count = 0u; // WG == 256: thread tid merges bin tid
    for (var c = 0u; c < ${HIST_STRIPES}u; c++) { count += atomicLoad(&hist[c * 256u + tid]); }
    merged[tid] = count;
    workgroupBarrier();
    if (tid == 0u) {
      // The digit d with count(> d) < remaining <= count(>= d), scanning from the top.
      var above = 0u;
      var digit = 0u;
      for (var d = 255i; d >= 0i; d--) {
        let c = merged[u32(d)];
        if (above + c >= remaining) { digit = u32(d); break; }
        above += c;
      }
      remaining -= above;
      prefixBits = prefix | (digit << shift);
    }
    mask |= 255u << shift;
    workgroupBarrier();
  }
  let threshold = workgroupUniformLoad(&prefixBits);
  let need = workgroupUniformLoad(&remaining); // values == threshold to take, lowest positions first

  // Ordered compaction: thread tid owns the contiguous segment tid; one scan of (count > T, count == T) per
  // segment gives each thread where its selected positions go.
  let seg = (L + WG - 1u) / WG;
  let segStart = min(L, tid * seg);
  let segEnd = min(L, segStart + seg);
  var counts = vec2u(0u);
  for (var p = segStart; p < segEnd; p++) {
    let bits = bitcast<u32>(values[row + p]);
    counts += vec2u(select(0u, 1u, bits > threshold), select(0u, 1u, bits == threshold));
  }
  scan[tid] = counts;
  for (var offset = 1u; offset < WG; offset = offset * 2u) {
    workgroupBarrier();
    var add = vec2u(0u);
    if (tid >= offset) { add = scan[tid - offset]; }
    workgroupBarrier();
    scan[tid] += add;
  }
  workgroupBarrier();
  let before = scan[tid] - counts; // (values > T, values == T) in earlier segments
  var slot = before.x + min(before.y, need);
  var eqRank = before.y;
  for (var p = segStart; p < segEnd; p++) {
    let bits = bitcast<u32>(values[row + p]);
    let take = bits > threshold || (bits == threshold && eqRank < need);
    if (bits == threshold) { eqRank++; }
    if (take) {
      idx[kvHead * IDX_STRIDE + slot] = p;
      slot++;
    }
  }
}
`;
}
