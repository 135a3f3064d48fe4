// A small compute kernel with a checked result: proves the host's GPU device really computes (used by e2e tests and
// as a diagnostic). y[i] = x[i] * x[i] + 0.5 * i over a length that is not a multiple of the workgroup size.
import type { GpuSelfTestResult } from '../protocol/messages';

const WORKGROUP = 64;
const SHADER = /* wgsl */ `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= arrayLength(&y)) { return; }
  y[i] = x[i] * x[i] + 0.5 * f32(i);
}`;

export function selfTestReference(x: Float32Array): Float32Array {
  const y = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = Math.fround(Math.fround(x[i] * x[i]) + Math.fround(0.5 * i));
  return y;
}

export async function runGpuSelfTest(
  device: GPUDevice,
  adapter: string,
  f16: boolean,
  elements = 1000,
): Promise<GpuSelfTestResult> {
  const t0 = Date.now();
  const x = new Float32Array(elements);
  for (let i = 0; i < elements; i++) x[i] = ((i * 37) % 101) / 10 - 5;
  const bytes = elements * 4;
  const xBuf = device.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  const yBuf = device.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const readBuf = device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  try {
    device.queue.writeBuffer(xBuf, 0, x);
    const pipeline = device.createComputePipeline({
      layout: 'auto',
      compute: { module: device.createShaderModule({ code: SHADER }), entryPoint: 'main' },
    });
    const bindGroup = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: xBuf } },
        { binding: 1, resource: { buffer: yBuf } },
      ],
    });
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(Math.ceil(elements / WORKGROUP));
    pass.end();
    encoder.copyBufferToBuffer(yBuf, 0, readBuf, 0, bytes);
    device.queue.submit([encoder.finish()]);
    await readBuf.mapAsync(GPUMapMode.READ);
    const y = new Float32Array(readBuf.getMappedRange().slice(0));
    readBuf.unmap();
    const expected = selfTestReference(x);
    let mismatches = 0;
    for (let i = 0; i < elements; i++)
      if (Math.abs(y[i] - expected[i]) > 1e-5 * Math.max(1, Math.abs(expected[i]))) mismatches++;
    return { adapter, f16, elements, mismatches, sample: Array.from(y.slice(0, 4)), ms: Date.now() - t0 };
  } finally {
    xBuf.destroy();
    yBuf.destroy();
    readBuf.destroy();
  }
}
