// GPU timing for the bench: the median of several samples, each sample one compute pass that repeats the work
// enough times to be well above timer resolution. Timestamp queries when the device has them (GPU time only),
// else wall clock around submit + onSubmittedWorkDone.
import type { GpuContext } from '../../kernels/gpuContext';

export type TimingMethod = 'timestamp' | 'wallclock';

export interface Timing {
  /** Median time of ONE repetition of the work, in milliseconds. */
  medianMs: number;
  /** Per-repetition times of every sample. */
  samplesMs: number[];
  /** Repetitions per sample. */
  repeat: number;
  method: TimingMethod;
}

export interface TimingOptions {
  /** Samples to take the median of (default 5). */
  samples?: number;
  /** Aim for this much work per sample, in ms (default 20): sets the repetition count. */
  targetMs?: number;
  /** Upper bound on repetitions per sample (default 1000). */
  maxRepeat?: number;
}

const QUERY_RESOLVE = 0x200;
const MAP_READ = 0x1;
const COPY_DST = 0x8;
const COPY_SRC = 0x4;

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Encodes `encode` `repeat` times in one pass, submits, and returns the pass time in ms. */
async function timeOnce(
  ctx: GpuContext,
  encode: (pass: GPUComputePassEncoder) => void,
  repeat: number,
  ts: { querySet: GPUQuerySet; resolve: GPUBuffer; read: GPUBuffer } | undefined,
): Promise<number> {
  const { device } = ctx;
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass(
    ts ? { timestampWrites: { querySet: ts.querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } } : {},
  );
  for (let i = 0; i < repeat; i++) encode(pass);
  pass.end();
  if (ts) {
    enc.resolveQuerySet(ts.querySet, 0, 2, ts.resolve, 0);
    enc.copyBufferToBuffer(ts.resolve, 0, ts.read, 0, 16);
  }
  const start = performance.now();
  device.queue.submit([enc.finish()]);
  await device.queue.onSubmittedWorkDone();
  const wallMs = performance.now() - start;
  if (!ts) return wallMs;
  await ts.read.mapAsync(MAP_READ);
  const [t0, t1] = new BigUint64Array(ts.read.getMappedRange().slice(0));
  ts.read.unmap();
  const gpuMs = Number(t1 - t0) / 1e6;
  // Some drivers report zeros; fall back to the wall clock for such a sample.
  return gpuMs > 0 ? gpuMs : wallMs;
}

/** Times `encode` (which must be safe to repeat within one pass). */
export async function timeGpu(
  ctx: GpuContext,
  encode: (pass: GPUComputePassEncoder) => void,
  opts: TimingOptions = {},
): Promise<Timing> {
  const { device } = ctx;
  const samples = opts.samples ?? 5;
  const targetMs = opts.targetMs ?? 20;
  const useTimestamps = device.features.has('timestamp-query');
  const ts = useTimestamps
    ? {
        querySet: device.createQuerySet({ type: 'timestamp', count: 2 }),
        resolve: device.createBuffer({ size: 16, usage: QUERY_RESOLVE | COPY_SRC }),
        read: device.createBuffer({ size: 16, usage: MAP_READ | COPY_DST }),
      }
    : undefined;
  try {
    // Warm-up (pipeline creation, first-touch of memory), then calibrate the repetition count.
    await timeOnce(ctx, encode, 1, ts);
    const once = await timeOnce(ctx, encode, 1, ts);
    const repeat = Math.max(1, Math.min(opts.maxRepeat ?? 1000, Math.ceil(targetMs / Math.max(once, 1e-3))));
    const samplesMs: number[] = [];
    for (let i = 0; i < samples; i++) samplesMs.push((await timeOnce(ctx, encode, repeat, ts)) / repeat);
    return { medianMs: median(samplesMs), samplesMs, repeat, method: useTimestamps ? 'timestamp' : 'wallclock' };
  } finally {
    ts?.querySet.destroy();
    ts?.resolve.destroy();
    ts?.read.destroy();
  }
}
