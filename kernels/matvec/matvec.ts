// Host wrapper for the matvec kernel: y[outputOffset + r] = sum_c W[r][c] * x[inputOffset + c] for r < rows, with the
// optional fusions of matvec.wgsl.ts (RMSNorm or split-attention combine prologue, SiLU·mul gate_up epilogue,
// residual-add epilogue).
// Pipeline, uniforms and bind groups are built once; encode() only records dispatches. Weights larger than one
// storage binding (e.g. a 128K-vocab lm_head on a 128 MiB-binding adapter) are bound and dispatched in row chunks.

import type { GpuVector } from '../elementwise/gpuVector';
import { fixedSubgroupSize, type GpuContext } from '../gpuContext';
import { computePipeline, dispatch2d, UNIFORM, uniformBuffer } from '../gpuUtil';
import type { GpuLinear } from '../types';
import { matvecUnitCols, matvecWgsl, matvecWorkgroupBytes } from './matvec.wgsl';
import { matvecRowsWgsl } from './matvecRows.wgsl';
import { matvecScalarWgsl } from './matvecScalar.wgsl';
import { matvecTuning, minSubgroupSize } from './matvecTuning';

export interface MatvecOptions {
  /** [rows][cols]; with siluMul [2 * rows][cols]: the gate rows, then the up rows. */
  weight: GpuLinear;
  /** f32 activations; x is read from element `inputOffset` (default 0). */
  input: GPUBuffer;
  /** f32; y is written at elements [outputOffset, outputOffset + rows). */
  output: GPUBuffer;
  inputOffset?: number;
  outputOffset?: number;
  /** Prologue: y = W rmsnorm(x) with this [cols] gamma and eps (x itself is left as it is). */
  rmsNorm?: { weight: GpuVector; eps: number };
  /** Epilogue for a gate_up weight: y[r] = silu(gate_r . x) * (up_r . x) for r < weight.rows / 2. */
  siluMul?: boolean;
  /** Epilogue: y[r] += result (the residual add), instead of y[r] = result. */
  accumulate?: boolean;
  /** Prologue: x is the combine of split-K decode attention partials (the o projection of a decode step): `input`
   * holds the accumulators f32 [heads][maxSplits][headDim] (cols = heads * headDim), `maxSum` the (max logit,
   * sum of exp) pairs f32 [heads][maxSplits][2], and word 1 (u32) of the uniform `splitCount` the number of splits. */
  splitCombine?: SplitCombine;
  /** Tuning (default: matvecTuning for this adapter): threads cooperating on one row (power of two, 1..256). */
  threadsPerRow?: number;
  /** Tuning: threads per workgroup (power of two, >= threadsPerRow, <= 256). */
  workgroupSize?: number;
  /** Tuning: output rows each group of threadsPerRow threads computes together, reusing its x loads (1..8). */
  rowsPerThread?: number;
  /** Tuning: columns of x staged in workgroup memory per tile (multiple of 32). */
  tileCols?: number;
  /** Tuning: 'rows' = the CPU-adapter q4 kernel (matvecRows.wgsl.ts: one row per invocation, x through a uniform
   * binding), used where it applies (see rowsKernelApplies); 'tiled' = matvec.wgsl.ts. */
  kernel?: 'tiled' | 'rows';
  /** Reduce with subgroup shuffles when the adapter allows it (default true); false forces the workgroup-memory tree. */
  subgroups?: boolean;
  /** Rows kernel: each lane loads a share of x (and gamma) and the subgroup shares it by broadcast (default true where
   * the adapter has a fixed subgroup size; matvecRows.wgsl.ts says why); false reads all of x in every lane. */
  xBroadcast?: boolean;
  /** Largest weight binding in bytes (default and cap: the device's maxStorageBufferBindingSize). Tests lower it to
   * exercise row chunks. */
  maxBindingSize?: number;
}

export interface SplitCombine {
  maxSum: GPUBuffer;
  splitCount: GPUBufferBinding;
  heads: number;
  headDim: number;
  maxSplits: number;
}

export interface MatvecDispatch {
  firstRow: number;
  rowCount: number;
  workgroups: [number, number];
}

