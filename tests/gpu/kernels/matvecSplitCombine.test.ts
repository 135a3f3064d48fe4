// The matvec's split-combine prologue (the decode step's o projection reads the split-K attention partials and
// combines them itself) against the plain-TS references composed: referenceSplitCombine -> matvecFusedReference
// (+ the residual add). Head counts that are no multiple of the workgroup, 1 split, several, empty splits (an
// attention split past the end writes max -3e38 and sum 0), peaked maxima far apart, several x tiles per row.
//
// Tolerance per output: the matvec bound of matvec.test.ts (1e-5 * sum_c |w_c x_c| + 1e-6) on the combined x; the
// combine's own f32 rounding (a few ulp of each x) is far inside it.
import { describe, expect, test } from 'vitest';
import { referenceSplitCombine } from '../../../kernels/decodeAttention/decodeAttention.reference';
import { dequantizeLinear } from '../../../kernels/dequantize';
import { fixedSubgroupSize, type GpuContext } from '../../../kernels/gpuContext';
import { readBuffer, runPass, storageBuffer, uniformBuffer } from '../../../kernels/gpuUtil';
import type { HostLinear } from '../../../kernels/linearUpload';
import { createMatvec, MatvecError, type MatvecOptions } from '../../../kernels/matvec/matvec';
import { matvecFusedReference } from '../../../kernels/matvec/matvec.reference';
import { testGpu } from '../setup';
import { randomHost, randomVector, rawUpload, rng } from './matvecHelpers';

interface Case {
  /** The kernel that must run: 'rows' where the adapter broadcasts within fixed-size subgroups (lavapipe). */
  expectKernel?: (ctx: GpuContext) => 'rows' | 'tiled';
  dtype: HostLinear['dtype'];
  rows: number;
  heads: number;
  headDim: number;
  maxSplits: number;
  numSplits: number;
  /** Splits at the end left empty (as a split whose chunk starts past the attended list). */
  empty?: number;
  tuning?: Partial<MatvecOptions>;
}

/** The rows kernel combines in its prologue where it broadcasts x within fixed-size subgroups (lavapipe); elsewhere
 * the wrapper falls back to the tiled kernel. */
const broadcastsOrTiled = (ctx: GpuContext) => (fixedSubgroupSize(ctx) !== undefined ? 'rows' : 'tiled');

/** Partials as split attention leaves them: acc_s = sum of p v over the split (|acc| <= l), m_s, l_s >= 1. */
function randomPartials(c: Case, seed: number) {
  const rand = rng(seed);
  const partAcc = new Float32Array(c.heads * c.maxSplits * c.headDim).fill(1e30); // unused splits: poison
  const partMaxSum = new Float32Array(c.heads * c.maxSplits * 2).fill(1e30);
  for (let h = 0; h < c.heads; h++) {
    for (let s = 0; s < c.numSplits; s++) {
      const slot = h * c.maxSplits + s;
      const empty = s >= c.numSplits - (c.empty ?? 0);
      const sum = empty ? 0 : 1 + rand() * 50;
      // Maxima up to 40 apart: the far smaller splits' weights underflow towards 0, as with peaked attention.
      partMaxSum[slot * 2] = empty ? -3.0e38 : (rand() * 2 - 1) * 20;
      partMaxSum[slot * 2 + 1] = sum;
      for (let d = 0; d < c.headDim; d++) partAcc[slot * c.headDim + d] = empty ? 0 : (rand() * 2 - 1) * sum;
    }
  }
  return { partAcc, partMaxSum };
}

async function runCombine(ctx: GpuContext, c: Case, seed: number) {
  const cols = c.heads * c.headDim;
  const host = randomHost(c.dtype, c.rows, cols, seed);
  const { partAcc, partMaxSum } = randomPartials(c, seed + 1);
  const prior = randomVector(c.rows, rng(seed + 2));
  const input = storageBuffer(ctx, partAcc);
  const maxSum = storageBuffer(ctx, partMaxSum);
  const output = storageBuffer(ctx, prior);
  // The split attention's uniform: (kvLen, numSplits, scale, _); the prologue reads word 1.
  const splitUniform = uniformBuffer(ctx, new Uint32Array([12345, c.numSplits, 0, 0]));
  const weight = rawUpload(ctx, host);
  const matvec = createMatvec(ctx, {
    ...c.tuning,
    weight,
    input,
    output,
    accumulate: true,
    splitCombine: {
      maxSum,
      splitCount: { buffer: splitUniform },
      heads: c.heads,
      headDim: c.headDim,
      maxSplits: c.maxSplits,
    },
  });
  runPass(ctx, (pass) => matvec.encode(pass));
  const kernel = matvec.kernel;
  const got = new Float32Array(await readBuffer(ctx, output));
  for (const b of [input, maxSum, output, splitUniform, weight.weight, weight.scales]) b?.destroy();
  matvec.destroy();

  const x = referenceSplitCombine(partAcc, partMaxSum, c);
  const ref = matvecFusedReference(host, x, { accumulate: prior });
  const w = dequantizeLinear(host);
  let worst = 0;
  for (let r = 0; r < c.rows; r++) {
    let absDot = 0;
    for (let col = 0; col < cols; col++) absDot += Math.abs(w[r * cols + col] * x[col]);
    const bound = 1e-5 * absDot + 1e-6 + 1e-6 * Math.abs(prior[r]);
    const err = Math.abs(got[r] - ref.y[r]);
    if (!(err <= bound)) throw new Error(`row ${r}: gpu ${got[r]} vs reference ${ref.y[r]} (tolerance ${bound})`);
    worst = Math.max(worst, err / bound);
  }
  expect(worst).toBeLessThanOrEqual(1);
  return { x, kernel };
}

