// Where a decode step's time goes: the dispatches of one step of the Llama-3.2-1B-shaped q4 model (1K context; with
// --large also 8K), recorded as the engine encodes them, then each kernel replayed alone, REPEATS times back to back
// in one pass (the per-dispatch cost inside a step is part of its figure), best of ROUNDS. Two policies: full
// attention, and recycled with a refresh on every step (the cost of the top-K passes). Rows: one per kernel slot of
// a layer (the same kernel in all layers is timed once, in layer 0, and counted per layer) and per step-level kernel.
// A replay sees the uniforms and state of the step recorded last, which is of the same policy. Run by name only:
//   npm run bench -- decode-profile [--large]
import { GpuModel } from '../../../core/engine/gpuModel';
import { GREEDY_SAMPLING } from '../../../core/engine/runner';
import type { AttentionPolicy } from '../../../core/engine/types';
import { bindGroup, computePipeline, storageBuffer } from '../../../kernels/gpuUtil';
import { fillKv, timeDecode } from '../decodeTiming';
import type { BenchContext, BenchRow, BenchSection } from '../sections';
import { LLAMA_1B, syntheticConfig, syntheticWeights } from '../syntheticModel';

const REPEATS = 8;
const ROUNDS = 3;

interface RecordedDispatch {
  pipeline: GPUComputePipeline;
  groups: Map<number, GPUBindGroup>;
  workgroups: [number, number, number];
}

/** Records the dispatches of the command encoders created while `run` is awaited (the device's own encoders are
 * wrapped for that time only). */
async function recordDispatches(device: GPUDevice, run: () => Promise<void>): Promise<RecordedDispatch[]> {
  const recorded: RecordedDispatch[] = [];
  const create = device.createCommandEncoder;
  device.createCommandEncoder = (descriptor?: GPUCommandEncoderDescriptor) => {
    const encoder = create.call(device, descriptor);
    const begin = encoder.beginComputePass;
    encoder.beginComputePass = (passDescriptor?: GPUComputePassDescriptor) => {
      const pass = begin.call(encoder, passDescriptor);
      let pipeline: GPUComputePipeline | undefined;
      const groups = new Map<number, GPUBindGroup>();
      const setPipeline = pass.setPipeline;
      const setBindGroup = pass.setBindGroup as (index: number, group: GPUBindGroup) => void;
      const dispatch = pass.dispatchWorkgroups;
      pass.setPipeline = (p: GPUComputePipeline) => {
        pipeline = p;
        setPipeline.call(pass, p);
      };
      pass.setBindGroup = ((index: number, group: GPUBindGroup) => {
        groups.set(index, group);
        setBindGroup.call(pass, index, group);
      }) as GPUComputePassEncoder['setBindGroup'];
      pass.dispatchWorkgroups = (x: number, y = 1, z = 1) => {
        if (!pipeline) throw new Error('decode-profile: a dispatch before any pipeline');
        recorded.push({ pipeline, groups: new Map(groups), workgroups: [x, y, z] });
        dispatch.call(pass, x, y, z);
      };
      return pass;
    };
    return encoder;
  };
  try {
    await run();
  } finally {
    device.createCommandEncoder = create;
  }
  return recorded;
}

/** ms per dispatch of `d` replayed REPEATS times in one pass, best of ROUNDS. */
async function replayMs(device: GPUDevice, d: RecordedDispatch): Promise<number> {
  let best = Number.POSITIVE_INFINITY;
  for (let round = 0; round <= ROUNDS; round++) {
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(d.pipeline);
    for (const [i, g] of d.groups) pass.setBindGroup(i, g);
    for (let r = 0; r < REPEATS; r++) pass.dispatchWorkgroups(...d.workgroups);
    pass.end();
    const t0 = performance.now();
    device.queue.submit([encoder.finish()]);
    await device.queue.onSubmittedWorkDone();
    if (round > 0) best = Math.min(best, (performance.now() - t0) / REPEATS); // round 0 warms up
  }
  return best;
}

