// The selection of several layers in one set of dispatches (core/attention/selection.ts): each layer's rows at their
// strides in the shared pooled, index and state buffers, against the plain-TS top-K; a layer on a recycled step
// untouched; rows in one chunk and in many; a step where no layer asked encodes nothing.
import { describe, expect, test } from 'vitest';
import { createModelSelection } from '../../../core/attention/selection';
import { STATE } from '../../../kernels/decodeAttention/decodeAttention.wgsl';
import type { GpuContext } from '../../../kernels/gpuContext';
import { align, runPass, storageBuffer, writeBuffer } from '../../../kernels/gpuUtil';
import { createRadixSelect } from '../../../kernels/topk/topk';
import { referenceRankedTopK, referenceTopK } from '../../../kernels/topk/topk.reference';
import { testGpu } from '../setup';
import { readU32, rng } from './recycledHelpers';

const SENTINEL = 0xdeadbeef;

/** The layers' state records at `stride` bytes: flag per layer, nSel = min(k, L). */
function statesBuffer(ctx: GpuContext, flags: number[], stride: number, nSel: number): GPUBuffer {
  const words = new Uint32Array((stride / 4) * flags.length);
  flags.forEach((flag, layer) => {
    words[(layer * stride) / 4 + STATE.flag] = flag;
    words[(layer * stride) / 4 + STATE.nSel] = nSel;
  });
  return storageBuffer(ctx, words);
}

/** Pooled-like rows >= 0 on a coarse grid (plateaus and ties), one per KV head of each layer. */
function makeRows(layers: number, kvHeads: number, L: number, seed: number): Float32Array[][] {
  const rand = rng(seed);
  return Array.from({ length: layers }, () =>
    Array.from({ length: kvHeads }, () => Float32Array.from({ length: L }, () => Math.floor(rand() * 40) / 64)),
  );
}