const threeSplits: Case = { dtype: 'q4f16', rows: 131, heads: 5, headDim: 64, maxSplits: 40, numSplits: 3 };
const manySplits: Case = { dtype: 'q4f32', rows: 77, heads: 3, headDim: 96, maxSplits: 40, numSplits: 37, empty: 4 };

describe('matvec split-combine prologue', () => {
  const cases: [string, Case][] = [
    ['q4f16, 5 heads x 64, 3 splits', threeSplits],
    ['q4f32, 1 split', { dtype: 'q4f32', rows: 131, heads: 5, headDim: 64, maxSplits: 40, numSplits: 1 }],
    [
      'q4f32, 37 splits, 4 empty, 2 x tiles',
      { ...manySplits, tuning: { threadsPerRow: 4, workgroupSize: 32, rowsPerThread: 3, tileCols: 128 } },
    ],
    [
      'q4f16, rows kernel, 5 heads x 64, 3 splits, 3 rows per invocation',
      {
        ...threeSplits,
        tuning: { kernel: 'rows', workgroupSize: 16, rowsPerThread: 3 },
        expectKernel: broadcastsOrTiled,
      },
    ],
    [
      'q4f32, rows kernel, 3 heads x 96, 37 splits, 4 empty',
      {
        ...manySplits,
        tuning: { kernel: 'rows', workgroupSize: 8, rowsPerThread: 2 },
        expectKernel: broadcastsOrTiled,
      },
    ],
    [
      'q4f16, rows kernel asked, heads of 48 (a unit spans two heads): the tiled kernel',
      {
        dtype: 'q4f16',
        rows: 40,
        heads: 2,
        headDim: 48,
        maxSplits: 4,
        numSplits: 2,
        tuning: { kernel: 'rows', workgroupSize: 16 },
        expectKernel: () => 'tiled',
      },
    ],
    ['f16, 6 heads x 32, 2 splits', { dtype: 'f16', rows: 70, heads: 6, headDim: 32, maxSplits: 8, numSplits: 2 }],
    [
      'f32, 70 heads x 4, 256 splits',
      { dtype: 'f32', rows: 33, heads: 70, headDim: 4, maxSplits: 256, numSplits: 256 },
    ],
  ];
  for (const [name, c] of cases) {
    test(name, async () => {
      const ctx = await testGpu();
      const { x, kernel } = await runCombine(ctx, c, c.rows + c.numSplits);
      if (c.expectKernel) expect(kernel).toBe(c.expectKernel(ctx));
      // The combine really mixed the splits (not just split 0's values).
      expect(x.some((v) => Number.isFinite(v) && v !== 0)).toBe(true);
    });
  }

  test('bad shapes get a clear error', async () => {
    const ctx = await testGpu();
    const io = storageBuffer(ctx, 64 * 1024);
    const weight = rawUpload(ctx, randomHost('q4f32', 4, 64, 1));
    const splitCount = { buffer: uniformBuffer(ctx, new Uint32Array(4)) };
    const make =
      (heads: number, headDim: number, extra: Partial<MatvecOptions> = {}) =>
      () =>
        createMatvec(ctx, {
          weight,
          input: io,
          output: io,
          splitCombine: { maxSum: io, splitCount, heads, headDim, maxSplits: 4 },
          ...extra,
        });
    expect(make(3, 32)).toThrow(/3 heads x 32 dims != 64 columns/);
    expect(make(2, 32, { inputOffset: 4 })).toThrow(MatvecError);
    expect(make(1024, 32 / 512)).toThrow(/positive integer/);
  });
});
