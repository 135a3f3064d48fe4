// The fused matvec variants (RMSNorm prologue, SiLU·mul gate_up epilogue, residual-add epilogue) against the plain-TS
// references composed step by step (rmsNormReference -> matvecReference -> siluMulReference -> + residual), on every
// weight dtype, with row counts that are not multiples of the workgroup size, several x tiles per row, and both the
// subgroup-shuffle and the workgroup-memory reductions.
//
// Tolerance per output: the matvec bound of matvec.test.ts (1e-5 * sum_c |w_c xn_c| + 1e-6) for each product, carried
// through silu(g) * u by its derivative (|silu'| <= 1.1); the fused kernel applies the norm's 1/rms after the sum
// instead of before, which this bound covers.
import { describe, expect, test } from 'vitest';
import { dequantizeLinear } from '../../../kernels/dequantize';
import { type GpuVector, uploadVector } from '../../../kernels/elementwise/gpuVector';
import type { GpuContext } from '../../../kernels/gpuContext';
import { readBuffer, runPass, storageBuffer } from '../../../kernels/gpuUtil';
import { f32ArrayToF16 } from '../../../kernels/half';
import type { HostLinear } from '../../../kernels/linearUpload';
import { createMatvec, MatvecError, type MatvecOptions } from '../../../kernels/matvec/matvec';
import { matvecFusedReference } from '../../../kernels/matvec/matvec.reference';
import { minSubgroupSize } from '../../../kernels/matvec/matvecTuning';
import { testGpu } from '../setup';
import { randomHost, randomVector, rawUpload, rng } from './matvecHelpers';

type Fusion = Pick<MatvecOptions, 'siluMul' | 'accumulate'> & { rmsNorm?: boolean };

const EPS = 1e-5;
const DTYPES = ['q4f16', 'q4f32', 'f16', 'f32'] as const;
const Q4 = ['q4f16', 'q4f32'] as const;

function gammaFor(ctx: GpuContext, cols: number, seed: number): { host: Float32Array; gpu: GpuVector } {
  const values = Float32Array.from(randomVector(cols, rng(seed)), (v) => 0.5 + v);
  // f16 gamma (as in MLC weights) where the device can hold it; the reference reads the same rounded values.
  if (ctx.f16) {
    const bits = f32ArrayToF16(values);
    const gpu = uploadVector(ctx, { dtype: 'f16', data: bits });
    return {
      host: Float32Array.from(new Float32Array(dequantizeLinear({ dtype: 'f16', rows: 1, cols, data: bits }))),
      gpu,
    };
  }
  return { host: values, gpu: uploadVector(ctx, { dtype: 'f32', data: values }) };
}

/** |w| . |x| per weight row: the scale of each product's rounding error. */
function absDots(host: HostLinear, x: Float32Array): Float64Array {
  const w = dequantizeLinear(host);
  const out = new Float64Array(host.rows);
  for (let r = 0; r < host.rows; r++) {
    let s = 0;
    for (let c = 0; c < host.cols; c++) s += Math.abs(w[r * host.cols + c] * x[c]);
    out[r] = s;
  }
  return out;
}

async function runFused(
  ctx: GpuContext,
  dtype: HostLinear['dtype'],
  outRows: number,
  cols: number,
  f: Fusion,
  tuning: Partial<MatvecOptions>,
) {
  const weightRows = f.siluMul ? 2 * outRows : outRows;
  const host = randomHost(dtype, weightRows, cols, weightRows * 7 + cols);
  const x = Float32Array.from(randomVector(cols, rng(cols + 1)), (v) => 3 * v); // un-normalised residual stream
  const gamma = f.rmsNorm ? gammaFor(ctx, cols, cols + 2) : undefined;
  const prior = f.accumulate ? randomVector(outRows, rng(outRows + 3)) : undefined;
  const outputOffset = 3;
  const initial = new Float32Array(outputOffset + outRows + 2).fill(-999);
  if (prior) initial.set(prior, outputOffset);
  const input = storageBuffer(ctx, x);
  const output = storageBuffer(ctx, initial);
  const weight = rawUpload(ctx, host);
  const matvec = createMatvec(ctx, {
    ...tuning,
    weight,
    input,
    output,
    outputOffset,
    rmsNorm: gamma && { weight: gamma.gpu, eps: EPS },
    siluMul: f.siluMul,
    accumulate: f.accumulate,
  });
  runPass(ctx, (pass) => matvec.encode(pass));
  const all = new Float32Array(await readBuffer(ctx, output));
  for (const b of [input, output, weight.weight, weight.scales, gamma?.gpu.buffer]) b?.destroy();
  matvec.destroy();

  const ref = matvecFusedReference(host, x, {
    rmsNorm: gamma && { gamma: gamma.host, eps: EPS },
    siluMul: f.siluMul,
    accumulate: prior,
  });
  const tol = Array.from(absDots(host, ref.xn), (s) => 1e-5 * s + 1e-6);
  let worst = 0;
  for (let r = 0; r < outRows; r++) {
    let bound = tol[r];
    if (f.siluMul) {
      const g = ref.preEpilogue[r];
      const u = ref.preEpilogue[r + outRows];
      bound = 1.1 * tol[r] * (Math.abs(u) + tol[r + outRows]) + (Math.abs(g) + tol[r]) * tol[r + outRows] + 1e-6;
    }
    if (prior) bound += 1e-6 * Math.abs(prior[r]);
    const got = all[outputOffset + r];
    const err = Math.abs(got - ref.y[r]);
    if (!(err <= bound)) throw new Error(`row ${r}: gpu ${got} vs reference ${ref.y[r]} (tolerance ${bound})`);
    worst = Math.max(worst, err / bound);
  }
  expect(worst).toBeLessThanOrEqual(1);
  // Nothing outside the output rows was written.
  expect([...all.subarray(0, outputOffset), ...all.subarray(outputOffset + outRows)].every((v) => v === -999)).toBe(
    true,
  );
  return matvec;
}