export interface Matvec {
  encode(pass: GPUComputePassEncoder): void;
  /** What encode() dispatches: one entry per row chunk. */
  readonly dispatches: readonly MatvecDispatch[];
  readonly threadsPerRow: number;
  readonly rowsPerThread: number;
  /** Rows one workgroup computes. */
  readonly rowsPerGroup: number;
  /** The row partials were combined with subgroup shuffles. */
  readonly subgroupReduce: boolean;
  /** Which kernel runs. */
  readonly kernel: 'tiled' | 'rows';
  destroy(): void;
}

export class MatvecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MatvecError';
  }
}

const isPow2 = (n: number) => Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;

/** Bytes per row of the weight and of the scales (0 when there are none), and the element size of each binding's
 * array (what the kernel's shifts count). */
function rowLayout(
  w: GpuLinear,
  vectorized: boolean,
): { weight: number; scales: number; wElem: number; sElem: number } {
  switch (w.dtype) {
    case 'f32':
      return { weight: w.cols * 4, scales: 0, wElem: vectorized ? 16 : 4, sElem: 4 };
    case 'f16':
      return { weight: w.cols * 2, scales: 0, wElem: vectorized ? 16 : 2, sElem: 4 };
    case 'q4f16':
      return { weight: w.cols / 2, scales: (w.cols / 32) * 2, wElem: 16, sElem: 2 };
    case 'q4f32':
      return { weight: w.cols / 2, scales: (w.cols / 32) * 4, wElem: 16, sElem: 4 };
  }
}

function check(o: MatvecOptions, inputOffset: number, outputOffset: number, outRows: number): void {
  const w = o.weight;
  const { rows, cols, dtype } = w;
  const name = `matvec(${dtype} ${rows}x${cols})`;
  if (!['f32', 'f16', 'q4f16', 'q4f32'].includes(dtype)) throw new MatvecError(`matvec: unknown weight dtype ${dtype}`);
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows <= 0 || cols <= 0) {
    throw new MatvecError(`${name}: rows and cols must be positive integers`);
  }
  if (!Number.isInteger(inputOffset) || inputOffset < 0 || !Number.isInteger(outputOffset) || outputOffset < 0) {
    throw new MatvecError(`${name}: inputOffset/outputOffset must be non-negative integers (elements)`);
  }
  if (dtype === 'q4f16' || dtype === 'q4f32') {
    if (cols % 32 !== 0) {
      throw new MatvecError(`${name}: q4 weights need cols to be a multiple of 32 (the quantization group)`);
    }
    if (!w.scales) throw new MatvecError(`${name}: q4 weights need a scales buffer`);
  }
  if (o.siluMul && rows % 2 !== 0) {
    throw new MatvecError(`${name}: siluMul needs a gate_up weight with an even row count (gate rows, then up rows)`);
  }
  if (o.rmsNorm) {
    if (o.rmsNorm.weight.length !== cols) {
      throw new MatvecError(`${name}: rmsNorm weight has ${o.rmsNorm.weight.length} values, expected ${cols}`);
    }
    if (!(o.rmsNorm.eps > 0) || !Number.isFinite(o.rmsNorm.eps)) {
      throw new MatvecError(`${name}: rmsNorm eps must be a positive number, got ${o.rmsNorm.eps}`);
    }
  }
  const sc = o.splitCombine;
  if (sc) {
    if (o.rmsNorm) throw new MatvecError(`${name}: splitCombine and rmsNorm are exclusive prologues`);
    if (inputOffset !== 0) throw new MatvecError(`${name}: splitCombine reads the partials from element 0`);
    for (const [k, v] of Object.entries({ heads: sc.heads, headDim: sc.headDim, maxSplits: sc.maxSplits })) {
      if (!Number.isInteger(v) || v < 1) throw new MatvecError(`${name}: splitCombine ${k} must be a positive integer`);
    }
    if (sc.heads * sc.headDim !== cols) {
      throw new MatvecError(`${name}: splitCombine of ${sc.heads} heads x ${sc.headDim} dims != ${cols} columns`);
    }
    if (o.input.size < sc.heads * sc.maxSplits * sc.headDim * 4 || sc.maxSum.size < sc.heads * sc.maxSplits * 8) {
      throw new MatvecError(`${name}: splitCombine partial buffers are smaller than [${sc.heads}][${sc.maxSplits}]`);
    }
  }
  // f16 and q4f16 need no shader-f16 here: the kernel decodes halves with unpack2x16float.
  const bytes = rowLayout(w, true);
  if (w.weight.size < rows * bytes.weight) {
    throw new MatvecError(`${name}: weight buffer has ${w.weight.size} bytes, needs ${rows * bytes.weight}`);
  }
  if (w.scales && bytes.scales && w.scales.size < rows * bytes.scales) {
    throw new MatvecError(`${name}: scales buffer has ${w.scales.size} bytes, needs ${rows * bytes.scales}`);
  }
  if (o.input.size < (inputOffset + cols) * 4) {
    throw new MatvecError(`${name}: input buffer has ${o.input.size} bytes, needs ${(inputOffset + cols) * 4}`);
  }
  if (o.output.size < (outputOffset + outRows) * 4) {
    throw new MatvecError(`${name}: output buffer has ${o.output.size} bytes, needs ${(outputOffset + outRows) * 4}`);
  }
}

