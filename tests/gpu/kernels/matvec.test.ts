// Matvec (every weight dtype) vs the plain-TS reference on a real adapter: odd row counts, short and unaligned rows,
// offsets, row chunks, 2D dispatch past 65535 workgroups, and clear errors for bad shapes.
//
// Tolerance: the GPU sums in f32 (per-thread partials, then a tree), the reference in f64 from the same dequantized
// weights, so |gpu - ref| <= 1e-5 * sum_c |w_c x_c| + 1e-6 per row (an f32 summation bound for rows up to ~1000
// columns with margin; the inputs are exact in both).
import { describe, expect, test } from 'vitest';
import { dequantizeLinear } from '../../../kernels/dequantize';
import type { GpuContext } from '../../../kernels/gpuContext';
import { readBuffer, runPass, storageBuffer } from '../../../kernels/gpuUtil';
import { f16BitsToF32, f32ToF16Bits } from '../../../kernels/half';
import { type HostLinear, LinearShapeError, uploadLinear } from '../../../kernels/linearUpload';
import { createMatvec, MatvecError, type MatvecOptions } from '../../../kernels/matvec/matvec';
import { matvecReference } from '../../../kernels/matvec/matvec.reference';
import type { GpuLinear } from '../../../kernels/types';
import { testGpu } from '../setup';
import { randomHost, randomVector, rawUpload, rng } from './matvecHelpers';

type Dtype = HostLinear['dtype'];
const DTYPES: Dtype[] = ['f32', 'f16', 'q4f16', 'q4f32'];

const SENTINEL = -12345;

async function runMatvec(
  ctx: GpuContext,
  weight: GpuLinear,
  x: Float32Array,
  opts: Partial<MatvecOptions> = {},
): Promise<{ y: Float32Array; around: Float32Array; matvec: ReturnType<typeof createMatvec> }> {
  const inputOffset = opts.inputOffset ?? 0;
  const outputOffset = opts.outputOffset ?? 0;
  const xPadded = new Float32Array(inputOffset + x.length + 3).fill(777); // junk around x must not be read
  xPadded.set(x, inputOffset);
  const outLength = outputOffset + weight.rows + 2;
  const input = storageBuffer(ctx, xPadded);
  const output = storageBuffer(ctx, new Float32Array(outLength).fill(SENTINEL));
  const matvec = createMatvec(ctx, { ...opts, weight, input, output });
  runPass(ctx, (pass) => matvec.encode(pass));
  const all = new Float32Array(await readBuffer(ctx, output, outLength * 4));
  input.destroy();
  output.destroy();
  matvec.destroy();
  const around = Float32Array.from([...all.subarray(0, outputOffset), ...all.subarray(outputOffset + weight.rows)]);
  return { y: all.slice(outputOffset, outputOffset + weight.rows), around, matvec };
}

function expectClose(host: HostLinear, x: Float32Array, got: Float32Array): void {
  const want = matvecReference(host, x);
  const w = dequantizeLinear(host);
  let worst = 0;
  for (let r = 0; r < host.rows; r++) {
    let absSum = 0;
    for (let c = 0; c < host.cols; c++) absSum += Math.abs(w[r * host.cols + c] * x[c]);
    const tol = 1e-5 * absSum + 1e-6;
    const err = Math.abs(got[r] - want[r]);
    if (!(err <= tol)) throw new Error(`row ${r}: gpu ${got[r]} vs reference ${want[r]} (tolerance ${tol})`);
    worst = Math.max(worst, err / tol);
  }
  expect(worst).toBeLessThanOrEqual(1);
}

describe('matvec references (hand-computed)', () => {
  test('q4 nibbles are lowest first and value = (q - 7) * scale', () => {
    // Row 0: word 0 holds q = 8, 15, 0, 7, 1, 2, 3, 4 (nibble 0 = lowest bits), word 1..3 = 7s (value 0).
    const qweight = new Uint32Array([0x4321_70f8, 0x7777_7777, 0x7777_7777, 0x7777_7777]);
    const scales = new Uint16Array([f32ToF16Bits(0.5)]);
    const w = dequantizeLinear({ dtype: 'q4f16', rows: 1, cols: 32, qweight, scales });
    expect(Array.from(w.subarray(0, 8))).toEqual([0.5, 4, -3.5, 0, -3, -2.5, -2, -1.5]);
    expect(w.subarray(8).every((v) => v === 0)).toBe(true);
  });

  test('matvecReference on a 2x3 f32 matrix', () => {
    const host: HostLinear = { dtype: 'f32', rows: 2, cols: 3, data: new Float32Array([1, 2, 3, -1, 0, 0.5]) };
    expect(Array.from(matvecReference(host, new Float32Array([1, 10, 100])))).toEqual([321, 49]);
  });
});

