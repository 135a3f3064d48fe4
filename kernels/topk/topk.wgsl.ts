// Top-K selection for Recycled Attention, per KV head, entirely on the GPU.
//
// 1. aggregatePool (per layer, right after its attention):
//                   p_h(pos) = exp(score_h(pos) - max_h) / sum_h   (softmax per q head)
//                   agg(pos) = max over the q heads of the GQA group
//                   pooled(pos) = max of agg over [pos-3, pos+3] ∩ [0, L)   (max-pool, kernel 7, stride 1, same)
// 2. radix select, parallel over chunks of the row x rows (the KV heads of one layer, or of all layers of a model at
//    once: SelectLayers): every pass is one dispatch of (chunks, layers × kvHeads) workgroups, each chunk
//    ceil(L / chunks) positions rounded up to a multiple of the workgroup (the host picks the chunk count: many on a
//    GPU, so a long context keeps the whole device busy; one on a CPU adapter, where every extra workgroup only adds
//    its histogram's clear and merge). Pooled values are >= 0, so their f32 bits order like u32. Three histogram passes (digits of bits 31..21, 20..10, 9..0, MSB first) add each
//    chunk's histogram of the values that match the digits found so far into a global histogram per head and round;
//    every workgroup of a later pass re-derives those digits from the global histograms (a short scan, the same
//    result in every workgroup), which saves a dispatch per round. That gives the bits T of the K-th largest value
//    and how many values equal to T are needed (`need`).
//    count: each chunk counts its values > T and == T.  write: each chunk adds the counts of the chunks before it
//    and writes, in ascending position order, every position with value > T and the first `need` positions with
//    value == T over the whole row (ties: lower position wins); it also clears the histograms for the next selection.
//    A row in one chunk (a CPU adapter, a short context) needs no count pass: its write derives T itself.
// Every workgroup reads its layer's state flag and exits at once on a recycled step, so the passes can be encoded every
// step, and layers on recycled steps cost a model-wide pass nothing but the exit.
import {
  ATTENTION_PARAMS_WGSL,
  ATTENTION_STATE_WGSL,
  HEAD_STAT_FROM_SPLITS_WGSL,
  STATE,
} from '../decodeAttention/decodeAttention.wgsl';

export const POOL_TILE = 256;
export const POOL_RADIUS = 3; // kernel 7
export const SELECT_WORKGROUP = 256;
/** Histogram bins per round (11-bit digits; the last round has 10). */
export const SELECT_BINS = 2048;
export const SELECT_ROUNDS = 3;
/** Fewest positions per chunk of the select passes (the host caps the chunk count at ceil(L / this)). */
export const SELECT_MIN_CHUNK = 1024;

/** Where the pooling gets each q head's softmax (max logit, sum of exp): the head-stats buffer the combine kernel
 * writes, or the attention's split partials, reduced by the pooling itself (when the combine runs in the o matvec,
 * this saves the head-stats kernel's dispatch). */
export type PoolStats = 'headStats' | 'splits';

export interface PoolShape {
  numHeads: number;
  kvHeads: number;
  capacity: number;
  stats: PoolStats;
}

/** The pooling's bindings and `fn headStat(h) -> vec2f`, shared by both kernels (the wrapper binds them alike). */
function poolBindingsWgsl(stats: PoolStats): string {
  const statsWgsl =
    stats === 'headStats'
      ? `@group(0) @binding(2) var<storage, read> headStats: array<f32>; // [numHeads][2] (max, sum)
fn headStat(h: u32) -> vec2f { return vec2f(headStats[h * 2u], headStats[h * 2u + 1u]); }`
      : `@group(0) @binding(2) var<storage, read> partMaxSum: array<f32>; // [numHeads][MAX_SPLITS][2] split partials
${ATTENTION_PARAMS_WGSL}
@group(0) @binding(5) var<uniform> split: AttentionParams; // the attention's: numSplits of this step
${HEAD_STAT_FROM_SPLITS_WGSL}
fn headStat(h: u32) -> vec2f { return headStatFromSplits(h, split.numSplits); }`;
  return /* wgsl */ `
struct Params { kvLen: u32, k: u32, _a: u32, _b: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> scores: array<f32>;    // [numHeads][CAP] logits
${ATTENTION_STATE_WGSL}
@group(0) @binding(3) var<storage, read> state: AttentionState;
@group(0) @binding(4) var<storage, read_write> pooled: array<f32>; // [kvHeads][CAP]
${statsWgsl}
`;
}