/** Whether the fused variants (rmsNorm, siluMul, accumulate) run on a weight of this dtype and column count. */
export function matvecFusable(dtype: GpuLinear['dtype'], cols: number): boolean {
  return dtype === 'q4f16' || dtype === 'q4f32' || cols % matvecUnitCols(dtype) === 0;
}

/** Whether the CPU-adapter kernel (matvecRows.wgsl.ts) can run this matvec: q4 weights, x (and gamma) bindable as
 * uniforms (the buffers allow it, x's offset is aligned for a uniform binding, cols * 4 bytes fit one). With
 * splitCombine x is the attention's partials in storage: each lane combines its share of a unit and broadcasts it,
 * so the adapter needs a fixed subgroup size that divides the workgroup, and a unit must lie in one head. */
export function rowsKernelApplies(ctx: GpuContext, o: MatvecOptions): boolean {
  const { dtype, cols } = o.weight;
  if (dtype !== 'q4f16' && dtype !== 'q4f32') return false;
  const limits = ctx.device.limits;
  const uniformOk = (b: GPUBuffer) => (b.usage & UNIFORM) !== 0;
  if (o.splitCombine) {
    const workgroupSize = o.workgroupSize ?? matvecTuning(ctx, dtype).workgroupSize;
    return (
      (o.xBroadcast ?? true) &&
      broadcastSubgroupSize(ctx, workgroupSize) !== undefined &&
      o.splitCombine.headDim % 32 === 0
    );
  }
  return (
    cols * 4 <= limits.maxUniformBufferBindingSize &&
    ((o.inputOffset ?? 0) * 4) % limits.minUniformBufferOffsetAlignment === 0 &&
    uniformOk(o.input) &&
    (!o.rmsNorm || uniformOk(o.rmsNorm.weight.buffer))
  );
}

/** The subgroup size the rows kernel broadcasts x within: the adapter's fixed size, where whole subgroups fill the
 * workgroup (a lane that is not there cannot be broadcast from). */
function broadcastSubgroupSize(ctx: GpuContext, workgroupSize: number): number | undefined {
  const sg = fixedSubgroupSize(ctx);
  return sg !== undefined && workgroupSize % sg === 0 ? sg : undefined;
}

