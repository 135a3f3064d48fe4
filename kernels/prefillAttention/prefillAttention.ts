// Host wrapper for causal prefill attention (see prefillAttention.wgsl.ts for the algorithm).
import { fixedSubgroupSize, type GpuContext, isCpuAdapter } from '../gpuContext';
import { bindGroup, computePipeline, dispatch2d, uniformBuffer, writeBuffer } from '../gpuUtil';
import { adapterKey } from '../matmul/tuning';
import type { KvCacheLayout } from '../types';
import {
  type PrefillAttentionTiling,
  prefillAttentionSharedBytes,
  prefillAttentionWgsl,
} from './prefillAttention.wgsl';
import { prefillAttentionRowsWgsl, prefillRowsSupports } from './prefillAttentionRows.wgsl';
import measured from './prefillAttentionTunings.json';

export interface PrefillAttentionConfig {
  /** f32 [maxTokens][numHeads][headDim], RoPE already applied. */
  q: GPUBuffer;
  /** f32 [maxTokens][numHeads][headDim]. */
  out: GPUBuffer;
  /** One layer's cache, [kvHeads][capacity][headDim] in layout.dtype; positions < startPos + tokens are written. */
  k: GPUBuffer;
  v: GPUBuffer;
  layout: KvCacheLayout;
  numHeads: number;
  /** Largest chunk this instance will be encoded with. */
  maxTokens: number;
  /** Tiles; default: the bench's choice for this adapter (setPrefillTiling), else the largest that fits. */
  tiling?: PrefillAttentionTiling;
}

export interface PrefillAttentionArgs {
  /** Query positions in this chunk: startPos .. startPos + tokens - 1. */
  tokens: number;
  startPos: number;
}

export interface PrefillAttention {
  /** Records the dispatch; writes this instance's uniform (so encode it once per submitted command buffer). */
  encode(pass: GPUComputePassEncoder, args: PrefillAttentionArgs): void;
  readonly tiling: PrefillAttentionTiling;
}

export const MAX_PREFILL_HEAD_DIM = 256;

const TILING_CANDIDATES: PrefillAttentionTiling[] = [
  { rows: 32, keys: 32, workgroupSize: 128 },
  { rows: 32, keys: 16, workgroupSize: 128 },
  { rows: 16, keys: 32, workgroupSize: 64 },
  { rows: 16, keys: 16, workgroupSize: 64 },
  { rows: 16, keys: 8, workgroupSize: 64 },
  { rows: 8, keys: 8, workgroupSize: 64 },
];

/** Why `t` cannot run on this device with this head size, or undefined when it can. */
function tilingProblem(ctx: GpuContext, headDim: number, t: PrefillAttentionTiling): string | undefined {
  if (t.variant === 'rows') {
    const sg = fixedSubgroupSize(ctx);
    if (sg === undefined) return 'the rows variant needs subgroups of one fixed size';
    if (!prefillRowsSupports(headDim, sg)) return `the rows variant needs headDim a multiple of ${4 * sg}`;
    if (t.rows !== t.workgroupSize || t.workgroupSize % sg !== 0) return 'rows variant: rows = workgroup size';
    return undefined;
  }
  const storage = ctx.device.limits.maxComputeWorkgroupStorageSize;
  if (prefillAttentionSharedBytes(headDim, t) > storage) return `needs more than ${storage} bytes of workgroup memory`;
  return undefined;
}

const ROWS_CANDIDATES: PrefillAttentionTiling[] = [
  { variant: 'rows', rows: 32, keys: 4, workgroupSize: 32 },
  { variant: 'rows', rows: 64, keys: 4, workgroupSize: 64 },
  { variant: 'rows', rows: 32, keys: 8, workgroupSize: 32 },
];

/** Tilings that can run on this device for this head size (the bench sweeps them). */
export function prefillTilingCandidates(ctx: GpuContext, headDim: number): PrefillAttentionTiling[] {
  return [...ROWS_CANDIDATES, ...TILING_CANDIDATES].filter((t) => tilingProblem(ctx, headDim, t) === undefined);
}

/** Recorded winners of `npm run bench -- prefill`: adapterKey (kernels/matmul/tuning.ts) -> headDim -> tiling. */
export type PrefillTilingTable = Record<string, Record<string, PrefillAttentionTiling>>;
const table = measured as PrefillTilingTable;
const overrides = new WeakMap<GPUDevice, Map<number, PrefillAttentionTiling>>();

/** Replaces this device's tiling for one head size for the rest of the process (the bench installs its winner). */
export function setPrefillTiling(ctx: GpuContext, headDim: number, tiling: PrefillAttentionTiling): void {
  const perDevice = overrides.get(ctx.device) ?? new Map();
  perDevice.set(headDim, tiling);
  overrides.set(ctx.device, perDevice);
}

function recordedTiling(ctx: GpuContext, headDim: number): PrefillAttentionTiling | undefined {
  return overrides.get(ctx.device)?.get(headDim) ?? table[adapterKey(ctx.adapterInfo)]?.[String(headDim)];
}

