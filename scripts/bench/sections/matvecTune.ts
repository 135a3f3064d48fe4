// Tuning sweep for the matvec kernel: threads per row x workgroup size, per dtype, on one decode-sized shape.
// Only when named: `npm run bench -- matvec-tune`. The winners become kernels/matvec/matvec.ts defaultTuning().
import { storageBuffer } from '../../../kernels/gpuUtil';
import { linearBytes } from '../../../kernels/linearUpload';
import { createMatvec } from '../../../kernels/matvec/matvec';
import type { GpuLinear } from '../../../kernels/types';
import type { BenchRow, BenchSection } from '../sections';
import { fakeWeight } from './matvec';

// [threadsPerRow, workgroupSize, rowsPerThread]
const SWEEP: [number, number, number][] = [
  [1, 64, 1],
  [1, 64, 4],
  [4, 64, 1],
  [4, 64, 4],
  [4, 64, 8],
  [8, 256, 4],
  [16, 256, 1],
  [16, 256, 2],
  [16, 256, 4],
  [32, 256, 2],
  [32, 256, 4],
  [64, 256, 1],
  [64, 256, 4],
  [128, 256, 4],
];

const section: BenchSection = {
  name: 'matvec-tune',
  description: 'matvec threads-per-row / workgroup-size / rows-per-thread sweep (GB/s of weights)',
  order: 11,
  explicitOnly: true,
  async run(bench): Promise<BenchRow[]> {
    const { device } = bench.gpu;
    const small = bench.cpuAdapter && !bench.large;
    const shapes = small
      ? [[4096, 2048]]
      : [
          [16384, 2048],
          [2048, 8192],
        ];
    const rows: BenchRow[] = [];
    for (const [r, c] of shapes) {
      for (const dtype of ['q4f16', 'f16', 'f32'] as GpuLinear['dtype'][]) {
        const weight = fakeWeight(device, dtype, r, c);
        const input = storageBuffer(bench.gpu, new Float32Array(c).fill(0.5));
        const output = storageBuffer(bench.gpu, r * 4);
        const bytes = linearBytes({ dtype, rows: r, cols: c });
        for (const [threadsPerRow, workgroupSize, rowsPerThread] of SWEEP) {
          if (small && threadsPerRow > 64) continue; // minutes per point on CPU adapters
          bench.log(`matvec-tune ${dtype} ${r}x${c} tpr ${threadsPerRow} wg ${workgroupSize} rpt ${rowsPerThread}`);
          const mv = createMatvec(bench.gpu, { weight, input, output, threadsPerRow, workgroupSize, rowsPerThread });
          const t = await bench.time((pass) => mv.encode(pass));
          rows.push({
            dtype,
            shape: `${r}x${c}`,
            tpr: threadsPerRow,
            wg: workgroupSize,
            rpt: rowsPerThread,
            us: t.medianMs * 1000,
            'GB/s': bytes / (t.medianMs * 1e6),
          });
          mv.destroy();
        }
        for (const b of [weight.weight, weight.scales, input, output]) b?.destroy();
      }
    }
    return rows;
  },
};
export default section;