async function profile(bench: BenchContext, model: GpuModel, L: number, name: string, policy: AttentionPolicy) {
  fillKv(model, L - 1);
  const timed = await timeDecode(model, L, policy, 3);
  const device = bench.gpu.device;
  // Steps 0 and 1 of a fresh generation; step 1 is recorded (step 0 seeds every policy with full attention).
  model.beginGeneration(policy);
  model.submitStep(5, L - 1, GREEDY_SAMPLING, 0);
  await model.takeToken();
  const step = await recordDispatches(device, async () => {
    model.submitStep('sampled', L, GREEDY_SAMPLING, 1);
    await model.takeToken();
  });
  const layers = LLAMA_1B.numLayers;
  // Embedding first, then `perLayer` dispatches per layer, then the step-level tail (LM head, sampler; a final norm
  // where the decode is not fused).
  const tail = (step.length - 1) % layers;
  const perLayer = (step.length - 1 - tail) / layers;
  if (!Number.isInteger(perLayer)) throw new Error(`decode-profile: ${step.length} dispatches do not split by layer`);
  const rows: BenchRow[] = [];
  let sum = 0;
  const slots = [0, ...Array.from({ length: perLayer }, (_, i) => 1 + i), step.length - 2, step.length - 1];
  for (const i of slots) {
    const d = step[i];
    const ms = await replayMs(device, d);
    const count = i >= 1 && i < step.length - tail ? layers : 1;
    sum += ms * count;
    rows.push({
      context: L,
      policy: name,
      kernel: d.pipeline.label,
      workgroups: d.workgroups.join('x'),
      ms_each: ms,
      per_step: count,
      ms_per_step: ms * count,
    });
  }
  const stepMs = timed.stepMs.slice().sort((a, b) => a - b)[timed.stepMs.length >> 1];
  rows.push({ context: L, policy: name, kernel: '(sum of the rows)', ms_per_step: sum });
  rows.push({ context: L, policy: name, kernel: '(pipelined step, median of 3)', ms_per_step: stepMs });
  bench.log(`  ${name} at ${L}: ${step.length} dispatches, sum ${sum.toFixed(1)} ms, step ${stepMs.toFixed(1)} ms`);
  return rows;
}

/** ms per replayed dispatch of a kernel that does nothing but write one word: what every row's ms_each includes
 * besides its kernel (the submit and wait shared by REPEATS dispatches, and a dispatch's own cost). */
async function replayOverheadMs(bench: BenchContext): Promise<number> {
  const word = storageBuffer(bench.gpu, 4);
  const pipeline = computePipeline(
    bench.gpu,
    '@group(0) @binding(0) var<storage, read_write> w: array<u32>;\n@compute @workgroup_size(1) fn main() { w[0] = 1u; }',
    'decode-profile.empty',
  );
  const ms = await replayMs(bench.gpu.device, {
    pipeline,
    groups: new Map([[0, bindGroup(bench.gpu, pipeline, [word])]]),
    workgroups: [1, 1, 1],
  });
  word.destroy();
  return ms;
}

const section: BenchSection = {
  name: 'decode-profile',
  description: 'per-kernel time of one 1B decode step (full, and refresh on every step), replayed kernel by kernel',
  order: 25,
  explicitOnly: true,
  async run(bench): Promise<BenchRow[]> {
    const rows: BenchRow[] = [
      { kernel: '(replay overhead: an empty kernel)', workgroups: '1x1x1', ms_each: await replayOverheadMs(bench) },
    ];
    for (const L of bench.large ? [1024, 8192] : [1024]) {
      const config = syntheticConfig(LLAMA_1B, L + 64, bench.gpu.f16);
      const model = await GpuModel.create(bench.gpu, config, syntheticWeights(LLAMA_1B, bench.gpu.f16), {
        contextWindow: L + 64,
        prefillChunk: 256,
      });
      try {
        bench.log(`decode-profile: ${LLAMA_1B.name} at ${L}`);
        rows.push(...(await profile(bench, model, L, 'full', { kind: 'full' })));
        const refresh: AttentionPolicy = { kind: 'recycled', k: { count: L / 8 }, stride: 1 };
        rows.push(...(await profile(bench, model, L, 'refresh every step', refresh)));
      } finally {
        model.dispose();
      }
    }
    return rows;
  },
};

export default section;
