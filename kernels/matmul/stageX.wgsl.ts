// Copies the matmul's activations x (f32 [tokens][cols] in a storage buffer) into an rgba32float texture
// [tokens][cols / 4], one texel per invocation, for the rows matmul with xTexture (matmulRows.wgsl.ts says why).
// It is a dispatch, not a copyBufferToTexture, so that it runs inside the prefill's one compute pass. Its params are
// the matmul's own uniform (tokens, rows, cols), written once per encode.

export const STAGE_X_WORKGROUP = 64;

export function stageXWgsl(): string {
  return /* wgsl */ `
struct Params { tokens: u32, rows: u32, cols: u32, pad0: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;
@group(0) @binding(2) var xTex: texture_storage_2d<rgba32float, write>;

@compute @workgroup_size(${STAGE_X_WORKGROUP})
fn main(@builtin(global_invocation_id) id: vec3u) {
  let texels = params.cols / 4u;
  if (id.x < texels && id.y < params.tokens) {
    textureStore(xTex, id.xy, x[id.y * texels + id.x]);
  }
}
`;
}
