// Matvec bandwidth: weight bytes read per second, and that as a fraction of the copy bandwidth (a matvec reads its
// weights once, so copy speed is its ceiling; `floor_us` is that bytes-moved prediction: weight bytes / copy GB/s).
// Each case is timed in alternation with the copy (`copy_GBs`, read + write), best sample of each (see timeMatvec).
// Every Llama-3.2-1B decode shape in the q4 format this adapter runs (q4f16_1 with shader-f16, else q4f32_1) always;
// the other dtypes on the 1B shapes on a GPU, on one modest matrix on CPU adapters (also with --large: there the
// 1B shapes in f32 alone take minutes, and no summary figure needs them).
// `q4FracCopyMin(rows)` is the lowest fraction of copy over the 1B shapes in the adapter's q4 format (the bench
// summary's `matvecQ4FracCopyMin`).
import { storageBuffer } from '../../../kernels/gpuUtil';
import { linearBytes } from '../../../kernels/linearUpload';
import { createMatvec } from '../../../kernels/matvec/matvec';
import type { GpuLinear } from '../../../kernels/types';
import type { BenchContext, BenchRow, BenchSection } from '../sections';
import { copyBytes, createCopy } from './copy';

/** Alternating copy / matvec timing rounds per case (best sample of each kept). */
const ROUNDS = 3;

const DTYPES: GpuLinear['dtype'][] = ['q4f16', 'q4f32', 'f16', 'f32'];

export interface MatvecShape {
  name: string;
  rows: number;
  cols: number;
}

const CPU_SHAPES: MatvecShape[] = [{ name: '4096x2048', rows: 4096, cols: 2048 }];
/** Llama-3.2-1B's decode linears: [out][in]. */
export const LLAMA_1B_SHAPES: MatvecShape[] = [
  { name: 'qkv 1B', rows: 3072, cols: 2048 },
  { name: 'o 1B', rows: 2048, cols: 2048 },
  { name: 'gate_up 1B', rows: 16384, cols: 2048 },
  { name: 'down 1B', rows: 2048, cols: 8192 },
  { name: 'lm_head 1B', rows: 128256, cols: 2048 },
];

/** The q4 format the engine runs on this adapter: q4f16_1 keeps f16 scales only with shader-f16. */
export function adapterQ4(bench: BenchContext): 'q4f16' | 'q4f32' {
  return bench.gpu.f16 ? 'q4f16' : 'q4f32';
}

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

/** A copy big enough to leave every cache: the bandwidth each matvec is compared with. */
export function benchCopy(bench: BenchContext): ReturnType<typeof createCopy> {
  return createCopy(bench.gpu, copyBytes(bench));
}

/** Times one matvec of this shape and dtype (default tuning for the adapter unless `tuning` overrides it) and, in
 * alternation with it, the copy: on a shared machine the load changes from second to second, so each figure is the
 * best sample over the rounds, and the fraction compares a matvec and a copy measured side by side. */
export async function timeMatvec(
  bench: BenchContext,
  dtype: GpuLinear['dtype'],
  shape: MatvecShape,
  copy: ReturnType<typeof createCopy>,
  tuning: Partial<Parameters<typeof createMatvec>[1]> = {},
): Promise<{ us: number; gbs: number; copyGBs: number; bytes: number; matvec: ReturnType<typeof createMatvec> }> {
  const { device } = bench.gpu;
  const bytes = linearBytes({ dtype, rows: shape.rows, cols: shape.cols });
  const weight = fakeWeight(device, dtype, shape.rows, shape.cols);
  const input = storageBuffer(bench.gpu, new Float32Array(shape.cols).fill(0.5));
  const output = storageBuffer(bench.gpu, shape.rows * 4);
  try {
    const matvec = createMatvec(bench.gpu, { ...tuning, weight, input, output });
    let matvecMs = Infinity;
    let copyMs = Infinity;
    for (let round = 0; round < ROUNDS; round++) {
      copyMs = Math.min(copyMs, ...(await bench.time(copy.encode)).samplesMs);
      matvecMs = Math.min(matvecMs, ...(await bench.time((pass) => matvec.encode(pass))).samplesMs);
    }
    matvec.destroy();
    return {
      us: matvecMs * 1000,
      gbs: bytes / (matvecMs * 1e6),
      copyGBs: copy.bytesMoved / (copyMs * 1e6),
      bytes,
      matvec,
    };
  } finally {
    for (const b of [weight.weight, weight.scales, input, output]) b?.destroy();
  }
}

/** Lowest fraction of copy bandwidth over the Llama-3.2-1B shapes in the adapter's q4 format (undefined if absent). */
export function q4FracCopyMin(rows: BenchRow[]): number | undefined {
  const fracs = rows.filter((r) => r.adapterQ4 === true && r.model === '1B').map((r) => r['of copy'] as number);
  return fracs.length === LLAMA_1B_SHAPES.length ? Math.min(...fracs) : undefined;
}

const section: BenchSection = {
  name: 'matvec',
  description: 'matrix-vector product per shape and weight dtype (GB/s of weights, fraction of copy bandwidth)',
  order: 10,
  async run(bench): Promise<BenchRow[]> {
    const { device } = bench.gpu;
    const copy = benchCopy(bench);
    const q4 = adapterQ4(bench);
    const cases: [MatvecShape, GpuLinear['dtype'], boolean][] = LLAMA_1B_SHAPES.map((s) => [s, q4, true]);
    const otherShapes = bench.cpuAdapter ? CPU_SHAPES : LLAMA_1B_SHAPES;
    for (const shape of otherShapes) {
      for (const dtype of DTYPES)
        if (!(dtype === q4 && otherShapes === LLAMA_1B_SHAPES)) cases.push([shape, dtype, false]);
    }
    const rows: BenchRow[] = [];
    for (const [shape, dtype] of cases) {
      const bytes = linearBytes({ dtype, rows: shape.rows, cols: shape.cols });
      if (bytes > device.limits.maxBufferSize) {
        bench.log(`matvec ${dtype} ${shape.name}: ${bytes} bytes exceed maxBufferSize, skipped`);
        continue;
      }
      bench.log(`matvec ${dtype} ${shape.name} (${shape.rows}x${shape.cols})`);
      const { us, gbs, copyGBs, matvec } = await timeMatvec(bench, dtype, shape, copy);
      rows.push({
        shape: shape.name,
        model: LLAMA_1B_SHAPES.includes(shape) ? '1B' : '',
        dtype,
        adapterQ4: dtype === q4,
        'rows x cols': `${shape.rows}x${shape.cols}`,
        MiB: bytes / (1 << 20),
        us,
        copy_GBs: copyGBs,
        floor_us: (bytes / (copyGBs * 1e9)) * 1e6,
        'GB/s': gbs,
        'of copy': gbs / copyGBs,
        tpr: matvec.threadsPerRow,
        rpt: matvec.rowsPerThread,
        rows_wg: matvec.rowsPerGroup,
        subgroups: matvec.subgroupReduce,
        chunks: matvec.dispatches.length,
      });
    }
    copy.destroy();
    const frac = q4FracCopyMin(rows);
    if (frac !== undefined) bench.summary.matvecQ4FracCopyMin = frac;
    return rows;
  },
};
export default section;
