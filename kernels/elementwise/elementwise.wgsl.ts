// Elementwise kernels on f32 activations, one thread per output element; the element count comes from the uniform.

export const ELEMENTWISE_WORKGROUP = 256;

const header = `struct Params { count: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> params: Params;
`;

const indexFromIds = `let idx = (wg.x + wg.y * nwg.x) * ${ELEMENTWISE_WORKGROUP}u + li;
  if (idx >= params.count) { return; }`;

const entry = `@compute @workgroup_size(${ELEMENTWISE_WORKGROUP})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32)`;

/** out[t][j] = silu(gateUp[t][j]) * gateUp[t][I + j], count = tokens * I. */
export function siluMulWgsl(intermediate: number): string {
  return `${header}
@group(0) @binding(1) var<storage, read> gateUp: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
const I = ${intermediate}u;
${entry} {
  ${indexFromIds}
  let t = idx / I;
  let j = idx % I;
  let gate = gateUp[t * 2u * I + j];
  let up = gateUp[t * 2u * I + I + j];
  // silu(g) = g * sigmoid(g); for very negative g, exp overflows to inf and the quotient is -0, as it should be.
  out[idx] = gate / (1.0 + exp(-gate)) * up;
}
`;
}

/** x[i] += y[i] for i < count (the residual add). */
export function addInPlaceWgsl(): string {
  return `${header}
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
${entry} {
  ${indexFromIds}
  x[idx] = x[idx] + y[idx];
}
`;
}

/** x[t][j] += bias[j] for t * WIDTH + j < count. */
export function addBiasWgsl(width: number, biasType: 'f32' | 'f16'): string {
  return `${biasType === 'f16' ? 'enable f16;\n' : ''}${header}
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<${biasType}>;
const WIDTH = ${width}u;
${entry} {
  ${indexFromIds}
  x[idx] = x[idx] + f32(bias[idx % WIDTH]);
}
`;
}