describe('matvec on the GPU', () => {
  const shapes: [number, number][] = [
    [257, 96],
    [257, 160],
    [33, 544],
    [1, 32],
  ];
  // Default tuning (one thread per row on CPU adapters), and the multi-thread-per-row reduction GPUs use by default.
  const tunings: [string, Partial<MatvecOptions>][] = [
    ['default tuning', {}],
    ['32 threads per row', { threadsPerRow: 32, workgroupSize: 64 }],
    ['8 threads x 3 rows', { threadsPerRow: 8, workgroupSize: 32, rowsPerThread: 3 }],
    // q4 only (f16/f32 fall back to the tiled kernel): x through a uniform binding, 8 x 3 = 24 rows per workgroup.
    ['rows kernel, 8 x 3 rows', { kernel: 'rows', workgroupSize: 8, rowsPerThread: 3 }],
  ];
  for (const [tuningName, tuning] of tunings) {
    for (const dtype of DTYPES) {
      for (const [rows, cols] of shapes) {
        test(`${dtype} ${rows}x${cols}, ${tuningName}`, async () => {
          const ctx = await testGpu();
          const host = randomHost(dtype, rows, cols, rows * 31 + cols);
          const x = randomVector(cols, rng(cols));
          const { y, around } = await runMatvec(ctx, rawUpload(ctx, host), x, tuning);
          expectClose(host, x, y);
          expect(around.every((v) => v === SENTINEL)).toBe(true);
        });
      }
    }
  }

  // Rows whose length is not a multiple of the vector width take the scalar paths.
  for (const [dtype, rows, cols, tuning] of [
    ['f32', 19, 7, {}],
    ['f16', 19, 13, {}],
    ['f16', 21, 20, { threadsPerRow: 4, workgroupSize: 16 }],
    ['f32', 300, 1030, {}],
    ['f32', 300, 1030, { threadsPerRow: 256, workgroupSize: 256 }],
    ['f16', 300, 1032, { threadsPerRow: 1, workgroupSize: 16, rowsPerThread: 8 }],
  ] as const) {
    test(`${dtype} ${rows}x${cols} (scalar or long rows), ${JSON.stringify(tuning)}`, async () => {
      const ctx = await testGpu();
      const host = randomHost(dtype, rows, cols, 7);
      const x = randomVector(cols, rng(8));
      expectClose(host, x, (await runMatvec(ctx, rawUpload(ctx, host), x, tuning)).y);
    });
  }

  for (const dtype of DTYPES) {
    for (const inputOffset of [3, 8]) {
      test(`${dtype} with inputOffset ${inputOffset} and outputOffset 5`, async () => {
        const ctx = await testGpu();
        const host = randomHost(dtype, 45, 64, 11);
        const x = randomVector(64, rng(12));
        const { y, around } = await runMatvec(ctx, rawUpload(ctx, host), x, { inputOffset, outputOffset: 5 });
        expectClose(host, x, y);
        expect(around.every((v) => v === SENTINEL)).toBe(true);
      });
    }
  }

  for (const dtype of DTYPES) {
    test(`${dtype} in row chunks (weights larger than one binding)`, async () => {
      const ctx = await testGpu();
      const host = randomHost(dtype, 203, 128, 13);
      const x = randomVector(128, rng(14));
      const { y, matvec } = await runMatvec(ctx, rawUpload(ctx, host), x, { maxBindingSize: 4096 });
      expect(matvec.dispatches.length).toBeGreaterThan(2);
      expectClose(host, x, y);
    });
  }

  test('f16 through uploadLinear: kept as f16 with shader-f16, widened to f32 without', async () => {
    const ctx = await testGpu();
    const host = randomHost('f16', 77, 96, 21);
    const x = randomVector(96, rng(22));
    const weight = uploadLinear(ctx, host);
    expect(weight.dtype).toBe(ctx.f16 ? 'f16' : 'f32');
    expectClose(host, x, (await runMatvec(ctx, weight, x)).y);
  });

  test('q4f16 through uploadLinear: q4f32 without shader-f16', async () => {
    const ctx = await testGpu();
    const host = randomHost('q4f16', 77, 96, 23);
    const x = randomVector(96, rng(24));
    const weight = uploadLinear(ctx, host);
    expect(weight.dtype).toBe(ctx.f16 ? 'q4f16' : 'q4f32');
    expectClose(host, x, (await runMatvec(ctx, weight, x)).y);
  });

  // A vocabulary-sized output: more workgroups than one dispatch dimension allows, folded into 2D.
  for (const dtype of ['q4f16', 'f32'] as const) {
    test(`${dtype} 70001x64: 2D dispatch`, async () => {
      const ctx = await testGpu();
      const host = randomHost(dtype, 70001, 64, 31);
      const x = randomVector(64, rng(32));
      const { y, around, matvec } = await runMatvec(ctx, rawUpload(ctx, host), x, {
        threadsPerRow: 2, // one row per workgroup: 70001 workgroups
        workgroupSize: 2,
        rowsPerThread: 1,
      });
      expect(matvec.dispatches[0].workgroups[1]).toBeGreaterThan(1);
      expectClose(host, x, y);
      expect(around.every((v) => v === SENTINEL)).toBe(true);
    });
  }

  test('q4 rows kernel: 70001 rows in 2D, 16 rows per invocation, x at an aligned offset; tiled where it cannot bind x', async () => {
    const ctx = await testGpu();
    for (const dtype of ['q4f16', 'q4f32'] as const) {
      const host = randomHost(dtype, 70001, 64, 33);
      const x = randomVector(64, rng(34));
      const wide = await runMatvec(ctx, rawUpload(ctx, host), x, {
        kernel: 'rows',
        workgroupSize: 1,
        rowsPerThread: 1,
      });
      expect(wide.matvec.kernel).toBe('rows');
      expect(wide.matvec.dispatches[0].workgroups[1]).toBeGreaterThan(1);
      expectClose(host, x, wide.y);
      expect(wide.around.every((v) => v === SENTINEL)).toBe(true);
      const small = randomHost(dtype, 45, 96, 35);
      const xs = randomVector(96, rng(36));
      const offset = ctx.device.limits.minUniformBufferOffsetAlignment / 4; // the first aligned offset past 0
      const deep = await runMatvec(ctx, rawUpload(ctx, small), xs, {
        kernel: 'rows',
        workgroupSize: 4,
        rowsPerThread: 16,
        inputOffset: offset,
        outputOffset: 5,
      });
      expect(deep.matvec.kernel).toBe('rows');
      expectClose(small, xs, deep.y);
      expect(deep.around.every((v) => v === SENTINEL)).toBe(true);
      const unaligned = await runMatvec(ctx, rawUpload(ctx, small), xs, { kernel: 'rows', inputOffset: 3 });
      expect(unaligned.matvec.kernel).toBe('tiled');
      expectClose(small, xs, unaligned.y);
    }
  });

  test('default tuning on a large row count', async () => {
    const ctx = await testGpu();
    const host = randomHost('q4f32', 70400, 96, 41);
    const x = randomVector(96, rng(42));
    expectClose(host, x, (await runMatvec(ctx, rawUpload(ctx, host), x)).y);
  });
});