export function aggregatePoolWgsl(s: PoolShape): string {
  const group = s.numHeads / s.kvHeads;
  const halo = POOL_TILE + 2 * POOL_RADIUS;
  return /* wgsl */ `
const G: u32 = ${group}u;
const CAP: u32 = ${s.capacity}u;
const TILE: u32 = ${POOL_TILE}u;
const R: u32 = ${POOL_RADIUS}u;
const HALO: u32 = ${halo}u;

${poolBindingsWgsl(s.stats)}

var<workgroup> agg: array<f32, HALO>;
var<workgroup> stats: array<vec2f, G>;

@compute @workgroup_size(${POOL_TILE})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32) {
  if (state.flag == 0u) { return; }
  let kvHead = wid.y;
  for (var g = tid; g < G; g += TILE) { stats[g] = headStat(kvHead * G + g); }
  workgroupBarrier();
  let tileStart = wid.x * TILE;
  let L = params.kvLen;
  for (var i = tid; i < HALO; i += TILE) {
    let p = i32(tileStart + i) - i32(R);
    var value = -1.0; // outside [0, L): never wins the max (probabilities are >= 0)
    if (p >= 0 && u32(p) < L) {
      for (var g = 0u; g < G; g++) {
        value = max(value, exp(scores[(kvHead * G + g) * CAP + u32(p)] - stats[g].x) / stats[g].y);
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

/** Positions each lane of the CPU-adapter pooling walks (POOL_TILE per workgroup of POOL_LANES lanes). */
export const POOL_LANES = 8;
const POOL_SEGMENT = POOL_TILE / POOL_LANES;

/** aggregatePool for CPU adapters, same bindings, dispatch and results: a workgroup of one SIMD register's lanes, each
 * lane walking its own POOL_SEGMENT positions with the last 7 aggregated values in registers, so there is no
 * workgroup memory and no barrier (lavapipe turns each workgroup-memory read into a per-lane loop and runs a
 * 256-wide workgroup as coroutines that switch at the barrier). The per-head max and sum are loaded (or reduced from
 * the split partials) once per lane. */
export function aggregatePoolLanesWgsl(s: PoolShape): string {
  const group = s.numHeads / s.kvHeads;
  const heads = Array.from({ length: group }, (_, g) => g);
  const window = Array.from({ length: 2 * POOL_RADIUS + 1 }, (_, i) => `w${i}`);
  const maxOf = (xs: string[]): string => (xs.length === 1 ? xs[0] : `max(${maxOf(xs.slice(0, -1))}, ${xs.at(-1)})`);
  const stats = heads.map((g) => `let stat${g} = headStat(kvHead * ${group}u + ${g}u);`);
  const aggregate = heads.map(
    (g) => `value = max(value, exp(scores[(kvHead * ${group}u + ${g}u) * CAP + u32(p)] - stat${g}.x) / stat${g}.y);`,
  );
  const shift = [...window.slice(0, -1).map((w, i) => `${w} = ${window[i + 1]};`), `${window.at(-1)} = value;`];
  return /* wgsl */ `
const CAP: u32 = ${s.capacity}u;
const R: u32 = ${POOL_RADIUS}u;
const SEG: u32 = ${POOL_SEGMENT}u;

${poolBindingsWgsl(s.stats)}

@compute @workgroup_size(${POOL_LANES})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lane: u32) {
  if (state.flag == 0u) { return; }
  let kvHead = wid.y;
  let L = params.kvLen;
  let segStart = (wid.x * ${POOL_LANES}u + lane) * SEG;
  ${stats.join('\n  ')}
  ${window.map((w) => `var ${w} = -1.0;`).join(' ')}
  // Step t aggregates position segStart - R + t; from t = 2R on, the window holds pos - R .. pos + R of pos = t - 2R.
  for (var t = 0u; t < SEG + 2u * R; t++) {
    let p = i32(segStart + t) - i32(R);
    var value = -1.0; // outside [0, L): never wins the max (probabilities are >= 0)
    if (p >= 0 && u32(p) < L) {
      ${aggregate.join('\n      ')}
    }
    ${shift.join(' ')}
    let pos = segStart + t - 2u * R;
    if (t >= 2u * R && pos < L) { pooled[kvHead * CAP + pos] = ${maxOf(window)}; }
  }
}
`;
}

export type SelectPass =
  | { kind: 'histogram'; round: number }
  | { kind: 'count' }
  | { kind: 'write' }
  /** The write of a row in one chunk: finds the threshold itself (no count pass). */
  | { kind: 'writeOneChunk' };

/** Round r's digit: bits [DIGIT_SHIFT[r], DIGIT_SHIFT[r] + DIGIT_BITS[r]) of a value's f32 bits, MSB first. */
const DIGIT_SHIFT = [21, 10, 0];
const DIGIT_BITS = [11, 11, 10];

/** Where the rows of several layers lie when one dispatch selects for all of them (a model's layers share one
 * buffer each of pooled values, index rows and state records). One layer: every stride is unused. */
export interface SelectLayers {
  layers: number;
  /** f32 from one layer's pooled rows [kvHeads][CAP] to the next's. */
  valuesStride: number;
  /** u32 from one layer's index rows [kvHeads][idxStride] to the next's. */
  idxLayerStride: number;
  /** u32 from one layer's state record to the next's. */
  stateStride: number;
}

/** WGSL of a select pass's row addressing: row `row` of a dispatch is KV head row % KVH of layer row / KVH. */
export function selectRowsWgsl(s: { kvHeads: number; capacity: number; idxStride: number } & SelectLayers): string {
  return /* wgsl */ `
