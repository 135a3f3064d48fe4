// How the matvec kernel splits its work on one adapter, and the per-adapter cache of the best split.
//
// The split is measured, not guessed: `npm run bench -- matvec-tune --write-tuning` sweeps the candidates below on the
// adapter it runs on and records the fastest per dtype in kernels/matvec/matvecTunings.json, keyed by the adapter's
// identity (adapterKey). createMatvec looks the adapter up there (once per device: the answer is cached); an adapter
// that was never tuned gets the defaults below, chosen from the sweeps we have.
import { type AdapterSummary, type GpuContext, isCpuAdapter } from '../gpuContext';
import measured from './matvecTunings.json';

export interface MatvecTuning {
  /** Threads cooperating on one row (power of two). */
  threadsPerRow: number;
  /** Threads per workgroup (power of two, >= threadsPerRow). */
  workgroupSize: number;
  /** Output rows each group of threadsPerRow threads computes, reusing its x loads. */
  rowsPerThread: number;
  /** Columns of x staged in workgroup memory per tile (a multiple of 32). */
  tileCols: number;
  /** 'rows': the CPU-adapter q4 kernel (kernels/matvec/matvecRows.wgsl.ts) where it applies; default 'tiled'. */
  kernel?: 'tiled' | 'rows';
}

export type MatvecTuningDtype = 'f32' | 'f16' | 'q4f16' | 'q4f32';

/** Recorded winners: adapterKey -> dtype -> tuning. */
export type MatvecTuningTable = Record<string, Partial<Record<MatvecTuningDtype, MatvecTuning>>>;

/** The adapter's identity as the tuning cache keys it: vendor, architecture, device and driver description. */
export function adapterKey(a: Pick<AdapterSummary, 'vendor' | 'architecture' | 'device' | 'description'>): string {
  return [a.vendor, a.architecture, a.device, a.description].join(' | ');
}

/** Defaults for an adapter missing from the table.
 * CPU adapters: one row per invocation (a SIMD lane), no reduction and no barrier in the hot loop; several rows per
 * invocation reuse each x vector; for q4 on llvmpipe the 'rows' kernel, whose x comes from a uniform binding as
 * broadcasts.
 * GPUs: a warp-sized group of threads per row for q4 (about two units of 32 columns each per thread on 2048-wide
 * rows), 4 rows per group (each x load reused 4 times); f32/f16 about 16 loads per thread along a row. */
export function defaultMatvecTuning(a: AdapterSummary, dtype: MatvecTuningDtype): MatvecTuning {
  if (isCpuAdapter(a)) {
    // The rows kernel is measured faster on llvmpipe (about 2x, docs/BENCH.md); on SwiftShader it was not.
    const llvmpipe = /llvmpipe|lavapipe/i.test(`${a.vendor} ${a.architecture} ${a.device} ${a.description}`);
    if (llvmpipe && (dtype === 'q4f16' || dtype === 'q4f32')) {
      return { kernel: 'rows', threadsPerRow: 1, workgroupSize: 16, rowsPerThread: 8, tileCols: 2048 };
    }
    return { threadsPerRow: 1, workgroupSize: 64, rowsPerThread: 4, tileCols: 2048 };
  }
  if (dtype === 'q4f16' || dtype === 'q4f32') {
    return { threadsPerRow: 32, workgroupSize: 256, rowsPerThread: 4, tileCols: 2048 };
  }
  return { threadsPerRow: 32, workgroupSize: 256, rowsPerThread: 1, tileCols: 2048 };
}

const table = measured as MatvecTuningTable;
const cache = new WeakMap<GPUDevice, Map<MatvecTuningDtype, MatvecTuning>>();

/** The tuning for this adapter and dtype: recorded by the bench when it has run here, else the defaults. */
export function matvecTuning(ctx: GpuContext, dtype: MatvecTuningDtype): MatvecTuning {
  let perDevice = cache.get(ctx.device);
  if (!perDevice) {
    perDevice = new Map();
    cache.set(ctx.device, perDevice);
  }
  let tuning = perDevice.get(dtype);
  if (!tuning) {
    tuning = table[adapterKey(ctx.adapterInfo)]?.[dtype] ?? defaultMatvecTuning(ctx.adapterInfo, dtype);
    perDevice.set(dtype, tuning);
  }
  return tuning;
}

/** Replaces the cached tuning for this device (the bench installs a sweep's winner before timing the model shapes). */
export function setMatvecTuning(ctx: GpuContext, dtype: MatvecTuningDtype, tuning: MatvecTuning): void {
  let perDevice = cache.get(ctx.device);
  if (!perDevice) {
    perDevice = new Map();
    cache.set(ctx.device, perDevice);
  }
  perDevice.set(dtype, tuning);
}

/** Subgroup size every subgroup of this device has at least (0 without the subgroups feature). */
export function minSubgroupSize(ctx: GpuContext): number {
  if (!ctx.subgroups) return 0;
  const info = (ctx.device as { adapterInfo?: { subgroupMinSize?: number } }).adapterInfo;
  return info?.subgroupMinSize ?? 0;
}