describe('matvec errors', () => {
  test('q4 with cols not a multiple of 32', async () => {
    const ctx = await testGpu();
    const bad: HostLinear = {
      dtype: 'q4f16',
      rows: 4,
      cols: 48,
      qweight: new Uint32Array(24),
      scales: new Uint16Array(6),
    };
    expect(() => uploadLinear(ctx, bad)).toThrow(LinearShapeError);
    expect(() => uploadLinear(ctx, bad)).toThrow(/multiple of 32/);
    const weight: GpuLinear = {
      dtype: 'q4f32',
      rows: 4,
      cols: 48,
      weight: storageBuffer(ctx, 96),
      scales: storageBuffer(ctx, 64),
    };
    const io = storageBuffer(ctx, 1024);
    expect(() => createMatvec(ctx, { weight, input: io, output: io })).toThrow(/multiple of 32/);
  });

  test('wrong array lengths and small buffers are named', async () => {
    const ctx = await testGpu();
    const short: HostLinear = { dtype: 'f32', rows: 4, cols: 8, data: new Float32Array(31) };
    expect(() => uploadLinear(ctx, short, 'layer0.o_proj')).toThrow(
      /layer0\.o_proj: data has 31 elements, expected 32/,
    );
    const weight = uploadLinear(ctx, { dtype: 'f32', rows: 4, cols: 8, data: new Float32Array(32) });
    const small = storageBuffer(ctx, 16);
    const big = storageBuffer(ctx, 1024);
    expect(() => createMatvec(ctx, { weight, input: small, output: big })).toThrow(MatvecError);
    expect(() => createMatvec(ctx, { weight, input: small, output: big })).toThrow(/input buffer has 16 bytes/);
    expect(() => createMatvec(ctx, { weight, input: big, output: big, outputOffset: 254 })).toThrow(/output buffer/);
  });

  test('f16 bits used by the tests round-trip', () => {
    // Guards the test data itself: f16 weights are made by rounding, the reference decodes the same bits.
    expect(f16BitsToF32(f32ToF16Bits(0.5))).toBe(0.5);
  });
});
