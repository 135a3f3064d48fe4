// Causal prefill attention, flash-attention style: one workgroup owns a block of ROWS query rows that share one KV
// head, walks the keys in tiles of KEYS through workgroup memory, and keeps a running (online) softmax per row, so
// no [tokens][keys] score matrix ever exists and any context length works.
//
// A "row" is one (query position, query head) pair of a GQA group: row = t * group + g, head = kvHead * group + g.
// Putting the whole group in one block lets every K/V tile load serve all heads of the group.

export interface PrefillAttentionTiling {
  /** 'rows': one query row per invocation, keys shared by subgroup broadcast (prefillAttentionRows.wgsl.ts); rows =
   * workgroupSize there and no workgroup memory is used. Absent: the tiled kernel below. */
  variant?: 'rows';
  /** Query rows per workgroup. */
  rows: number;
  /** Keys per tile held in workgroup memory (rows variant: keys per softmax block). */
  keys: number;
  /** Threads per workgroup. */
  workgroupSize: number;
}

/** Only the cache dtype, head size and tiling are compiled in; head counts and capacity come in the uniform, so
 * every layer and model with the same headDim shares one pipeline. */
export interface PrefillAttentionShader {
  kvDtype: 'f16' | 'f32';
  headDim: number;
  tiling: PrefillAttentionTiling;
}

/** Bytes of workgroup memory a tiling needs: Q tile, one K-or-V tile, the score tile and three per-row scalars. */
export function prefillAttentionSharedBytes(headDim: number, t: PrefillAttentionTiling): number {
  if (t.variant === 'rows') return 0;
  return 4 * (t.rows * headDim + t.keys * headDim + t.rows * t.keys + 3 * t.rows);
}

