import { expect, test } from 'vitest';
import { FmaPeakKernel } from '../../../kernels/fmaPeak/fmaPeak';
import { fmaPeakReference } from '../../../kernels/fmaPeak/fmaPeak.reference';
import { FMA_PEAK_UNROLL } from '../../../kernels/fmaPeak/fmaPeak.wgsl';
import { readBuffer, runPass } from '../../../kernels/gpuUtil';
import { testGpu } from '../setup';

// The bench's peak is only meaningful if the kernel really runs every FMA: its output must match the reference.
// Each step contracts (|m| < 1), so rounding differences (fused vs separate multiply-add) stay at a few ulps.
test('FMA-rate kernel computes the chains it is timed for (3 workgroups of 48, 5 chains, 7 iterations)', async () => {
  const ctx = await testGpu();
  const kernel = new FmaPeakKernel(ctx, {
    chains: 5,
    workgroupSize: 48,
    workgroups: 3,
    iterations: 7,
    m: 0.9,
    c: 0.01,
  });
  runPass(ctx, (pass) => kernel.encode(pass));
  const got = new Float32Array(await readBuffer(ctx, kernel.out));
  const want = fmaPeakReference(kernel.invocations, 5, 7 * FMA_PEAK_UNROLL, 0.9, 0.01);
  expect(got.length).toBe(144);
  for (let i = 0; i < got.length; i++) expect(Math.abs(got[i] - want[i]), `invocation ${i}`).toBeLessThan(1e-4);
  expect(kernel.flops()).toBe(144 * 7 * FMA_PEAK_UNROLL * 5 * 8);
  kernel.destroy();
});