/** Default without a bench record: on CPU adapters with fixed subgroups the rows variant (a workgroup-memory load
 * per FMA is what makes the tiled kernel slow there), else the largest tiles that fit the device's workgroup memory
 * (bigger tiles reload K/V fewer times). */
export function choosePrefillTiling(ctx: GpuContext, headDim: number): PrefillAttentionTiling {
  const fits = prefillTilingCandidates(ctx, headDim);
  const cpu = isCpuAdapter(ctx.adapterInfo);
  const preferred = fits.find((t) => (t.variant === 'rows') === cpu) ?? fits[0];
  if (preferred) return preferred;
  const storage = ctx.device.limits.maxComputeWorkgroupStorageSize;
  throw new Error(
    `prefillAttention: headDim ${headDim} needs more than the device's ${storage} bytes of workgroup memory`,
  );
}

export function createPrefillAttention(ctx: GpuContext, cfg: PrefillAttentionConfig): PrefillAttention {
  const { layout, numHeads, maxTokens } = cfg;
  const { headDim, kvHeads, capacity, dtype } = layout;
  const name = 'prefillAttention';
  for (const [key, value] of Object.entries({ headDim, kvHeads, capacity, numHeads, maxTokens })) {
    if (!Number.isInteger(value) || value < 1)
      throw new Error(`${name}: ${key} must be a positive integer, got ${value}`);
  }
  if (headDim > MAX_PREFILL_HEAD_DIM) throw new Error(`${name}: headDim ${headDim} > ${MAX_PREFILL_HEAD_DIM}`);
  if (numHeads % kvHeads !== 0) {
    throw new Error(`${name}: numHeads ${numHeads} is not a multiple of kvHeads ${kvHeads} (GQA needs whole groups)`);
  }
  if (dtype === 'f16' && !ctx.f16) throw new Error(`${name}: f16 KV cache on a device without shader-f16`);
  const actBytes = maxTokens * numHeads * headDim * 4;
  const cacheBytes = kvHeads * capacity * headDim * (dtype === 'f16' ? 2 : 4);
  const need: [string, GPUBuffer, number][] = [
    ['q', cfg.q, actBytes],
    ['out', cfg.out, actBytes],
    ['k', cfg.k, cacheBytes],
    ['v', cfg.v, cacheBytes],
  ];
  for (const [key, buffer, bytes] of need) {
    if (buffer.size < bytes) throw new Error(`${name}: buffer ${key} has ${buffer.size} bytes, needs ${bytes}`);
  }

  const recorded = recordedTiling(ctx, headDim);
  const tiling =
    cfg.tiling ??
    (recorded && !tilingProblem(ctx, headDim, recorded) ? recorded : undefined) ??
    choosePrefillTiling(ctx, headDim);
  const problem = tilingProblem(ctx, headDim, tiling);
  if (problem) throw new Error(`${name}: tiling ${JSON.stringify(tiling)}: ${problem}`);
  const code =
    tiling.variant === 'rows'
      ? prefillAttentionRowsWgsl({
          kvDtype: dtype,
          headDim,
          subgroupSize: fixedSubgroupSize(ctx) as number,
          workgroupSize: tiling.workgroupSize,
          keys: tiling.keys,
        })
      : prefillAttentionWgsl({ kvDtype: dtype, headDim, tiling });
  const pipeline = computePipeline(ctx, code, name);
  const params = uniformBuffer(ctx, new Uint32Array(12), `${name} params`);
  const group = bindGroup(ctx, pipeline, [params, cfg.q, cfg.k, cfg.v, cfg.out], name);
  const groupSize = numHeads / kvHeads;
  // Word 7: the rows kernel's laneBase, always 0 (subgroupRead.ts); the tiled kernel's loop bounds.
  const loopBounds =
    tiling.variant === 'rows' ? [0] : [headDim, tiling.keys, Math.ceil((tiling.rows * headDim) / tiling.workgroupSize)];

  return {
    tiling,
    encode(pass, { tokens, startPos }) {
      if (!Number.isInteger(tokens) || tokens < 1 || tokens > maxTokens) {
        throw new Error(`${name}: tokens must be an integer in 1..${maxTokens}, got ${tokens}`);
      }
      if (!Number.isInteger(startPos) || startPos < 0 || startPos + tokens > capacity) {
        throw new Error(
          `${name}: startPos ${startPos} + tokens ${tokens} must lie within the cache capacity ${capacity}`,
        );
      }
      const blocksPerHead = Math.ceil((tokens * groupSize) / tiling.rows);
      writeBuffer(
        ctx,
        params,
        new Uint32Array([tokens, startPos, blocksPerHead, numHeads, kvHeads, groupSize, capacity, ...loopBounds, 0]),
      );
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      const [x, y] = dispatch2d(blocksPerHead * kvHeads, ctx.device.limits.maxComputeWorkgroupsPerDimension);
      pass.dispatchWorkgroups(x, y);
    },
  };
}