describe('one selection for several layers', async () => {
  const ctx = await testGpu();
  const recordBytes = align(STATE.words * 4, ctx.device.limits.minStorageBufferOffsetAlignment);

  for (const { layers, kvHeads, capacity, L, k, rank, flags } of [
    // A capacity whose rows are not a multiple of the offset alignment; the middle layer on a recycled step.
    { layers: 3, kvHeads: 2, capacity: 1031, L: 1031, k: 129, rank: true, flags: [1, 0, 1] },
    { layers: 4, kvHeads: 3, capacity: 700, L: 517, k: 65, rank: false, flags: [0, 1, 1, 0] },
    { layers: 2, kvHeads: 1, capacity: 300, L: 7, k: 20, rank: true, flags: [1, 1] },
  ]) {
    test(`${layers} layers × ${kvHeads} KV heads, L ${L} of ${capacity}, K ${k}, ${rank ? 'ranked' : 'ascending'}, flags ${flags}`, async () => {
      const rows = makeRows(layers, kvHeads, L, layers * 100 + kvHeads + L);
      const idxStride = k;
      const states = statesBuffer(ctx, flags, recordBytes, Math.min(k, L));
      const sel = createModelSelection(ctx, {
        layers,
        kvHeads,
        capacity,
        idxStride,
        states: { buffer: states, offset: 0 },
        stateStride: recordBytes,
        rank,
      });
      try {
        for (let layer = 0; layer < layers; layer++) {
          const values = new Float32Array(kvHeads * capacity);
          rows[layer].forEach((r, h) => {
            values.set(r, h * capacity);
          });
          const pooled = sel.pooled(layer);
          writeBuffer(ctx, pooled.buffer, values, pooled.offset);
          const indices = sel.indices(layer);
          writeBuffer(ctx, indices.buffer, new Uint32Array(kvHeads * idxStride).fill(SENTINEL), indices.offset);
        }
        sel.request(L, k);
        sel.request(L, k); // every layer of a step asks alike
        runPass(ctx, (pass) => sel.encodePending(pass));
        for (let layer = 0; layer < layers; layer++) {
          const got = await readU32(ctx, sel.indices(layer), kvHeads * idxStride);
          rows[layer].forEach((r, h) => {
            const row = Array.from(got.subarray(h * idxStride, (h + 1) * idxStride));
            const kept = Math.min(k, L);
            if (flags[layer] === 0) {
              expect(
                row.every((v) => v === SENTINEL),
                `layer ${layer} (recycled step) untouched`,
              ).toBe(true);
              return;
            }
            const want = rank ? referenceRankedTopK(r, k) : referenceTopK(r, k);
            expect(row.slice(0, kept), `layer ${layer} head ${h}`).toEqual(want);
            expect(row.slice(kept).every((v) => v === SENTINEL)).toBe(true);
          });
        }
      } finally {
        sel.destroy();
        states.destroy();
      }
    });
  }

  test('rows in many chunks, several layers: the radix select alone', async () => {
    const layers = 3;
    const kvHeads = 2;
    const capacity = 4099;
    const L = 4099;
    const k = 511;
    const rows = makeRows(layers, kvHeads, L, 7);
    // Layer strides that are not the rows' own sizes (padding between layers).
    const valuesStride = kvHeads * capacity + 13;
    const idxLayerStride = kvHeads * k + 5;
    const values = new Float32Array(valuesStride * layers);
    rows.forEach((layerRows, layer) => {
      layerRows.forEach((r, h) => {
        values.set(r, layer * valuesStride + h * capacity);
      });
    });
    const valueBuffer = storageBuffer(ctx, values);
    const idx = storageBuffer(ctx, new Uint32Array(idxLayerStride * layers).fill(SENTINEL));
    const states = statesBuffer(ctx, [1, 1, 0], recordBytes, k);
    const select = createRadixSelect(ctx, {
      kvHeads,
      capacity,
      values: valueBuffer,
      state: states,
      idx,
      idxStride: k,
      minChunk: 256,
      maxChunks: Math.ceil(capacity / 256),
      layers: { layers, valuesStride, idxLayerStride, stateStride: recordBytes / 4 },
    });
    try {
      runPass(ctx, (pass) => select.encode(pass, { kvLen: L, k }));
      const got = await readU32(ctx, idx);
      rows.forEach((layerRows, layer) => {
        layerRows.forEach((r, h) => {
          const start = layer * idxLayerStride + h * k;
          const row = Array.from(got.subarray(start, start + k));
          if (layer === 2) expect(row.every((v) => v === SENTINEL)).toBe(true);
          else expect(row, `layer ${layer} head ${h}`).toEqual(referenceTopK(r, k));
        });
        const pad = got.subarray(layer * idxLayerStride + kvHeads * k, (layer + 1) * idxLayerStride);
        expect(
          Array.from(pad).every((v) => v === SENTINEL),
          `padding after layer ${layer}`,
        ).toBe(true);
      });
    } finally {
      select.destroy();
      for (const b of [valueBuffer, idx, states]) b.destroy();
    }
  });

  test('no layer asked: nothing is encoded; layers asking for different selections get a clear error', async () => {
    const states = statesBuffer(ctx, [1, 1], recordBytes, 4);
    const sel = createModelSelection(ctx, {
      layers: 2,
      kvHeads: 1,
      capacity: 64,
      idxStride: 4,
      states: { buffer: states, offset: 0 },
      stateStride: recordBytes,
      rank: true,
    });
    try {
      const indices = sel.indices(1);
      writeBuffer(ctx, indices.buffer, new Uint32Array(4).fill(SENTINEL), indices.offset);
      const pooled = sel.pooled(1);
      writeBuffer(
        ctx,
        pooled.buffer,
        Float32Array.from({ length: 64 }, (_, i) => i),
        pooled.offset,
      );
      let dispatches = 0;
      runPass(ctx, (pass) => {
        const counting = new Proxy(pass, {
          get(target, prop) {
            if (prop === 'dispatchWorkgroups') dispatches++;
            const v = Reflect.get(target, prop);
            return typeof v === 'function' ? v.bind(target) : v;
          },
        });
        sel.encodePending(counting);
      });
      expect(dispatches).toBe(0);
      expect(Array.from(await readU32(ctx, indices, 4))).toEqual([SENTINEL, SENTINEL, SENTINEL, SENTINEL]);
      sel.request(64, 4);
      expect(() => sel.request(64, 5)).toThrow(/different selections/);
      expect(() => sel.indices(2)).toThrow(/layer 2 outside 0..1/);
    } finally {
      sel.destroy();
      states.destroy();
    }
  });
});