export function createMatvec(ctx: GpuContext, o: MatvecOptions): Matvec {
  const inputOffset = o.inputOffset ?? 0;
  const outputOffset = o.outputOffset ?? 0;
  const w = o.weight;
  const outRows = o.siluMul ? w.rows / 2 : w.rows;
  check(o, inputOffset, outputOffset, outRows);
  const { device } = ctx;
  const q4 = w.dtype === 'q4f16' || w.dtype === 'q4f32';
  const vectorized = matvecFusable(w.dtype, w.cols);
  const fused = o.rmsNorm || o.siluMul || o.accumulate || o.splitCombine;
  if (!vectorized && fused) {
    throw new MatvecError(
      `matvec(${w.dtype} ${w.rows}x${w.cols}): fused variants need cols to be a multiple of ` +
        `${matvecUnitCols(w.dtype)} for ${w.dtype}`,
    );
  }

  const tuning = matvecTuning(ctx, w.dtype);
  // A caller that sets the tiled kernel's own knobs (threads per row, tile, subgroups) asks for the tiled kernel.
  const tiledKnobs = o.threadsPerRow !== undefined || o.tileCols !== undefined || o.subgroups !== undefined;
  const wanted = o.kernel ?? (tiledKnobs ? 'tiled' : (tuning.kernel ?? 'tiled'));
  const kernel = wanted === 'rows' && rowsKernelApplies(ctx, o) ? 'rows' : 'tiled';
  const threadsPerRow = kernel === 'rows' ? 1 : (o.threadsPerRow ?? tuning.threadsPerRow);
  const workgroupSize = Math.max(o.workgroupSize ?? tuning.workgroupSize, threadsPerRow);
  // The tuning counts the weight rows an invocation streams. A SiLU·mul output row streams two (gate and up), so the
  // rows kernel takes half as many output rows: at the tuned 8 its 16 accumulators and weight streams made lavapipe's
  // gate_up 1.6x slower than at 4 (docs/BENCH.md, "Where the decode step's time went").
  const tunedRows = kernel === 'rows' && o.siluMul ? Math.max(1, tuning.rowsPerThread >> 1) : tuning.rowsPerThread;
  const rowsPerThread = vectorized ? (o.rowsPerThread ?? tunedRows) : 1;
  const maxRowsPerThread = kernel === 'rows' ? 16 : 8;
  if (!Number.isInteger(rowsPerThread) || rowsPerThread < 1 || rowsPerThread > maxRowsPerThread) {
    throw new MatvecError(`matvec: rowsPerThread must be an integer in 1..${maxRowsPerThread}, got ${rowsPerThread}`);
  }
  if (!isPow2(threadsPerRow) || threadsPerRow > 256 || !isPow2(workgroupSize) || workgroupSize > 256) {
    throw new MatvecError(`matvec: threadsPerRow (${threadsPerRow}) and workgroupSize must be powers of two <= 256`);
  }
  const unitCols = vectorized ? matvecUnitCols(w.dtype) : 1;
  const units = w.cols / unitCols;
  const tileCols = o.tileCols ?? tuning.tileCols;
  if (!Number.isInteger(tileCols) || tileCols < 32 || tileCols % 32 !== 0) {
    throw new MatvecError(`matvec: tileCols must be a positive multiple of 32, got ${tileCols}`);
  }
  const subgroupReduce =
    vectorized && (o.subgroups ?? true) && threadsPerRow > 1 && minSubgroupSize(ctx) >= threadsPerRow;
  const slots = workgroupSize / threadsPerRow;
  const rowsPerGroup = slots * (vectorized ? rowsPerThread : 1);

  let code: string;
  if (kernel === 'rows') {
    code = matvecRowsWgsl({
      dtype: w.dtype as 'q4f16' | 'q4f32',
      subgroupSize: (o.xBroadcast ?? true) ? broadcastSubgroupSize(ctx, workgroupSize) : undefined,
      cols: w.cols,
      workgroupSize,
      rowsPerThread,
      rmsNorm: o.rmsNorm?.weight.dtype,
      siluMul: o.siluMul ?? false,
      accumulate: o.accumulate ?? false,
      splitCombine: o.splitCombine && {
        heads: o.splitCombine.heads,
        headDim: o.splitCombine.headDim,
        maxSplits: o.splitCombine.maxSplits,
      },
    });
  } else if (vectorized) {
    const shader = {
      dtype: w.dtype,
      threadsPerRow,
      workgroupSize,
      rowsPerThread,
      tileUnits: Math.min(units, tileCols / unitCols),
      subgroupReduce,
      rmsNorm: o.rmsNorm?.weight.dtype,
      siluMul: o.siluMul ?? false,
      accumulate: o.accumulate ?? false,
      splitCombine: o.splitCombine && {
        heads: o.splitCombine.heads,
        headDim: o.splitCombine.headDim,
        maxSplits: o.splitCombine.maxSplits,
      },
    };
    const need = matvecWorkgroupBytes(shader);
    if (need > device.limits.maxComputeWorkgroupStorageSize) {
      throw new MatvecError(
        `matvec: this tuning needs ${need} bytes of workgroup memory, the device allows ` +
          `${device.limits.maxComputeWorkgroupStorageSize} (lower tileCols or rowsPerThread)`,
      );
    }
    code = matvecWgsl(shader);
  } else {
    code = matvecScalarWgsl({ dtype: w.dtype as 'f32' | 'f16', threadsPerRow, workgroupSize });
  }
  const pipeline = computePipeline(ctx, code, `matvec.${w.dtype}`);

  // Row chunks: each binding must fit maxStorageBufferBindingSize and start at a multiple of
  // minStorageBufferOffsetAlignment; it starts at the aligned offset at or before its first row, and the kernel is
  // told how many elements lie in between (the shifts).
  const layout = rowLayout(w, vectorized);
  const align = device.limits.minStorageBufferOffsetAlignment;
  const maxBinding = Math.min(o.maxBindingSize ?? Infinity, device.limits.maxStorageBufferBindingSize);
  const matrices = o.siluMul ? 2 : 1;
  const widest = Math.max(layout.weight, layout.scales);
  const chunkRows = w.rows * widest <= maxBinding ? outRows : Math.floor((maxBinding - align) / widest);
  if (chunkRows <= 0) {
    throw new MatvecError(
      `matvec(${w.dtype} ${w.rows}x${w.cols}): one row (${widest} bytes) does not fit one storage binding ` +
        `(${maxBinding} bytes) on this adapter`,
    );
  }
  const bindRows = (buffer: GPUBuffer, rowBytes: number, elem: number, first: number, count: number) => {
    const start = first * rowBytes;
    const offset = Math.floor(start / align) * align;
    const size = Math.min(Math.ceil((start + count * rowBytes - offset) / 4) * 4, buffer.size - offset);
    return { binding: { buffer, offset, size }, shift: (start - offset) / elem };
  };

  const dispatches: MatvecDispatch[] = [];
  const uniforms: GPUBuffer[] = [];
  const groups: GPUBindGroup[] = [];
  for (let firstRow = 0; firstRow < outRows; firstRow += chunkRows) {
    const rowCount = Math.min(chunkRows, outRows - firstRow);
    const input: GPUBufferBinding =
      kernel === 'rows' && !o.splitCombine
        ? { buffer: o.input, offset: inputOffset * 4, size: w.cols * 4 }
        : { buffer: o.input };
    const entries: GPUBindGroupEntry[] = [
      { binding: 2, resource: input },
      { binding: 3, resource: { buffer: o.output } },
    ];
    const shifts = [0, 0, 0, 0];
    for (let m = 0; m < matrices; m++) {
      const first = firstRow + m * outRows;
      const wb = bindRows(w.weight, layout.weight, layout.wElem, first, rowCount);
      entries.push({ binding: m === 0 ? 1 : 6, resource: wb.binding });
      shifts[2 * m] = wb.shift;
      if (q4 && w.scales) {
        const sb = bindRows(w.scales, layout.scales, layout.sElem, first, rowCount);
        entries.push({ binding: m === 0 ? 4 : 7, resource: sb.binding });
        shifts[2 * m + 1] = sb.shift;
      }
    }
    if (o.rmsNorm) {
      const gamma = o.rmsNorm.weight;
      const size = kernel === 'rows' ? w.cols * (gamma.dtype === 'f16' ? 2 : 4) : undefined;
      entries.push({ binding: 5, resource: { buffer: gamma.buffer, size } });
    }
    if (o.splitCombine) {
      entries.push({ binding: 8, resource: { buffer: o.splitCombine.maxSum } });
      entries.push({ binding: 9, resource: o.splitCombine.splitCount });
    }
    const params = new Uint32Array(vectorized ? 12 : 8);
    if (vectorized) {
      params.set([rowCount, inputOffset, outputOffset + firstRow, w.cols, units, ...shifts]);
      new Float32Array(params.buffer)[9] = o.rmsNorm?.eps ?? 0;
      // Word 10 stays 0: the rows kernel's laneBase (subgroupRead.ts).
    } else {
      params.set([rowCount, inputOffset, outputOffset + firstRow, w.cols, shifts[0]]);
    }
    const uniform = uniformBuffer(ctx, params, `matvec.${w.dtype}.params`);
    entries.push({ binding: 0, resource: { buffer: uniform } });
    uniforms.push(uniform);
    groups.push(device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries }));
    const workgroups = dispatch2d(Math.ceil(rowCount / rowsPerGroup), device.limits.maxComputeWorkgroupsPerDimension);
    dispatches.push({ firstRow, rowCount, workgroups });
  }

  return {
    dispatches,
    threadsPerRow,
    rowsPerThread,
    rowsPerGroup,
    subgroupReduce,
    kernel,
    encode(pass) {
      pass.setPipeline(pipeline);
      for (let i = 0; i < dispatches.length; i++) {
        pass.setBindGroup(0, groups[i]);
        pass.dispatchWorkgroups(dispatches[i].workgroups[0], dispatches[i].workgroups[1]);
      }
    },
    destroy() {
      for (const u of uniforms) u.destroy();
    },
  };
}