const KVH: u32 = ${s.kvHeads}u;
const CAP: u32 = ${s.capacity}u;
const IDX_STRIDE: u32 = ${s.idxStride}u;
const VALUES_LAYER: u32 = ${s.valuesStride}u;
const IDX_LAYER: u32 = ${s.idxLayerStride}u;
const STATE_LAYER: u32 = ${s.stateStride}u;
fn valuesBase(row: u32) -> u32 { return (row / KVH) * VALUES_LAYER + (row % KVH) * CAP; }
fn idxBase(row: u32) -> u32 { return (row / KVH) * IDX_LAYER + (row % KVH) * IDX_STRIDE; }
// The layer's state record, by field (the layers' records are STATE_LAYER words apart).
fn stateWord(row: u32, field: u32) -> u32 { return states[(row / KVH) * STATE_LAYER + field]; }
const STATE_FLAG: u32 = ${STATE.flag}u;
const STATE_N_SEL: u32 = ${STATE.nSel}u;`;
}

/** One pass of the parallel radix select: dispatched as (ceil(kvLen / chunk), layers × kvHeads) workgroups. */
export function radixSelectWgsl(
  s: {
    kvHeads: number;
    capacity: number;
    idxStride: number;
    maxChunks: number;
    pass: SelectPass;
  } & SelectLayers,
): string {
  const p = s.pass;
  const header = /* wgsl */ `${selectRowsWgsl(s)}
const WG: u32 = ${SELECT_WORKGROUP}u;
const BINS: u32 = ${SELECT_BINS}u;
const ROUNDS: u32 = ${SELECT_ROUNDS}u;
const MAX_CHUNKS: u32 = ${s.maxChunks}u;

