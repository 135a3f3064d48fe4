// On a CPU adapter, waiting for GPU work must leave the main thread idle (core/node/dawnPolling.ts): Dawn's own wait
// spins on setImmediate and holds a core the driver's compute threads need. Measured with the event loop's
// utilisation over a wait of a long dispatch.
import { performance } from 'node:perf_hooks';
import { describe, expect, test } from 'vitest';
import { dawnPollingSleeps } from '../../core/node/dawnPolling';
import { isCpuAdapter } from '../../kernels/gpuContext';
import { bindGroup, computePipeline, readBuffer, storageBuffer, uniformBuffer } from '../../kernels/gpuUtil';
import { testGpu } from './setup';

const BUSY_WGSL = /* wgsl */ `
@group(0) @binding(0) var<uniform> iterations: vec4<u32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  var a = f32(gid.x);
  for (var i = 0u; i < iterations.x; i++) { a = fma(a, 0.999999, 1e-6); }
  out[gid.x] = a;
}`;

describe('waiting for GPU work', () => {
  test('sleeps on a CPU adapter (the event loop stays idle during a long dispatch); spins on a GPU', async () => {
    const ctx = await testGpu();
    if (!isCpuAdapter(ctx.adapterInfo)) {
      expect(dawnPollingSleeps()).toBe(false);
      return;
    }
    expect(dawnPollingSleeps()).toBe(true);
    const pipeline = computePipeline(ctx, BUSY_WGSL, 'test.busy');
    const out = storageBuffer(ctx, 64 * 64 * 4);
    const run = async (iterations: number) => {
      const params = uniformBuffer(ctx, new Uint32Array([iterations, 0, 0, 0]));
      const group = bindGroup(ctx, pipeline, [params, out]);
      const enc = ctx.device.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(64);
      pass.end();
      const before = performance.eventLoopUtilization();
      const start = performance.now();
      ctx.device.queue.submit([enc.finish()]);
      await ctx.device.queue.onSubmittedWorkDone();
      const ms = performance.now() - start;
      const elu = performance.eventLoopUtilization(before);
      params.destroy();
      return { ms, elu: elu.utilization };
    };
    await run(1); // compiles the pipeline
    // Long enough to measure: grow the loop until one wait takes 150 ms or more.
    let iterations = 1 << 16;
    let r = await run(iterations);
    while (r.ms < 150 && iterations < 1 << 30) {
      iterations *= Math.max(2, Math.ceil(200 / Math.max(r.ms, 1)));
      r = await run(iterations);
    }
    expect(r.ms).toBeGreaterThanOrEqual(150);
    // Spinning keeps the loop ~100% busy; sleeping polls cost microseconds per millisecond.
    expect(r.elu).toBeLessThan(0.3);
    const values = await readBuffer(ctx, out, 16);
    expect(Number.isFinite(new Float32Array(values)[0])).toBe(true);
    out.destroy();
  }, 120_000);
});
