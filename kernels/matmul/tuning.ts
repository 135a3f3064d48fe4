// Which prefill matmul variant and tile an adapter runs, and how many tokens a prefill chunk holds: chosen by the
// bench (`npm run bench -- prefill` sweeps the candidates on the adapter it runs on and records the winners in
// kernels/matmul/matmulTunings.json, keyed by adapterKey), with built-in defaults for an adapter never tuned.
import { type AdapterSummary, fixedSubgroupSize, type GpuContext, isCpuAdapter } from '../gpuContext';
import type { GpuLinear } from '../types';
import { matmulRowsKStep } from './matmulRows.wgsl';
import measured from './matmulTunings.json';

export type MatmulTuning =
  /** Workgroup-memory tiles of 64 tokens × 64 rows, 4×4 per thread (every dtype, every adapter). */
  | { variant: 'tiled' }
  /** Register block per lane, activations shared by subgroup broadcast (q4 weights, fixed subgroup size); with
   * xTexture the activations are read from a texture they are staged into (matmulRows.wgsl.ts says why). */
  | {
      variant: 'rows';
      tokensPerLane: number;
      rowsPerLane: number;
      workgroupSize: number;
      f16: boolean;
      xTexture?: boolean;
    };

/** What the bench records per adapter. */
export interface PrefillTuning {
  matmul: MatmulTuning;
  /** Tokens per prefill chunk: the smallest count at which the matmul reached 90% of its best rate. */
  chunkTokens: number;
}

export type PrefillTuningTable = Record<string, PrefillTuning>;

/** The adapter's identity as the tuning tables key it: vendor, architecture, device and driver description. */
export function adapterKey(a: Pick<AdapterSummary, 'vendor' | 'architecture' | 'device' | 'description'>): string {
  return [a.vendor, a.architecture, a.device, a.description].join(' | ');
}

const table = measured as PrefillTuningTable;
const overrides = new WeakMap<GPUDevice, Partial<PrefillTuning>>();

/** Replaces this device's tuning for the rest of the process (the bench installs its sweep's winners). */
export function setPrefillTuning(ctx: GpuContext, tuning: Partial<PrefillTuning>): void {
  overrides.set(ctx.device, { ...overrides.get(ctx.device), ...tuning });
}

function recorded(ctx: GpuContext): Partial<PrefillTuning> {
  return { ...table[adapterKey(ctx.adapterInfo)], ...overrides.get(ctx.device) };
}

export const DEFAULT_PREFILL_CHUNK = 256;

/** Tokens per prefill chunk on this adapter (recorded by the bench, else DEFAULT_PREFILL_CHUNK). */
export function prefillChunkTokens(ctx: GpuContext): number {
  return recorded(ctx).chunkTokens ?? DEFAULT_PREFILL_CHUNK;
}

/** Why `tuning` cannot run this weight on this device, or undefined when it can. */
export function matmulTuningProblem(ctx: GpuContext, w: GpuLinear, tuning: MatmulTuning): string | undefined {
  if (tuning.variant === 'tiled') return undefined;
  if (w.dtype !== 'q4f16' && w.dtype !== 'q4f32') return `the rows variant needs q4 weights, not ${w.dtype}`;
  const sg = fixedSubgroupSize(ctx);
  if (sg === undefined) return 'the rows variant needs subgroups of one fixed size';
  if (w.cols % matmulRowsKStep(sg) !== 0) return `cols ${w.cols} is not a multiple of ${matmulRowsKStep(sg)}`;
  if (tuning.workgroupSize % sg !== 0) return `workgroup size ${tuning.workgroupSize} is not a multiple of ${sg}`;
  if (tuning.f16 && !ctx.f16) return 'f16 arithmetic needs shader-f16';
  const maxTexture = ctx.device.limits.maxTextureDimension2D;
  if (tuning.xTexture && w.cols / 4 > maxTexture) {
    return `cols ${w.cols} / 4 exceed the ${maxTexture}-texel texture width`;
  }
  return undefined;
}

/** Built-in defaults, from `npm run bench -- prefill` sweeps (docs/BENCH.md): on CPU adapters with fixed subgroups
 * the rows variant (f32 arithmetic: lavapipe and SwiftShader emulate f16 math); elsewhere the tiled one. */
export function defaultMatmulTuning(ctx: GpuContext): MatmulTuning {
  if (isCpuAdapter(ctx.adapterInfo) && fixedSubgroupSize(ctx) !== undefined) {
    return { variant: 'rows', tokensPerLane: 4, rowsPerLane: 2, workgroupSize: 32, f16: false };
  }
  return { variant: 'tiled' };
}

/** The tuning a weight runs with: the cached one for this adapter, else the default; tiled when neither fits. */
export function matmulTuningFor(ctx: GpuContext, w: GpuLinear): MatmulTuning {
  for (const t of [recorded(ctx).matmul, defaultMatmulTuning(ctx)]) {
    if (t && matmulTuningProblem(ctx, w, t) === undefined) return t;
  }
  return { variant: 'tiled' };
}

/** Candidates the bench sweeps on this device. */
export function matmulTuningCandidates(ctx: GpuContext): MatmulTuning[] {
  const out: MatmulTuning[] = [{ variant: 'tiled' }];
  const sg = fixedSubgroupSize(ctx);
  if (sg === undefined) return out;
  const blocks: [number, number][] = [
    [4, 2],
    [8, 1],
    [8, 2],
    [4, 4],
  ];
  const workgroupSize = Math.max(sg, 32);
  for (const [tokensPerLane, rowsPerLane] of blocks) {
    for (const f16 of ctx.f16 ? [false, true] : [false]) {
      out.push({ variant: 'rows', tokensPerLane, rowsPerLane, workgroupSize, f16 });
    }
  }
  // x through a texture: the f32 blocks that can use the registers it frees (f16 math is emulated on CPU adapters).
  for (const [tokensPerLane, rowsPerLane] of blocks.filter(([t, r]) => t * r >= 8)) {
    out.push({ variant: 'rows', tokensPerLane, rowsPerLane, workgroupSize, f16: false, xTexture: true });
  }
  return out;
}

export function describeMatmulTuning(t: MatmulTuning): string {
  return t.variant === 'tiled'
    ? 'tiled 64x64'
    : `rows ${t.tokensPerLane}tok x ${t.rowsPerLane}row wg${t.workgroupSize}${t.f16 ? ' f16' : ''}${
        t.xTexture ? ' x-texture' : ''
      }`;
}
