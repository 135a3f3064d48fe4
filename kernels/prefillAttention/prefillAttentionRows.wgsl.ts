// Causal prefill attention without workgroup memory, for adapters with a fixed subgroup size (CPU drivers above all):
// one invocation owns one query row (a query position and head of a GQA group, rows of one KV head side by side, as
// in the tiled kernel) and keeps its query and output vector in registers. The keys are walked KEYS at a time; each
// lane loads a slice of a key (or value) vector and every lane reads all of it from its lane (readLane), so a key
// element loaded once feeds one FMA in every lane. Online softmax per row, one rescale of the output per key block.
// On lavapipe each load an invocation issues becomes one scalar load per lane, so this replaces the tiled kernel's
// two workgroup-memory loads per FMA with one register shuffle per FMA. The code is generated unrolled (the lane of
// each element is known where it is written) for one subgroup size, checked at run time (NaN output on a mismatch).

import { readLane } from '../subgroupRead';

export interface PrefillAttentionRowsShader {
  kvDtype: 'f16' | 'f32';
  headDim: number;
  subgroupSize: number;
  /** Rows (invocations) per workgroup, a multiple of the subgroup size. */
  workgroupSize: number;
  /** Keys per softmax block. */
  keys: number;
}

/** Head sizes the rows kernel supports with this subgroup size: a whole number of vec4 per lane. */
export function prefillRowsSupports(headDim: number, subgroupSize: number): boolean {
  return headDim % (4 * subgroupSize) === 0;
}

export function prefillAttentionRowsWgsl(s: PrefillAttentionRowsShader): string {
  const { headDim: D, subgroupSize: SG, workgroupSize: WG, keys: KB } = s;
  if (!prefillRowsSupports(D, SG))
    throw new Error(`prefill attention rows: headDim ${D} needs a multiple of ${4 * SG}`);
  if (WG % SG !== 0) throw new Error(`prefill attention rows: workgroup ${WG} is not a multiple of ${SG}`);
  const V4 = D / 4; // vec4s per row
  const perLane = D / (4 * SG); // vec4s each lane loads per key
  const kvType = s.kvDtype;
  // Element d of a key/value vector sits in lane (d / 4) % SG, slot floor(d / (4 * SG)), component d % 4.
  const bcast = (vec: string, d: number) =>
    readLane(`${vec}${Math.floor(d / (4 * SG))}[${d % 4}]`, Math.floor(d / 4) % SG);
  const loadVec = (cache: string, name: string, key: string) =>
    [...Array(perLane).keys()]
      .map((i) => `let ${name}${i} = vec4f(${cache}[(cacheBase + ${key} * ${D}u) / 4u + lane + ${i * SG}u]);`)
      .join(' ');

  const block: string[] = [];
  for (let j = 0; j < KB; j++) {
    block.push(`let key${j} = min(keyStart + ${j}u, lastKey);`);
    block.push(loadVec('kCache', `k${j}_`, `key${j}`));
    const terms: string[] = [];
    for (let d = 0; d < D; d++)
      terms.push(`dot${j} = fma(q${Math.floor(d / 4)}[${d % 4}], ${bcast(`k${j}_`, d)}, dot${j});`);
    block.push(`var dot${j} = 0.0; ${terms.join(' ')}`);
    block.push(`let s${j} = select(-3.0e38, dot${j}, keyStart + ${j}u < rowKeyEnd);`);
  }
  block.push(
    `let blockMax = max(runMax, max(${[...Array(KB).keys()].map((j) => `s${j}`).reduce((a, b) => `max(${a}, ${b})`)}, -3.0e38));`,
  );
  block.push('let rescale = exp(runMax - blockMax);');
  block.push('runMax = blockMax;');
  for (let j = 0; j < KB; j++)
    block.push(`let p${j} = select(0.0, exp(s${j} - blockMax), keyStart + ${j}u < rowKeyEnd);`);
  block.push(`runSum = runSum * rescale + ${[...Array(KB).keys()].map((j) => `p${j}`).join(' + ')};`);
  for (let i = 0; i < V4; i++) block.push(`acc${i} *= rescale;`);
  for (let j = 0; j < KB; j++) {
    block.push(loadVec('vCache', `v${j}_`, `key${j}`));
    for (let i = 0; i < V4; i++) {
      const comps = [0, 1, 2, 3].map((c) => bcast(`v${j}_`, 4 * i + c)).join(', ');
      block.push(`acc${i} = fma(vec4f(p${j}), vec4f(${comps}), acc${i});`);
    }
  }

  return /* wgsl */ `${kvType === 'f16' ? 'enable f16;\n' : ''}enable subgroups;
struct Params {
  tokens: u32, startPos: u32, blocksPerHead: u32, numHeads: u32, kvHeads: u32, group: u32, capacity: u32,
  laneBase: u32, // always 0 (subgroupRead.ts)
}
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4f>;                // [tokens][numHeads][HEAD_DIM / 4]
@group(0) @binding(2) var<storage, read> kCache: array<vec4<${kvType}>>; // [kvHeads][capacity][HEAD_DIM / 4]
@group(0) @binding(3) var<storage, read> vCache: array<vec4<${kvType}>>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4f>;        // [tokens][numHeads][HEAD_DIM / 4]

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) lane: u32,
        @builtin(subgroup_size) subgroupSize: u32) {
  let block = wid.x + wid.y * nwg.x; // dispatch2d folds wide dispatches into y
  if (block >= params.blocksPerHead * params.kvHeads) { return; }
  let group = params.group;
  let laneBase = params.laneBase;
  let kvHead = block / params.blocksPerHead;
  let rowStart = (block % params.blocksPerHead) * ${WG}u;
  let numRows = params.tokens * group;
  let lastRowOfBlock = min(rowStart + ${WG}u, numRows) - 1u;
  let keyEnd = params.startPos + lastRowOfBlock / group + 1u; // keys [0, keyEnd) for the block's last row
  let lastKey = keyEnd - 1u;
  let row = min(rowStart + li, numRows - 1u);                 // rows past the end repeat the last (not stored)
  let rowKeyEnd = params.startPos + row / group + 1u;         // causal: this row sees keys [0, rowKeyEnd)
  let head = kvHead * group + row % group;
  let qBase = ((row / group) * params.numHeads + head) * ${V4}u;
  let cacheBase = kvHead * params.capacity * ${D}u;
  let scale = inverseSqrt(f32(${D}));
${[...Array(V4).keys()].map((i) => `  let q${i} = q[qBase + ${i}u] * scale;\n  var acc${i} = vec4f(0.0);`).join('\n')}
  var runMax = -3.0e38;
  var runSum = 0.0;
  for (var keyStart = 0u; keyStart < keyEnd; keyStart += ${KB}u) {
    ${block.join('\n    ')}
  }
  let wrongSubgroup = subgroupSize != ${SG}u;
  let nan = bitcast<f32>(0x7fc00000u | u32(wrongSubgroup)); // a runtime NaN (WGSL rejects a constant one)
  if (rowStart + li < numRows) {
    let inv = select(1.0 / runSum, nan, wrongSubgroup);
${[...Array(V4).keys()].map((i) => `    out[qBase + ${i}u] = acc${i} * inv;`).join('\n')}
  }
}
`;
}