describe('fused matvec on the GPU', () => {
  const fusions: [string, Fusion][] = [
    ['rmsNorm prologue', { rmsNorm: true }],
    ['rmsNorm + siluMul (gate_up)', { rmsNorm: true, siluMul: true }],
    ['siluMul epilogue', { siluMul: true }],
    ['residual add epilogue', { accumulate: true }],
  ];
  const tunings: [string, Partial<MatvecOptions>][] = [
    ['default tuning', {}],
    ['4 threads x 3 rows, 2 tiles', { threadsPerRow: 4, workgroupSize: 32, rowsPerThread: 3, tileCols: 128 }],
    ['16 threads x 2 rows, no subgroups', { threadsPerRow: 16, workgroupSize: 64, rowsPerThread: 2, subgroups: false }],
    ['rows kernel, 16 x 5 rows', { kernel: 'rows', workgroupSize: 16, rowsPerThread: 5 }],
    // Where the adapter has no fixed subgroup size the rows kernel reads all of x in every lane.
    ['rows kernel, x read by every lane', { kernel: 'rows', workgroupSize: 16, rowsPerThread: 5, xBroadcast: false }],
  ];
  // Every fusion on every dtype with the adapter's tuning; the other work splits on the full gate_up fusion and the
  // residual add, for the q4 formats (each pipeline costs seconds to compile on the CPU drivers).
  for (const [fusionName, fusion] of fusions) {
    for (const [tuningName, tuning] of tunings) {
      const gateUpOrResidual = (fusion.rmsNorm && fusion.siluMul) || fusion.accumulate;
      const dtypes = tuningName === 'default tuning' ? DTYPES : gateUpOrResidual ? Q4 : [];
      for (const dtype of dtypes) {
        test(`${dtype} 131x224, ${fusionName}, ${tuningName}`, async () => {
          const ctx = await testGpu();
          await runFused(ctx, dtype, 131, 224, fusion, tuning);
        });
      }
    }
  }

  test('subgroup shuffles where the adapter has them, the workgroup-memory tree otherwise (both give the reference)', async () => {
    const ctx = await testGpu();
    const tuning = { threadsPerRow: 4, workgroupSize: 64, rowsPerThread: 2 };
    const withSubgroups = await runFused(ctx, 'q4f32', 45, 320, { rmsNorm: true }, tuning);
    expect(withSubgroups.subgroupReduce).toBe(ctx.subgroups && minSubgroupSize(ctx) >= 4);
    const fallback = await runFused(ctx, 'q4f32', 45, 320, { rmsNorm: true }, { ...tuning, subgroups: false });
    expect(fallback.subgroupReduce).toBe(false);
  });

  test('Llama-1B-like gate_up in row chunks: the up rows come from their own aligned bindings', async () => {
    const ctx = await testGpu();
    for (const kernel of ['tiled', 'rows'] as const) {
      const mv = await runFused(
        ctx,
        'q4f16',
        75,
        256,
        { rmsNorm: true, siluMul: true },
        { maxBindingSize: 2048, kernel },
      );
      expect(mv.dispatches.length).toBeGreaterThan(2);
      expect(mv.kernel).toBe(kernel);
    }
  });
});

describe('fused matvec errors', () => {
  test('siluMul needs an even row count; rmsNorm a gamma of cols values; unaligned rows cannot fuse', async () => {
    const ctx = await testGpu();
    const io = storageBuffer(ctx, 4096);
    const odd = rawUpload(ctx, randomHost('q4f32', 5, 64, 1));
    expect(() => createMatvec(ctx, { weight: odd, input: io, output: io, siluMul: true })).toThrow(/even row count/);
    const gamma = uploadVector(ctx, { dtype: 'f32', data: new Float32Array(32) });
    expect(() =>
      createMatvec(ctx, { weight: odd, input: io, output: io, rmsNorm: { weight: gamma, eps: 1e-5 } }),
    ).toThrow(/rmsNorm weight has 32 values, expected 64/);
    const scalar = rawUpload(ctx, randomHost('f32', 4, 7, 2));
    expect(() => createMatvec(ctx, { weight: scalar, input: io, output: io, accumulate: true })).toThrow(MatvecError);
  });
});
