// Tuning sweep for the matvec kernel, only when named: `npm run bench -- matvec-tune`. For the q4 format the adapter
// runs (and f16/f32 with --large) it times every candidate split on the Llama-3.2-1B decode shapes, picks the one
// whose slowest shape (as a fraction of copy bandwidth) is fastest, and records it for this adapter in
// kernels/matvec/matvecTunings.json (the per-adapter cache createMatvec reads; commit the file to ship it).
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  adapterKey,
  type MatvecTuning,
  type MatvecTuningDtype,
  type MatvecTuningTable,
  setMatvecTuning,
} from '../../../kernels/matvec/matvecTuning';
import type { BenchRow, BenchSection } from '../sections';
import { adapterQ4, benchCopy, LLAMA_1B_SHAPES, timeMatvec } from './matvec';

const TUNINGS_FILE = join(dirname(fileURLToPath(import.meta.url)), '../../../kernels/matvec/matvecTunings.json');

/** Candidate splits: one row per invocation (CPU adapters: SIMD lanes) and groups of threads per row (GPUs); on CPU
 * adapters also the q4 'rows' kernel (x through a uniform binding, no workgroup memory). */
function candidates(cpu: boolean, q4: boolean): MatvecTuning[] {
  const out: MatvecTuning[] = [];
  if (cpu) {
    if (q4) {
      for (const workgroupSize of [8, 16, 64]) {
        for (const rowsPerThread of [4, 8, 16])
          out.push({ kernel: 'rows', threadsPerRow: 1, workgroupSize, rowsPerThread, tileCols: 2048 });
      }
    }
    for (const workgroupSize of [32, 64, 128]) {
      for (const rowsPerThread of [1, 2, 4, 8])
        out.push({ threadsPerRow: 1, workgroupSize, rowsPerThread, tileCols: 2048 });
    }
    out.push({ threadsPerRow: 1, workgroupSize: 64, rowsPerThread: 4, tileCols: 1024 });
    for (const rowsPerThread of [2, 4, 8])
      out.push({ threadsPerRow: 8, workgroupSize: 64, rowsPerThread, tileCols: 2048 });
    return out;
  }
  for (const threadsPerRow of [8, 16, 32, 64]) {
    for (const rowsPerThread of [1, 2, 4])
      out.push({ threadsPerRow, workgroupSize: 256, rowsPerThread, tileCols: 2048 });
  }
  out.push({ threadsPerRow: 32, workgroupSize: 128, rowsPerThread: 4, tileCols: 2048 });
  out.push({ threadsPerRow: 32, workgroupSize: 256, rowsPerThread: 4, tileCols: 1024 });
  return out;
}

const section: BenchSection = {
  name: 'matvec-tune',
  description: 'matvec work split sweep on the 1B shapes; records the winner per adapter (matvecTunings.json)',
  order: 11,
  explicitOnly: true,
  async run(bench): Promise<BenchRow[]> {
    const copy = benchCopy(bench);
    const dtypes: MatvecTuningDtype[] = [adapterQ4(bench)];
    if (bench.large) dtypes.push('f16', 'f32');
    const rows: BenchRow[] = [];
    const winners: Partial<Record<MatvecTuningDtype, MatvecTuning>> = {};
    for (const dtype of dtypes) {
      let best: { tuning: MatvecTuning; worst: number } | undefined;
      for (const tuning of candidates(bench.cpuAdapter, dtype.startsWith('q4'))) {
        const name = `${tuning.kernel ?? 'tiled'} tpr ${tuning.threadsPerRow} wg ${tuning.workgroupSize} rpt ${tuning.rowsPerThread} tile ${tuning.tileCols}`;
        let worst = Infinity;
        for (const shape of LLAMA_1B_SHAPES) {
          bench.log(`matvec-tune ${dtype} ${shape.name} ${name}`);
          const { us, gbs, copyGBs } = await timeMatvec(bench, dtype, shape, copy, tuning);
          worst = Math.min(worst, gbs / copyGBs);
          rows.push({
            dtype,
            shape: shape.name,
            ...tuning,
            us,
            copy_GBs: copyGBs,
            'GB/s': gbs,
            'of copy': gbs / copyGBs,
          });
        }
        if (!best || worst > best.worst) best = { tuning, worst };
      }
      if (best) {
        winners[dtype] = best.tuning;
        setMatvecTuning(bench.gpu, dtype, best.tuning);
        bench.log(
          `matvec-tune ${dtype}: best ${JSON.stringify(best.tuning)} (slowest shape ${best.worst.toFixed(3)} of copy)`,
        );
      }
    }
    copy.destroy();
    const table = JSON.parse(readFileSync(TUNINGS_FILE, 'utf8')) as MatvecTuningTable;
    const key = adapterKey(bench.gpu.adapterInfo);
    table[key] = { ...table[key], ...winners };
    writeFileSync(TUNINGS_FILE, `${JSON.stringify(table, null, 2)}\n`);
    bench.log(`matvec-tune: recorded for "${key}" in ${TUNINGS_FILE}`);
    return rows;
  },
};
export default section;
