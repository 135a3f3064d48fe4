// Device memory bandwidth: a WGSL buffer copy (vec4<u32> loads and stores). Counts bytes read + bytes written.
// The matvec section reports its figures as a fraction of this.
import type { GpuContext } from '../../../kernels/gpuContext';
import { computePipeline } from '../../../kernels/gpuUtil';
import type { BenchContext, BenchRow, BenchSection } from '../sections';
import type { Timing } from '../timing';

const WORKGROUP = 256;
const VEC4_PER_THREAD = 4; // fewer, longer threads: less scheduling work on CPU adapters, coalesced on GPUs

const COPY_WGSL = /* wgsl */ `
@group(0) @binding(0) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<u32>>;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let thread = gid.x + gid.y * groups.x * ${WORKGROUP}u;
  let total = groups.x * groups.y * ${WORKGROUP}u; // threads in the dispatch: consecutive threads, consecutive vec4s
  let n = arrayLength(&src);
  for (var k = 0u; k < ${VEC4_PER_THREAD}u; k++) {
    let i = thread + k * total;
    if (i < n) {
      dst[i] = src[i];
    }
  }
}`;

/** A copy of `bytes` bytes ready to encode: `bytesMoved` counts reads + writes. */
export function createCopy(
  ctx: GpuContext,
  bytes: number,
): { encode: (pass: GPUComputePassEncoder) => void; bytesMoved: number; destroy: () => void } {
  const { device } = ctx;
  const size = Math.floor(bytes / 16) * 16;
  const src = device.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  const dst = device.createBuffer({ size, usage: GPUBufferUsage.STORAGE });
  // Non-zero contents, written in slices (a single huge host array is wasteful).
  const slice = new Uint32Array(Math.min(size, 16 << 20) / 4).map((_, i) => (i * 2654435761) >>> 0);
  for (let off = 0; off < size; off += slice.byteLength) {
    device.queue.writeBuffer(src, off, slice, 0, Math.min(slice.length, (size - off) / 4));
  }
  const pipeline = computePipeline(ctx, COPY_WGSL, 'bench.copy');
  const group = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer: src } },
      { binding: 1, resource: { buffer: dst } },
    ],
  });
  const workgroups = Math.ceil(size / 16 / VEC4_PER_THREAD / WORKGROUP);
  const maxDim = device.limits.maxComputeWorkgroupsPerDimension;
  const y = Math.ceil(workgroups / maxDim);
  const x = Math.ceil(workgroups / y);
  return {
    encode(pass) {
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(x, y);
    },
    bytesMoved: 2 * size,
    destroy() {
      src.destroy();
      dst.destroy();
    },
  };
}

/** Measures a copy of `bytes` bytes; returns the timing and GB/s (read + write). */
export async function measureCopy(ctx: GpuContext, bench: BenchContext, bytes: number): Promise<[Timing, number]> {
  const copy = createCopy(ctx, bytes);
  try {
    const timing = await bench.time(copy.encode);
    return [timing, copy.bytesMoved / (timing.medianMs * 1e6)];
  } finally {
    copy.destroy();
  }
}

/** Copy size: big enough to leave every cache, within one binding. */
export function copyBytes(bench: BenchContext): number {
  const want = bench.cpuAdapter && !bench.large ? 64 << 20 : bench.large ? 1 << 30 : 256 << 20;
  return Math.min(want, bench.gpu.device.limits.maxStorageBufferBindingSize, bench.gpu.device.limits.maxBufferSize);
}

const section: BenchSection = {
  name: 'copy',
  description: 'buffer copy bandwidth (GB/s, read + write)',
  order: 0,
  async run(bench): Promise<BenchRow[]> {
    const bytes = copyBytes(bench);
    const [timing, gbs] = await measureCopy(bench.gpu, bench, bytes);
    bench.summary.copyGBs = gbs;
    return [
      {
        kernel: 'copy',
        MiB: bytes / (1 << 20),
        ms: timing.medianMs,
        'GB/s': gbs,
        timer: timing.method,
        repeat: timing.repeat,
      },
    ];
  },
};
export default section;