struct Params { kvLen: u32, k: u32, _a: u32, _b: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> values: array<f32>; // [layers][kvHeads][CAP] (VALUES_LAYER apart), >= 0
@group(0) @binding(2) var<storage, read> states: array<u32>; // the layers' state records, STATE_LAYER words apart

// Positions per chunk for a row of L split in \`chunks\` (the dispatch width): every pass derives the same value.
fn chunkSize(L: u32, chunks: u32) -> u32 { return ((L + chunks - 1u) / chunks + WG - 1u) / WG * WG; }`;
  if (p.kind === 'histogram') return header + histogramBody(p.round);
  if (p.kind === 'count') return header + countBody();
  return header + writeBody(p.kind === 'writeOneChunk');
}

/** The digits of rounds 0..rounds-1 from the global histograms: (prefix bits, values equal to the prefix still
 * needed). Called by every thread in uniform control flow; every workgroup of a head gets the same answer. */
function resolveWgsl(rounds: number): string {
  return /* wgsl */ `
var<workgroup> groupSums: array<u32, WG>;
var<workgroup> found: vec2u;

fn resolve(head: u32, K: u32, tid: u32) -> vec2u {
  var prefix = 0u;
  var remaining = K;
  for (var r = 0u; r < ${rounds}u; r++) {
    let base = (head * ROUNDS + r) * BINS;
    var sum = 0u; // WG == BINS / 8: thread tid sums bins 8 tid .. 8 tid + 7
    for (var b = 0u; b < 8u; b++) { sum += atomicLoad(&hist[base + tid * 8u + b]); }
    groupSums[tid] = sum;
    workgroupBarrier();
    if (tid == 0u) {
      // The digit d with count(> d) < remaining <= count(>= d), scanning from the top: first the group of 8 bins,
      // then the bin inside it.
      var above = 0u;
      var group = 0u;
      for (var g = i32(WG) - 1i; g >= 0i; g--) {
        let c = groupSums[u32(g)];
        if (above + c >= remaining) { group = u32(g); break; }
        above += c;
      }
      var digit = group * 8u;
      for (var b = 7i; b >= 0i; b--) {
        let c = atomicLoad(&hist[base + group * 8u + u32(b)]);
        if (above + c >= remaining) { digit = group * 8u + u32(b); break; }
        above += c;
      }
      let shift = select(select(${DIGIT_SHIFT[2]}u, ${DIGIT_SHIFT[1]}u, r == 1u), ${DIGIT_SHIFT[0]}u, r == 0u);
      found = vec2u(prefix | (digit << shift), remaining - above);
    }
    let f = workgroupUniformLoad(&found); // also the barrier before groupSums is rewritten
    prefix = f.x;
    remaining = f.y;
  }
  return vec2u(prefix, remaining);
}`;
}

function histogramBody(round: number): string {
  // Values that match the digits of the earlier rounds (the bits above this round's digit).
  const mask = round === 0 ? 0 : (0xffffffff << (DIGIT_SHIFT[round] + DIGIT_BITS[round])) >>> 0;
  return /* wgsl */ `
@group(0) @binding(3) var<storage, read_write> hist: array<atomic<u32>>; // [layers × kvHeads][ROUNDS][BINS]

var<workgroup> local: array<atomic<u32>, BINS>;
${round === 0 ? '' : resolveWgsl(round)}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) groups: vec3u,
        @builtin(local_invocation_index) tid: u32) {
  if (stateWord(wid.y, STATE_FLAG) == 0u) { return; }
  let head = wid.y;
  let L = params.kvLen;
  let chunk = chunkSize(L, groups.x);
  let prefix = ${round === 0 ? '0u' : 'resolve(head, min(params.k, L), tid).x'};
  for (var i = tid; i < BINS; i += WG) { atomicStore(&local[i], 0u); }
  workgroupBarrier();
  let start = min(L, wid.x * chunk);
  let end = min(L, start + chunk);
  for (var p = start + tid; p < end; p += WG) {
    let bits = bitcast<u32>(values[valuesBase(head) + p]);
    if ((bits & 0x${mask.toString(16)}u) == prefix) {
      atomicAdd(&local[(bits >> ${DIGIT_SHIFT[round]}u) & ${2 ** DIGIT_BITS[round] - 1}u], 1u);
    }
  }
  workgroupBarrier();
  let base = (head * ROUNDS + ${round}u) * BINS;
  for (var i = tid; i < BINS; i += WG) {
    let c = atomicLoad(&local[i]);
    if (c > 0u) { atomicAdd(&hist[base + i], c); }
  }
}
`;
}

function countBody(): string {
  return /* wgsl */ `
@group(0) @binding(3) var<storage, read_write> hist: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read_write> chunkCounts: array<vec2u>; // [layers × kvHeads][MAX_CHUNKS] (> T, == T)
@group(0) @binding(5) var<storage, read_write> selected: array<vec2u>;    // [layers × kvHeads] (T, need)

