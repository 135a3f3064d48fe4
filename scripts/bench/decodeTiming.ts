// Decode-step timing on the engine's own pipelined loop (GpuModel.submitStep/takeToken, two steps in flight, the
// sampled id fed back on the GPU), after the KV cache was filled with synthetic values: timing does not depend on
// the values, and a long prefill on a CPU adapter would take minutes (1K tokens of the 1B shape: ~10 minutes on
// lavapipe).
import type { GpuModel } from '../../core/engine/gpuModel';

import { GREEDY_SAMPLING, type KvInfo } from '../../core/engine/runner';
import type { AttentionPolicy } from '../../core/engine/types';
import { f32ToF16Bits } from '../../kernels/half';
import { xorshift } from './syntheticModel';

/** 65,536 values uniform in [-1, 1] (f16 rounds the ends to ±1), as the cache stores them (f16 bits or f32): one table lookup per element keeps
 * an 8K-token fill of the 1B shape (134M values) under a second or two. */
const valueTables = new Map<KvInfo['dtype'], Uint16Array | Float32Array>();
function valueTable(dtype: KvInfo['dtype']): Uint16Array | Float32Array {
  let t = valueTables.get(dtype);
  if (!t) {
    const values = Float32Array.from({ length: 1 << 16 }, (_, i) => (i + 0.5) / 2 ** 15 - 1);
    t = dtype === 'f16' ? Uint16Array.from(values, f32ToF16Bits) : values;
    valueTables.set(dtype, t);
  }
  return t;
}

/**
 * The synthetic K and V of one layer, positions [0, length), in the layout writeKvLayer takes ([kvHead][position]
 * [headDim], the cache's dtype): independent seeded uniform values in [-1, 1], different per layer and for K and V,
 * so scores spread as they do over real keys (the top-K selection's passes see distinct values, not ties).
 */
export function syntheticKvLayer(
  info: KvInfo,
  layer: number,
  length: number,
  seed = 1,
): { k: Uint8Array; v: Uint8Array } {
  const n = info.kvHeads * length * info.headDim;
  const table = valueTable(info.dtype);
  const make = (stream: number) => {
    const rand = xorshift((seed * 0x9e3779b1 + layer * 2 + stream + 1) >>> 0);
    const out = info.dtype === 'f16' ? new Uint16Array(n) : new Float32Array(n);
    for (let i = 0; i < n; i += 2) {
      const r = rand();
      out[i] = table[r & 0xffff];
      if (i + 1 < n) out[i + 1] = table[r >>> 16];
    }
    return new Uint8Array(out.buffer);
  };
  return { k: make(0), v: make(1) };
}

/** Writes synthetic K/V (syntheticKvLayer) into positions [0, length) of every layer. */
export function fillKv(model: GpuModel, length: number, seed = 1): void {
  const info = model.kvInfo;
  for (let l = 0; l < info.numLayers; l++) {
    const { k, v } = syntheticKvLayer(info, l, length, seed);
    model.writeKvLayer(l, length, k, v);
  }
}

export function median(values: number[]): number {
  if (values.length === 0) throw new Error('median of no values');
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export interface DecodeTiming {
  /** Wall-clock ms per decode step over the timed steps (steps 1..steps; the seed step 0 excluded): their mean. */
  msPerStep: number;
  /** Each timed step's ms: the time between consecutive tokens arriving (two steps in flight, so in steady state
   * one step's GPU time), the first from the seed token's arrival. */
  stepMs: number[];
  dispatchesPerToken: number | null;
  dispatchesPerRefreshToken: number | null;
  uniformWritesPerToken: number;
}

/** Decodes steps 0..steps at positions L-1.. (KV of 0..L-2 already filled) and times steps 1..steps. Step 0 is the
 * seed: a full step (with the first top-K under a recycled policy), not timed. */
export async function timeDecode(
  model: GpuModel,
  L: number,
  policy: AttentionPolicy,
  steps: number,
): Promise<DecodeTiming> {
  model.beginGeneration(policy);
  model.submitStep(5, L - 1, GREEDY_SAMPLING, 0);
  await model.takeToken();
  const t0 = performance.now();
  let submitted = 1;
  const submit = () => {
    model.submitStep('sampled', L - 1 + submitted, GREEDY_SAMPLING, submitted);
    submitted++;
  };
  submit();
  const stepMs: number[] = [];
  let last = t0;
  for (let taken = 1; taken <= steps; taken++) {
    if (submitted <= steps) submit();
    await model.takeToken();
    const now = performance.now();
    stepMs.push(now - last);
    last = now;
  }
  const msPerStep = (last - t0) / steps;
  const r = model.runtimeStats();
  return {
    msPerStep,
    stepMs,
    dispatchesPerToken: r.dispatchesPerToken,
    dispatchesPerRefreshToken: r.dispatchesPerRefreshToken,
    uniformWritesPerToken: r.uniformWritesPerToken,
  };
}

/** One policy's figures over the rounds of timeAlternating. */
export interface AlternatingResult {
  /** Median over rounds of the round's mean step time (one whole schedule period per round). */
  ms: number;
  /** Median over rounds of (this policy's round time / the reference policy's time in the same round). */
  ratio: number;
  /** Each round's mean step time. */
  roundsMs: number[];
}

/**
 * Per-policy step times from rounds measured in alternation (round r: every policy in turn), so that every ratio
 * compares seconds close together on a machine whose load changes by the minute: each policy's step time is the
 * median of its round means, its ratio the median of its per-round ratios to `reference` (paired by round).
 */
export function summarizeRounds(
  rounds: Record<string, number>[],
  reference: string,
): Record<string, AlternatingResult> {
  if (rounds.length === 0) throw new Error('no rounds');
  const names = Object.keys(rounds[0]);
  if (!names.includes(reference)) throw new Error(`reference policy ${reference} not in the rounds`);
  const out: Record<string, AlternatingResult> = {};
  for (const name of names) {
    const roundsMs = rounds.map((r, i) => {
      const ms = r[name];
      if (!(ms > 0)) throw new Error(`round ${i}: no time for ${name}`);
      return ms;
    });
    out[name] = {
      ms: median(roundsMs),
      ratio: median(rounds.map((r) => r[name] / r[reference])),
      roundsMs,
    };
  }
  return out;
}
