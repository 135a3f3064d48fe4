// Host wrapper for GPU sampling: logits f32 [vocab] -> one u32 token id at offset 0 of `output`.
// Semantics (HF order: temperature, top-k, top-p; ties at a cut are kept; Gumbel-max draw from a PCG hash of
// (seed, step, token)) are spelled out in sampling.wgsl.ts; sampling.reference.ts is the executable spec.
import type { GpuContext } from '../gpuContext';
import { bindGroup, computePipeline } from '../gpuUtil';
import { ownUniform, type UniformSlot } from '../uniforms';
import type { SamplingParams } from './sampling.reference';
import { samplingWgsl } from './sampling.wgsl';

export type { SamplingParams } from './sampling.reference';

export interface SamplerConfig {
  /** f32 [vocab] (may be larger; only the first vocab entries are read). */
  logits: GPUBuffer;
  vocab: number;
  /** Receives the chosen token id as a u32 at byte offset 0. */
  output: GPUBuffer;
  /** Where the sampling scalars go; its own buffer when absent. */
  params?: UniformSlot;
}

export interface Sampler {
  /** Records one dispatch (a single workgroup); writes this instance's uniform, so once per command buffer. */
  encode(pass: GPUComputePassEncoder, params: SamplingParams): void;
}

/** Greedy decoding. */
export const GREEDY: SamplingParams = { temperature: 0, topK: 0, topP: 1, seed: 0, step: 0 };

const U32_MAX = 0xffffffff;

/** Throws a specific error for parameters the sampler does not accept. */
export function validateSamplingParams(p: SamplingParams): void {
  const name = 'sampler';
  if (!Number.isFinite(p.temperature) || p.temperature < 0) {
    throw new Error(`${name}: temperature must be a finite number >= 0 (0 = greedy), got ${p.temperature}`);
  }
  if (!Number.isInteger(p.topK) || p.topK < 0) throw new Error(`${name}: topK must be an integer >= 0, got ${p.topK}`);
  if (!(p.topP > 0 && p.topP <= 1)) throw new Error(`${name}: topP must be in (0, 1], got ${p.topP}`);
  for (const [key, value] of [
    ['seed', p.seed],
    ['step', p.step],
  ] as const) {
    if (!Number.isInteger(value) || value < 0 || value > U32_MAX) {
      throw new Error(`${name}: ${key} must be an integer in 0..2^32-1, got ${value}`);
    }
  }
}

/** Greedy when the temperature is 0 or top-k is 1; top-k >= vocab and top-p = 1 are no-ops. */
export function samplingUniform(vocab: number, p: SamplingParams): ArrayBuffer {
  const data = new ArrayBuffer(32);
  const u = new Uint32Array(data);
  const f = new Float32Array(data);
  const greedy = p.temperature === 0 || p.topK === 1;
  u[0] = vocab;
  u[1] = greedy ? 0 : 1;
  u[2] = p.topK < vocab ? p.topK : 0;
  u[3] = p.topP < 1 ? 1 : 0;
  f[4] = p.topP;
  f[5] = greedy ? 1 : p.temperature;
  u[6] = p.seed;
  u[7] = p.step;
  return data;
}

export function createSampler(ctx: GpuContext, cfg: SamplerConfig): Sampler {
  const { vocab } = cfg;
  if (!Number.isInteger(vocab) || vocab < 1 || vocab >= U32_MAX) {
    throw new Error(`sampler: vocab must be a positive integer, got ${vocab}`);
  }
  if (cfg.logits.size < vocab * 4) {
    throw new Error(`sampler: logits buffer has ${cfg.logits.size} bytes, needs ${vocab * 4} for vocab ${vocab}`);
  }
  if (cfg.output.size < 4) throw new Error('sampler: output buffer needs at least 4 bytes');
  const pipeline = computePipeline(ctx, samplingWgsl(), 'sampler');
  const uniform = cfg.params ?? ownUniform(ctx, 32, 'sampler params');
  const group = bindGroup(ctx, pipeline, [uniform.binding, cfg.logits, cfg.output], 'sampler');
  return {
    encode(pass, params) {
      validateSamplingParams(params);
      uniform.write(new Uint32Array(samplingUniform(vocab, params)));
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(1);
    },
  };
}