var<workgroup> partial: array<vec2u, WG>;
${resolveWgsl(SELECT_ROUNDS)}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) groups: vec3u,
        @builtin(local_invocation_index) tid: u32) {
  if (stateWord(wid.y, STATE_FLAG) == 0u) { return; }
  let head = wid.y;
  let L = params.kvLen;
  let chunk = chunkSize(L, groups.x);
  let sel = resolve(head, min(params.k, L), tid); // (T, need)
  let start = min(L, wid.x * chunk);
  let end = min(L, start + chunk);
  var counts = vec2u(0u);
  for (var p = start + tid; p < end; p += WG) {
    let bits = bitcast<u32>(values[valuesBase(head) + p]);
    counts += vec2u(select(0u, 1u, bits > sel.x), select(0u, 1u, bits == sel.x));
  }
  partial[tid] = counts;
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    workgroupBarrier();
    if (tid < stride) { partial[tid] += partial[tid + stride]; }
  }
  if (tid == 0u) {
    chunkCounts[head * MAX_CHUNKS + wid.x] = partial[0];
    if (wid.x == 0u) { selected[head] = sel; }
  }
}
`;
}

/** write: places the chunk's selected positions in the row. oneChunk: the row is one chunk (one workgroup per head),
 * so the pass derives (T, need) from the histograms itself and no count pass runs. */
function writeBody(oneChunk: boolean): string {
  const bindings = oneChunk
    ? `
@group(0) @binding(3) var<storage, read_write> hist: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read_write> idx: array<u32>; // [layers][kvHeads][IDX_STRIDE] (IDX_LAYER apart)`
    : `
@group(0) @binding(3) var<storage, read_write> hist: array<u32>;
@group(0) @binding(4) var<storage, read> chunkCounts: array<vec2u>;
@group(0) @binding(5) var<storage, read> selected: array<vec2u>;
@group(0) @binding(6) var<storage, read_write> idx: array<u32>; // [layers][kvHeads][IDX_STRIDE] (IDX_LAYER apart)`;
  const threshold = oneChunk
    ? `
  let sel = resolve(head, min(params.k, L), tid); // (T, need)
  // resolve() ends with a barrier after the last histogram read, and this is the head's only workgroup: clear them
  // for the next selection.
  for (var i = tid; i < ROUNDS * BINS; i += WG) { atomicStore(&hist[head * ROUNDS * BINS + i], 0u); }
  let before = vec2u(0u);`
    : `
  let sel = selected[head];
  // The count pass was the histograms' last reader: clear them for the next selection.
  for (var i = wid.x * WG + tid; i < ROUNDS * BINS; i += groups.x * WG) { hist[head * ROUNDS * BINS + i] = 0u; }
  var before = vec2u(0u); // (> T, == T) in the chunks before this one
  for (var c = 0u; c < wid.x; c++) { before += chunkCounts[head * MAX_CHUNKS + c]; }`;
  return /* wgsl */ `${bindings}

var<workgroup> scan: array<vec2u, WG>;
${oneChunk ? resolveWgsl(SELECT_ROUNDS) : ''}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) groups: vec3u,
        @builtin(local_invocation_index) tid: u32) {
  if (stateWord(wid.y, STATE_FLAG) == 0u) { return; }
  let head = wid.y;
  let L = params.kvLen;
  let chunk = chunkSize(L, groups.x);
  let seg = chunk / WG;${threshold}
  let threshold = sel.x;
  let need = sel.y; // values == threshold to take over the whole row, lowest positions first
  // Ordered compaction inside the chunk: thread tid owns the contiguous segment tid; a scan of the segments'
  // (> T, == T) counts gives each thread where its selected positions go.
  let start = min(L, wid.x * chunk);
  let end = min(L, start + chunk);
  let segStart = min(end, start + tid * seg);
  let segEnd = min(end, segStart + seg);
  var counts = vec2u(0u);
  for (var p = segStart; p < segEnd; p++) {
    let bits = bitcast<u32>(values[valuesBase(head) + p]);
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
  let mine = before + scan[tid] - counts; // (> T, == T) before this segment in the row
  var slot = mine.x + min(mine.y, need);
  var eqRank = mine.y;
  for (var p = segStart; p < segEnd; p++) {
    let bits = bitcast<u32>(values[valuesBase(head) + p]);
    let take = bits > threshold || (bits == threshold && eqRank < need);
    if (bits == threshold) { eqRank++; }
    if (take) {
      idx[idxBase(head) + slot] = p;
      slot++;
    }
  }
}
`;
}
