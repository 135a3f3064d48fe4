// Host wrapper for the FMA-rate kernel (bench only): encode() dispatches `invocations` × `iterations` × UNROLL ×
// chains vec4 FMAs; flops() says how many floating-point operations that is (an FMA counts as 2).
import type { GpuContext } from '../gpuContext';
import { bindGroup, computePipeline, storageBuffer, uniformBuffer } from '../gpuUtil';
import { FMA_PEAK_UNROLL, type FmaPeakShader, fmaPeakWgsl } from './fmaPeak.wgsl';

export interface FmaPeakOptions extends FmaPeakShader {
  workgroups: number;
  iterations: number;
  m?: number;
  c?: number;
}

export class FmaPeakKernel {
  readonly out: GPUBuffer;
  readonly invocations: number;
  private readonly pipeline: GPUComputePipeline;
  private readonly group: GPUBindGroup;
  private readonly params: GPUBuffer;

  constructor(
    ctx: GpuContext,
    readonly opts: FmaPeakOptions,
  ) {
    for (const key of ['chains', 'workgroupSize', 'workgroups', 'iterations'] as const) {
      if (!Number.isInteger(opts[key]) || opts[key] < 1) throw new Error(`fmaPeak: ${key} must be a positive integer`);
    }
    this.invocations = opts.workgroups * opts.workgroupSize;
    this.pipeline = computePipeline(ctx, fmaPeakWgsl(opts), 'fmaPeak');
    const p = new ArrayBuffer(16);
    new Uint32Array(p, 0, 1)[0] = opts.iterations;
    new Float32Array(p, 4, 2).set([opts.m ?? 0.999, opts.c ?? 0.001]);
    this.params = uniformBuffer(ctx, new Uint8Array(p), 'fmaPeak params');
    this.out = storageBuffer(ctx, this.invocations * 4, 'fmaPeak out');
    this.group = bindGroup(ctx, this.pipeline, [this.params, this.out], 'fmaPeak');
  }

  encode(pass: GPUComputePassEncoder): void {
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, this.group);
    pass.dispatchWorkgroups(this.opts.workgroups);
  }

  /** Floating-point operations of one encode(). */
  flops(): number {
    return this.invocations * this.opts.iterations * FMA_PEAK_UNROLL * this.opts.chains * 4 * 2;
  }

  destroy(): void {
    this.params.destroy();
    this.out.destroy();
  }
}