export function prefillAttentionWgsl(s: PrefillAttentionShader): string {
  const { rows, keys, workgroupSize } = s.tiling;
  const kvType = s.kvDtype === 'f16' ? 'f16' : 'f32';
  return /* wgsl */ `${s.kvDtype === 'f16' ? 'enable f16;' : ''}
struct Params {
  tokens: u32,        // query rows of this chunk (positions startPos .. startPos + tokens - 1)
  startPos: u32,      // cache position of the first query token
  blocksPerHead: u32, // workgroups per KV head = ceil(tokens * group / ROWS)
  numHeads: u32,      // query heads
  kvHeads: u32,
  group: u32,         // numHeads / kvHeads
  capacity: u32,      // cache positions per KV head
  // HEAD_DIM, KEYS and ACC_PER_THREAD again, used only as loop bounds: with constant bounds LLVM-based drivers
  // (lavapipe) fully unroll the nested loops and take minutes to compile.
  loopHeadDim: u32,
  loopKeys: u32,
  loopAcc: u32,
  _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;           // [tokens][numHeads][HEAD_DIM], RoPE applied
@group(0) @binding(2) var<storage, read> kCache: array<${kvType}>; // [kvHeads][capacity][HEAD_DIM]
@group(0) @binding(3) var<storage, read> vCache: array<${kvType}>; // [kvHeads][capacity][HEAD_DIM]
@group(0) @binding(4) var<storage, read_write> out: array<f32>;   // [tokens][numHeads][HEAD_DIM]

const HEAD_DIM = ${s.headDim}u;
const ROWS = ${rows}u;
const KEYS = ${keys}u;
const WG = ${workgroupSize}u;
const ACC_PER_THREAD = ${Math.ceil((rows * s.headDim) / workgroupSize)}u;
// Start value of the running max: finite, so exp(start - m) is exactly 0 instead of NaN.
const NO_MAX = -3.0e38;

var<workgroup> qTile: array<f32, ${rows * s.headDim}>;   // [ROWS][HEAD_DIM], pre-scaled by 1/sqrt(HEAD_DIM)
var<workgroup> kvTile: array<f32, ${keys * s.headDim}>;  // [KEYS][HEAD_DIM]: K for the scores, then V
var<workgroup> scores: array<f32, ${rows * keys}>;       // [ROWS][KEYS]: scores, then probabilities
var<workgroup> rowMax: array<f32, ${rows}>;
var<workgroup> rowSum: array<f32, ${rows}>;
var<workgroup> rowRescale: array<f32, ${rows}>;

// Loads keys [tileStart, tileStart + KEYS) of one cache into kvTile; keys at or past keyEnd are zero (they may be
// unwritten memory, and 0 * NaN would poison the sums).
fn loadTile(fromV: bool, cacheBase: u32, tileStart: u32, keyEnd: u32, tid: u32) {
  for (var e = tid; e < KEYS * HEAD_DIM; e += WG) {
    let key = tileStart + e / HEAD_DIM;
    var value = 0.0;
    if (key < keyEnd) {
      let index = cacheBase + key * HEAD_DIM + e % HEAD_DIM;
      if (fromV) { value = f32(vCache[index]); } else { value = f32(kCache[index]); }
    }
    kvTile[e] = value;
  }
}

@compute @workgroup_size(${workgroupSize})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) tid: u32) {
  let block = wid.x + wid.y * nwg.x; // dispatch2d folds wide dispatches into y
  if (block >= params.blocksPerHead * params.kvHeads) { return; }
  let group = params.group;
  let kvHead = block / params.blocksPerHead;
  let rowStart = (block % params.blocksPerHead) * ROWS;
  let numRows = params.tokens * group;
  let lastRow = min(rowStart + ROWS, numRows) - 1u;
  let keyEnd = params.startPos + lastRow / group + 1u; // the block's last query sees keys [0, keyEnd)
  let cacheBase = kvHead * params.capacity * HEAD_DIM;
  let scale = inverseSqrt(f32(HEAD_DIM));

  for (var e = tid; e < ROWS * HEAD_DIM; e += WG) {
    let row = rowStart + e / HEAD_DIM;
    var value = 0.0;
    if (row < numRows) {
      let head = kvHead * group + row % group;
      value = q[((row / group) * params.numHeads + head) * HEAD_DIM + e % HEAD_DIM] * scale;
    }
    qTile[e] = value;
  }
  for (var r = tid; r < ROWS; r += WG) {
    rowMax[r] = NO_MAX;
    rowSum[r] = 0.0;
  }
  var acc: array<f32, ACC_PER_THREAD>; // this thread's output elements tid + i * WG of the [ROWS][HEAD_DIM] block

  for (var tileStart = 0u; tileStart < keyEnd; tileStart += KEYS) {
    loadTile(false, cacheBase, tileStart, keyEnd, tid);
    workgroupBarrier();

    for (var e = tid; e < ROWS * KEYS; e += WG) {
      let qRow = (e / KEYS) * HEAD_DIM;
      let kRow = (e % KEYS) * HEAD_DIM;
      var dot = 0.0;
      for (var d = 0u; d < params.loopHeadDim; d++) { dot += qTile[qRow + d] * kvTile[kRow + d]; }
      scores[e] = dot;
    }
    workgroupBarrier();

    // K is consumed: V replaces it while one thread per row folds the tile into that row's running softmax.
    loadTile(true, cacheBase, tileStart, keyEnd, tid);
    for (var r = tid; r < ROWS; r += WG) {
      let row = rowStart + r;
      let rowKeyEnd = params.startPos + row / group + 1u; // causal: this row sees keys [0, rowKeyEnd)
      var visible = 0u;
      if (row < numRows && rowKeyEnd > tileStart) { visible = min(rowKeyEnd - tileStart, KEYS); }
      let oldMax = rowMax[r];
      var newMax = oldMax;
      for (var j = 0u; j < visible; j++) { newMax = max(newMax, scores[r * KEYS + j]); }
      var tileSum = 0.0;
      for (var j = 0u; j < params.loopKeys; j++) {
        var p = 0.0;
        if (j < visible) { p = exp(scores[r * KEYS + j] - newMax); }
        scores[r * KEYS + j] = p;
        tileSum += p;
      }
      let rescale = exp(oldMax - newMax); // 0 on the first visible tile, 1 when this tile adds nothing
      rowRescale[r] = rescale;
      rowSum[r] = rowSum[r] * rescale + tileSum;
      rowMax[r] = newMax;
    }
    workgroupBarrier();

    for (var i = 0u; i < params.loopAcc; i++) {
      let e = tid + i * WG;
      if (e < ROWS * HEAD_DIM) {
        let r = e / HEAD_DIM;
        let d = e % HEAD_DIM;
        var a = acc[i] * rowRescale[r];
        for (var j = 0u; j < params.loopKeys; j++) { a += scores[r * KEYS + j] * kvTile[j * HEAD_DIM + d]; }
        acc[i] = a;
      }
    }
    workgroupBarrier(); // the next tile overwrites kvTile and scores
  }

  for (var i = 0u; i < params.loopAcc; i++) {
    let e = tid + i * WG;
    let row = rowStart + e / HEAD_DIM;
    if (e < ROWS * HEAD_DIM && row < numRows) {
      let head = kvHead * group + row % group;
      out[((row / group) * params.numHeads + head) * HEAD_DIM + e % HEAD_DIM] = acc[i] / rowSum[e / HEAD_DIM];
    }
  }
}
`;
}
