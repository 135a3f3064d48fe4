// Matvec bandwidth per weight dtype: weight bytes read per second, and that as a fraction of the copy bandwidth
// (a matvec reads its weights once, so copy speed is its ceiling). Shapes: Llama-3.2-1B's decode linears on a real
// GPU or with --large; one modest square-ish matrix on CPU adapters.
import { storageBuffer } from '../../../kernels/gpuUtil';
import { linearBytes } from '../../../kernels/linearUpload';
import { createMatvec } from '../../../kernels/matvec/matvec';
import type { GpuLinear } from '../../../kernels/types';
import type { BenchRow, BenchSection } from '../sections';

const DTYPES: GpuLinear['dtype'][] = ['q4f16', 'q4f32', 'f16', 'f32'];

interface Shape {
  name: string;
  rows: number;
  cols: number;
}

const CPU_SHAPES: Shape[] = [{ name: '4096x2048', rows: 4096, cols: 2048 }];
const MODEL_SHAPES: Shape[] = [
  { name: 'qkv 1B', rows: 3072, cols: 2048 },
  { name: 'gate_up 1B', rows: 16384, cols: 2048 },
  { name: 'down 1B', rows: 2048, cols: 8192 },
  { name: 'lm_head 1B', rows: 128256, cols: 2048 },
];

/** Weight buffers of the right size with non-zero, non-repeating-per-row contents (values do not matter here). */
export function fakeWeight(device: GPUDevice, dtype: GpuLinear['dtype'], rows: number, cols: number): GpuLinear {
  const fill = (bytes: number, label: string) => {
    const size = Math.ceil(bytes / 4) * 4;
    const buffer = device.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST, label });
    // 0x3c003c00 = f16 pairs of 1.0, a valid f32 (~0.0078) and valid nibbles: finite for every dtype.
    const slice = new Uint32Array(Math.min(size, 16 << 20) / 4).fill(0x3c003c00);
    for (let off = 0; off < size; off += slice.byteLength) {
      device.queue.writeBuffer(buffer, off, slice, 0, Math.min(slice.length, (size - off) / 4));
    }
    return buffer;
  };
  const n = rows * cols;
  switch (dtype) {
    case 'f32':
      return { dtype, rows, cols, weight: fill(n * 4, 'bench.w') };
    case 'f16':
      return { dtype, rows, cols, weight: fill(n * 2, 'bench.w') };
    default:
      return {
        dtype,
        rows,
        cols,
        weight: fill(n / 2, 'bench.q'),
        scales: fill((n / 32) * (dtype === 'q4f16' ? 2 : 4), 'bench.s'),
      };
  }
}

const section: BenchSection = {
  name: 'matvec',
  description: 'matrix-vector product per weight dtype (GB/s of weights, fraction of copy bandwidth)',
  order: 10,
  async run(bench): Promise<BenchRow[]> {
    const { device } = bench.gpu;
    const copyGBs = await bench.copyBandwidth();
    const shapes = bench.cpuAdapter && !bench.large ? CPU_SHAPES : MODEL_SHAPES;
    const rows: BenchRow[] = [];
    for (const shape of shapes) {
      for (const dtype of DTYPES) {
        const bytes = linearBytes({ dtype, rows: shape.rows, cols: shape.cols });
        if (bytes > device.limits.maxBufferSize) {
          bench.log(`matvec ${dtype} ${shape.name}: ${bytes} bytes exceed maxBufferSize, skipped`);
          continue;
        }
        bench.log(`matvec ${dtype} ${shape.name} (${shape.rows}x${shape.cols})`);
        const weight = fakeWeight(device, dtype, shape.rows, shape.cols);
        const input = storageBuffer(bench.gpu, new Float32Array(shape.cols).fill(0.5));
        const output = storageBuffer(bench.gpu, shape.rows * 4);
        const matvec = createMatvec(bench.gpu, { weight, input, output });
        const timing = await bench.time((pass) => matvec.encode(pass));
        const gbs = bytes / (timing.medianMs * 1e6);
        rows.push({
          shape: shape.name,
          dtype,
          'rows x cols': `${shape.rows}x${shape.cols}`,
          MiB: bytes / (1 << 20),
          us: timing.medianMs * 1000,
          'GB/s': gbs,
          'of copy': gbs / copyGBs,
          tpr: matvec.threadsPerRow,
          rpt: matvec.rowsPerThread,
          chunks: matvec.dispatches.length,
        });
        matvec.destroy();
        for (const b of [weight.weight, weight.scales, input, output]) b?.destroy();
      }
    }
    return rows;
  },
};
export default section;
