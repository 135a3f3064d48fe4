// Embedding lookup: out[t][c] = table[ids[t]][c], the table in any stored dtype. One thread per output element.

import { linearNeedsF16, weightReaderWgsl } from '../matmul/weightRead.wgsl';
import type { GpuLinear } from '../types';

export const EMBEDDING_WORKGROUP = 256;

export function embeddingWgsl(dtype: GpuLinear['dtype'], vocab: number, hidden: number): string {
  const [weightDecls, weightBindings] = weightReaderWgsl(dtype, hidden, 2);
  return `${linearNeedsF16(dtype) ? 'enable f16;\n' : ''}
struct Params { count: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
${weightDecls}
@group(0) @binding(${2 + weightBindings}) var<storage, read_write> out: array<f32>;

const VOCAB = ${vocab}u;
const HIDDEN = ${hidden}u;

@compute @workgroup_size(${EMBEDDING_WORKGROUP})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let idx = (wg.x + wg.y * nwg.x) * ${EMBEDDING_WORKGROUP}u + li;
  if (idx >= params.count * HIDDEN) { return; }
  let t = idx / HIDDEN;
  let c = idx % HIDDEN;
  let id = ids[t];
  // An id outside the vocabulary reads as a zero row rather than out-of-bounds memory.
  if (id >= VOCAB) { out[idx] = 0.0; return; }
  out[idx] = loadWeight(id, c);
}
`;
}
