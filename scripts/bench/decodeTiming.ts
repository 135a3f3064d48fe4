// Decode-step timing on the engine's own pipelined loop (GpuModel.submitStep/takeToken, two steps in flight, the
// sampled id fed back on the GPU), after the KV cache was filled with synthetic values: timing does not depend on
// the values, and a long prefill on a CPU adapter would take minutes.
import type { GpuModel } from '../../core/engine/gpuModel';
import { GREEDY_SAMPLING } from '../../core/engine/runner';
import type { AttentionPolicy } from '../../core/engine/types';
import { f32ToF16Bits } from '../../kernels/half';

/** Writes plausible values (small, finite) into positions [0, length) of every layer. */
export function fillKv(model: GpuModel, length: number): void {
  const { dtype, kvHeads, headDim, numLayers } = model.kvInfo;
  const n = kvHeads * length * headDim;
  let s = 12345;
  const pattern = new Float32Array(1 << 16).map(() => {
    s = (s * 1103515245 + 12345) >>> 0;
    return (s / 2 ** 32 - 0.5) * 2;
  });
  const bytes =
    dtype === 'f16'
      ? new Uint8Array(Uint16Array.from({ length: n }, (_, i) => f32ToF16Bits(pattern[i & 0xffff])).buffer)
      : new Uint8Array(Float32Array.from({ length: n }, (_, i) => pattern[i & 0xffff]).buffer);
  for (let l = 0; l < numLayers; l++) model.writeKvLayer(l, length, bytes, bytes);
}

export interface DecodeTiming {
  /** Wall-clock ms per decode step in steady state (steps 1..steps, the seed step 0 excluded). */
  msPerStep: number;
  dispatchesPerToken: number | null;
  dispatchesPerRefreshToken: number | null;
  uniformWritesPerToken: number;
}

/** Decodes steps 0..steps at positions L-1.. (KV of 0..L-2 already filled) and times steps 1..steps. */
export async function timeDecode(
  model: GpuModel,
  L: number,
  policy: AttentionPolicy,
  steps: number,
): Promise<DecodeTiming> {
  model.beginGeneration(policy);
  model.submitStep(5, L - 1, GREEDY_SAMPLING, 0); // the seed step (full attention, first top-K)
  await model.takeToken();
  const t0 = performance.now();
  let submitted = 1;
  const submit = () => {
    model.submitStep('sampled', L - 1 + submitted, GREEDY_SAMPLING, submitted);
    submitted++;
  };
  submit();
  for (let taken = 1; taken <= steps; taken++) {
    if (submitted <= steps) submit();
    await model.takeToken();
  }
  const msPerStep = (performance.now() - t0) / steps;
  const r = model.runtimeStats();
  return {
    msPerStep,
    dispatchesPerToken: r.dispatchesPerToken,
    dispatchesPerRefreshToken: r.dispatchesPerRefreshToken,
    uniformWritesPerToken: r.uniformWritesPerToken,
  };
}
