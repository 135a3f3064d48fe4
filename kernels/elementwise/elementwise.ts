// Host wrappers for the elementwise kernels: SwiGLU (silu(gate) * up), residual add, bias add.
import type { GpuContext } from '../gpuContext';
import { bindGroup, computePipeline, dispatch2d } from '../gpuUtil';
import { ownUniform, type UniformSlot } from '../uniforms';
import { addBiasWgsl, addInPlaceWgsl, ELEMENTWISE_WORKGROUP, siluMulWgsl } from './elementwise.wgsl';
import { assertPositiveInt, type GpuVector, maxWorkgroupsPerDim, vectorElementType } from './gpuVector';

/** Shared plumbing: one pipeline, one bind group, a uniform holding the element count. */
class ElementwiseKernel {
  private readonly pipeline: GPUComputePipeline;
  private readonly bindGroup: GPUBindGroup;
  private readonly params: UniformSlot;

  constructor(
    private readonly ctx: GpuContext,
    code: string,
    buffers: GPUBuffer[],
    private readonly name: string,
    /** Elements per token (row width of the output). */
    private readonly width: number,
    readonly maxTokens: number,
  ) {
    this.pipeline = computePipeline(ctx, code, name);
    this.params = ownUniform(ctx, 16, `${name} params`);
    this.bindGroup = bindGroup(ctx, this.pipeline, [this.params.binding, ...buffers], name);
  }

  encode(pass: GPUComputePassEncoder, tokens: number): void {
    if (!Number.isInteger(tokens) || tokens < 1 || tokens > this.maxTokens) {
      throw new Error(`${this.name}: tokens ${tokens} is outside 1..${this.maxTokens}.`);
    }
    const count = tokens * this.width;
    this.params.write(new Uint32Array([count, 0, 0, 0]));
    const [x, y] = dispatch2d(Math.ceil(count / ELEMENTWISE_WORKGROUP), maxWorkgroupsPerDim(this.ctx));
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, this.bindGroup);
    pass.dispatchWorkgroups(x, y);
  }
}

function checkSize(buffer: GPUBuffer, floats: number, what: string): void {
  if (buffer.size < floats * 4) throw new Error(`${what} is smaller than ${floats} f32.`);
}

/** out [tokens][I] = silu(gateUp[t][0..I)) * gateUp[t][I..2I) (gate rows first, then up, as MLC fuses them). */
export class SiluMulKernel extends ElementwiseKernel {
  constructor(ctx: GpuContext, opts: { intermediate: number; gateUp: GPUBuffer; out: GPUBuffer; maxTokens: number }) {
    assertPositiveInt(opts.intermediate, 'siluMul intermediate');
    assertPositiveInt(opts.maxTokens, 'siluMul maxTokens');
    checkSize(opts.gateUp, opts.maxTokens * 2 * opts.intermediate, 'siluMul gateUp buffer');
    checkSize(opts.out, opts.maxTokens * opts.intermediate, 'siluMul out buffer');
    if (opts.gateUp === opts.out) throw new Error('siluMul: gateUp and out must be different buffers.');
    const code = siluMulWgsl(opts.intermediate);
    super(ctx, code, [opts.gateUp, opts.out], 'siluMul', opts.intermediate, opts.maxTokens);
  }
}

/** x [tokens][width] += y [tokens][width] (residual connection). */
export class AddInPlaceKernel extends ElementwiseKernel {
  constructor(ctx: GpuContext, opts: { width: number; x: GPUBuffer; y: GPUBuffer; maxTokens: number }) {
    assertPositiveInt(opts.width, 'addInPlace width');
    assertPositiveInt(opts.maxTokens, 'addInPlace maxTokens');
    checkSize(opts.x, opts.maxTokens * opts.width, 'addInPlace x buffer');
    checkSize(opts.y, opts.maxTokens * opts.width, 'addInPlace y buffer');
    if (opts.x === opts.y) throw new Error('addInPlace: x and y must be different buffers.');
    super(ctx, addInPlaceWgsl(), [opts.x, opts.y], 'addInPlace', opts.width, opts.maxTokens);
  }
}

/** x [tokens][bias.length] += bias, broadcast over tokens (Qwen2's qkv bias). */
export class AddBiasKernel extends ElementwiseKernel {
  constructor(ctx: GpuContext, opts: { bias: GpuVector; x: GPUBuffer; maxTokens: number }) {
    const width = opts.bias.length;
    assertPositiveInt(width, 'addBias width');
    assertPositiveInt(opts.maxTokens, 'addBias maxTokens');
    checkSize(opts.x, opts.maxTokens * width, 'addBias x buffer');
    const code = addBiasWgsl(width, vectorElementType(ctx, opts.bias, 'addBias bias'));
    super(ctx, code, [opts.x, opts.bias.buffer], 'addBias', width, opts.maxTokens);
  }
}
