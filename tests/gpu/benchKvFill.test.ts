// The bench's synthetic KV (scripts/bench/decodeTiming.ts fillKv): what the decode and prefill benches time over
// instead of a long prefill on CPU adapters. It must land where the engine's own KV lands (every layer, positions
// [0, length), nothing past them), hold values like real keys (finite, spread over [-1, 1], distinct per layer and
// for K and V, so the top-K sees no ties), and be reproducible from its seed.
import { describe, expect, test } from 'vitest';
import { GpuModel } from '../../core/engine/gpuModel';
import { GREEDY_SAMPLING } from '../../core/engine/runner';
import { f16BitsToF32 } from '../../kernels/half';
import { fillKv, syntheticKvLayer } from '../../scripts/bench/decodeTiming';
import { SMALL, syntheticConfig, syntheticWeights } from '../../scripts/bench/syntheticModel';
import { testGpu } from './setup';

const CAPACITY = 64;
const LENGTH = 41; // not a multiple of any workgroup size

async function smallModel(): Promise<GpuModel> {
  const ctx = await testGpu();
  return GpuModel.create(ctx, syntheticConfig(SMALL, CAPACITY, ctx.f16), syntheticWeights(SMALL, ctx.f16), {
    contextWindow: CAPACITY,
  });
}

function values(bytes: Uint8Array, dtype: 'f16' | 'f32'): number[] {
  if (dtype === 'f32') return [...new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4)];
  return [...new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2)].map(f16BitsToF32);
}

describe('bench synthetic KV', () => {
  test('fills every layer at [0, length) with seeded uniform values, nothing past length', async () => {
    const model = await smallModel();
    try {
      const info = model.kvInfo;
      expect(info.numLayers).toBe(SMALL.numLayers);
      const before = await Promise.all(
        Array.from({ length: info.numLayers }, (_, l) => model.readKvLayer(l, CAPACITY)),
      );
      fillKv(model, LENGTH, 3);
      const slab = (info.dtype === 'f16' ? 2 : 4) * info.headDim;
      for (let l = 0; l < info.numLayers; l++) {
        const got = await model.readKvLayer(l, CAPACITY);
        const want = syntheticKvLayer(info, l, LENGTH, 3);
        for (const kv of ['k', 'v'] as const) {
          for (let h = 0; h < info.kvHeads; h++) {
            const row = (b: Uint8Array, len: number, from: number, to: number) =>
              b.subarray((h * len + from) * slab, (h * len + to) * slab);
            // [0, LENGTH) is what fillKv generated, in the layout readKvLayer returns ([head][position][dim]).
            expect(row(got[kv], CAPACITY, 0, LENGTH)).toEqual(row(want[kv], LENGTH, 0, LENGTH));
            // Past LENGTH the cache is as it was.
            expect(row(got[kv], CAPACITY, LENGTH, CAPACITY)).toEqual(row(before[l][kv], CAPACITY, LENGTH, CAPACITY));
          }
          const v = values(want[kv], info.dtype);
          expect(v).toHaveLength(info.kvHeads * LENGTH * info.headDim);
          expect(v.every((x) => Number.isFinite(x) && x >= -1 && x <= 1)).toBe(true);
          const mean = v.reduce((a, b) => a + b, 0) / v.length;
          const sd = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
          expect(Math.abs(mean)).toBeLessThan(0.06); // uniform on [-1, 1]: mean 0, sd 0.577
          expect(sd).toBeGreaterThan(0.5);
          expect(sd).toBeLessThan(0.65);
          expect(new Set(v).size).toBeGreaterThan(v.length / 2); // not a repeated pattern
        }
        expect(want.k).not.toEqual(want.v);
      }
      const layer0 = syntheticKvLayer(info, 0, LENGTH, 3);
      expect(syntheticKvLayer(info, 1, LENGTH, 3).k).not.toEqual(layer0.k);
      expect(syntheticKvLayer(info, 0, LENGTH, 3)).toEqual(layer0); // reproducible
      expect(syntheticKvLayer(info, 0, LENGTH, 4).k).not.toEqual(layer0.k); // seeded
    } finally {
      model.dispose();
    }
  });

  test('the model decodes over it: finite logits at the next position, under full and recycled attention', async () => {
    const model = await smallModel();
    try {
      fillKv(model, LENGTH);
      for (const policy of [{ kind: 'full' } as const, { kind: 'recycled', k: { count: 8 }, stride: 4 } as const]) {
        model.beginGeneration(policy);
        await model.decodeStep(5, LENGTH, GREEDY_SAMPLING, 0);
        const logits = await model.readLogits();
        expect(logits).toHaveLength(SMALL.vocabSize);
        expect(logits.every(Number.isFinite)).toBe(true);
        expect(new Set(logits).size).toBeGreaterThan(1);
      }
    } finally {
      model.dispose();
    }
  });
});
