// The decode step's attention (kernels/decodeAttention with ropeNewToken): the split kernel reads the qkv row before
// RoPE, rotates the queries itself and stores the new token's rotated k and its v at position kvLen - 1; the splits
// are combined by the combine kernel, or by the o matvec's splitCombine prologue with the head-stats kernel beside it.
// Checked against the plain-TS references composed (ropeReference -> referenceDecodeAttention -> matvec reference),
// and the stored row against what the RoPE kernel stores for the same qkv row (the prefill path's kernel), on full
// and recycled steps, GQA, head dims and context lengths that are no multiple of the workgroup, a new token at the
// last cache slot, recycled lists so short that trailing splits are empty, and a 32K context.
import { describe, expect, test } from 'vitest';
import { ropeInverseFrequencies } from '../../../core/model/rope';
import {
  CPU_TARGET_CHUNK,
  createDecodeAttentionScratch,
  createSplitAttention,
  emptyIndexBuffer,
  fullAttentionState,
  splitCountFor,
  TARGET_CHUNK,
} from '../../../kernels/decodeAttention/decodeAttention';
import {
  fullPositions,
  type ReferenceAttentionOutput,
  referenceDecodeAttention,
} from '../../../kernels/decodeAttention/decodeAttention.reference';
import { MAX_SPLITS, STATE } from '../../../kernels/decodeAttention/decodeAttention.wgsl';
import { dequantizeLinear } from '../../../kernels/dequantize';
import type { GpuContext } from '../../../kernels/gpuContext';
import { readBuffer, runPass, storageBuffer } from '../../../kernels/gpuUtil';
import { f16ArrayToF32, roundToF16 } from '../../../kernels/half';
import { createMatvec } from '../../../kernels/matvec/matvec';
import { matvecReference } from '../../../kernels/matvec/matvec.reference';
import { RopeKernel, uploadInverseFrequencies } from '../../../kernels/rope/rope';
import { ropeReference } from '../../../kernels/rope/rope.reference';
import { testGpu } from '../setup';
import { randomHost, rawUpload } from './matvecHelpers';
import { type AttentionCase, kvDtypes, makeKv, maxAbsDiff, randomArray, readF32, rng } from './recycledHelpers';

interface Case extends AttentionCase {
  /** A recycled step: the first nAttend selected positions (below lastFullLen), then lastFullLen..kvLen-1. */
  recycled?: { nAttend: number; lastFullLen: number };
  /** Also run the o projection with the splitCombine prologue (a q4f32 weight of this many rows). */
  oRows?: number;
  /** Positions per split (default TARGET_CHUNK, a GPU's: many splits even on the CPU drivers). */
  targetChunk?: number;
  /** The split kernel (default: the adapter's). */
  kernel?: 'tiled' | 'lanes';
}

const LLAMA_3_2_ROPE = {
  headDim: 0,
  ropeTheta: 500000,
  ropeScaling: {
    type: 'llama3' as const,
    factor: 32,
    lowFreqFactor: 1,
    highFreqFactor: 4,
    originalMaxPositionEmbeddings: 8192,
  },
};

/** Distinct positions below `below`, in random order. */
function randomSelection(count: number, below: number, rand: () => number): number[] {
  const all = Array.from({ length: below }, (_, i) => i);
  for (let i = all.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [all[i], all[j]] = [all[j], all[i]];
  }
  return all.slice(0, count);
}

async function runCase(ctx: GpuContext, c: Case, dtype: 'f16' | 'f32', seed: number) {
  const { numHeads, kvHeads, headDim, kvLen, capacity } = c;
  const layout = { dtype, kvHeads, headDim, capacity };
  const pos = kvLen - 1;
  // The cache holds positions < pos; the new token's row is zero until the kernel stores it.
  const kv = makeKv(ctx, layout, pos, seed);
  const rand = rng(seed + 1);
  const qkvHost = randomArray((numHeads + 2 * kvHeads) * headDim, rand, 2);
  const qkv = storageBuffer(ctx, qkvHost);
  const invFreqHost = ropeInverseFrequencies({ ...LLAMA_3_2_ROPE, headDim });
  const invFreq = uploadInverseFrequencies(ctx, invFreqHost);

  const idxStride = c.recycled ? Math.max(1, c.recycled.nAttend) : 1;
  const selection = c.recycled
    ? Array.from({ length: kvHeads }, () =>
        randomSelection(c.recycled?.nAttend ?? 0, c.recycled?.lastFullLen ?? 0, rand),
      )
    : [];
  let state: GPUBuffer;
  let idx: GPUBuffer;
  if (c.recycled) {
    const words = new Uint32Array(STATE.words);
    words[STATE.flag] = 0;
    words[STATE.lastFullLen] = c.recycled.lastFullLen;
    words[STATE.nSel] = c.recycled.nAttend;
    words[STATE.nAttend] = c.recycled.nAttend;
    state = storageBuffer(ctx, words);
    idx = storageBuffer(
      ctx,
      Uint32Array.from(selection.flatMap((row) => row.concat(new Array(idxStride - row.length).fill(0)))),
    );
  } else {
    state = fullAttentionState(ctx);
    idx = emptyIndexBuffer(ctx);
  }
  const out = storageBuffer(ctx, numHeads * headDim * 4);
  const scratch = createDecodeAttentionScratch(ctx, { numHeads, capacity, headDim });
  const attn = createSplitAttention(ctx, {
    layout,
    numHeads,
    k: kv.k,
    v: kv.v,
    q: qkv,
    out,
    idx,
    idxStride,
    state,
    scratch,
    ropeNewToken: { invFreq },
    targetChunk: c.targetChunk ?? TARGET_CHUNK,
    kernel: c.kernel,
  });
  if (c.kernel) expect(attn.kernel).toBe(c.kernel);

  // Reference: RoPE of the qkv row at pos, the new k (rounded like the cache) and v stored at pos, attention.
  const rope = ropeReference(qkvHost, {
    tokens: 1,
    startPos: pos,
    numHeads,
    numKvHeads: kvHeads,
    headDim,
    invFreq: invFreqHost,
  });
  const round = dtype === 'f16' ? roundToF16 : (x: number) => x;
  for (let h = 0; h < kvHeads; h++) {
    const at = (h * capacity + pos) * headDim;
    for (let d = 0; d < headDim; d++) {
      kv.kHost[at + d] = round(rope.k[h * headDim + d]);
      kv.vHost[at + d] = round(rope.v[h * headDim + d]);
    }
  }
  const positions = c.recycled
    ? selection.map((row) => [
        ...row,
        ...Array.from({ length: kvLen - (c.recycled?.lastFullLen ?? 0) }, (_, i) => (c.recycled?.lastFullLen ?? 0) + i),
      ])
    : fullPositions(kvHeads, kvLen);
  const ref = referenceDecodeAttention({
    q: rope.q,
    k: kv.kHost,
    v: kv.vHost,
    numHeads,
    kvHeads,
    headDim,
    capacity,
    positions,
  });

  // 1. Split + combine kernel.
  runPass(ctx, (pass) => attn.encode(pass, { kvLen }));
  const gotOut = await readF32(ctx, out);
  const gotStats = await readF32(ctx, scratch.headStats, numHeads * 2);
  const gotScores = await readF32(ctx, scratch.scores);
  checkAttention(c, ref, gotOut, gotStats, gotScores, positions);

  // 2. The stored row is the RoPE kernel's, bit for bit (same arithmetic: the prefill path and the decode step give
  // the same cache).
  const ropeKv = { k: storageBuffer(ctx, kv.k.size), v: storageBuffer(ctx, kv.v.size) };
  const ropeKernel = new RopeKernel(ctx, {
    numHeads,
    numKvHeads: kvHeads,
    headDim,
    invFreq,
    qkv,
    q: storageBuffer(ctx, numHeads * headDim * 4),
    kv: ropeKv,
    layout,
    maxTokens: 1,
  });
  runPass(ctx, (pass) => ropeKernel.encode(pass, 1, pos));
  const bytes = dtype === 'f16' ? 2 : 4;
  for (const [name, fused, plain] of [
    ['k', kv.k, ropeKv.k],
    ['v', kv.v, ropeKv.v],
  ] as const) {
    for (let h = 0; h < kvHeads; h++) {
      const at = (h * capacity + pos) * headDim * bytes;
      const a = new Uint8Array(await readBuffer(ctx, fused, headDim * bytes, at));
      const b = new Uint8Array(await readBuffer(ctx, plain, headDim * bytes, at));
      expect(Buffer.from(a).equals(Buffer.from(b)), `${name} row of kv head ${h} at ${pos}`).toBe(true);
    }
  }
  // Nothing else in the caches changed.
  for (const [name, buffer, host] of [
    ['k', kv.k, kv.kHost],
    ['v', kv.v, kv.vHost],
  ] as const) {
    const raw = await readBuffer(ctx, buffer);
    const got = dtype === 'f16' ? f16ArrayToF32(new Uint16Array(raw)) : new Float32Array(raw);
    let changed = 0;
    for (let h = 0; h < kvHeads; h++) {
      for (let p = 0; p < capacity; p++) {
        if (p === pos) continue;
        const at = (h * capacity + p) * headDim;
        for (let d = 0; d < headDim; d++) if (got[at + d] !== host[at + d]) changed++;
      }
    }
    expect(changed, `${name} cache values changed outside the new token's row`).toBe(0);
  }

  // 3. Splits only, the head statistics beside them, and the o projection combining the splits in its prologue.
  if (c.oRows) {
    writeZeros(ctx, scratch.headStats);
    const wHost = randomHost('q4f32', c.oRows, numHeads * headDim, seed + 2);
    const weight = rawUpload(ctx, wHost);
    const y = storageBuffer(ctx, c.oRows * 4);
    const o = createMatvec(ctx, {
      weight,
      input: scratch.partAcc,
      output: y,
      splitCombine: {
        maxSum: scratch.partMaxSum,
        splitCount: attn.splitCount,
        heads: numHeads,
        headDim,
        maxSplits: MAX_SPLITS,
      },
    });
    runPass(ctx, (pass) => {
      attn.encodeSplits(pass, { kvLen });
      attn.encodeHeadStats(pass);
      o.encode(pass);
    });
    const stats = await readF32(ctx, scratch.headStats, numHeads * 2);
    checkStats(c, ref, stats);
    const gotY = await readF32(ctx, y);
    const wantY = matvecReference(wHost, ref.out);
    // The attention output's error (< 2e-4 per element, as checkAttention allows) through sum |w|, plus the
    // matvec's own (1e-5 * sum |w x|).
    const w = dequantizeLinear(wHost);
    const cols = numHeads * headDim;
    for (let r = 0; r < c.oRows; r++) {
      let absW = 0;
      let absWx = 0;
      for (let col = 0; col < cols; col++) {
        absW += Math.abs(w[r * cols + col]);
        absWx += Math.abs(w[r * cols + col] * ref.out[col]);
      }
      expect(Math.abs(gotY[r] - wantY[r]), `o row ${r}`).toBeLessThanOrEqual(2e-4 * absW + 1e-5 * absWx + 1e-6);
    }
    o.destroy();
  }
  return { numSplits: splitCountFor(kvLen, attn.targetChunk) };
}

function writeZeros(ctx: GpuContext, b: GPUBuffer): void {
  ctx.device.queue.writeBuffer(b, 0, new Uint8Array(b.size));
}

function checkStats(c: Case, ref: ReferenceAttentionOutput, stats: Float32Array): void {
  for (let h = 0; h < c.numHeads; h++) {
    expect(stats[h * 2]).toBeCloseTo(ref.maxLogit[h], 3);
    expect(Math.abs(stats[h * 2 + 1] / ref.sumExp[h] - 1)).toBeLessThan(1e-4);
  }
}

function checkAttention(
  c: Case,
  ref: ReferenceAttentionOutput,
  out: Float32Array,
  stats: Float32Array,
  scores: Float32Array,
  positions: number[][],
): void {
  expect(maxAbsDiff(out, ref.out)).toBeLessThan(2e-4);
  checkStats(c, ref, stats);
  const group = c.numHeads / c.kvHeads;
  for (let h = 0; h < c.numHeads; h++) {
    const n = positions[Math.floor(h / group)].length;
    const row = scores.subarray(h * c.capacity, h * c.capacity + n);
    expect(maxAbsDiff(row, ref.logits[h])).toBeLessThan(1e-3);
  }
}

describe('decode-step attention: RoPE + KV store in the split kernel, combine in its consumer', async () => {
  const ctx = await testGpu();
  const cases: [string, Case][] = [
    ['full, the new token alone (kvLen 1)', { numHeads: 8, kvHeads: 2, headDim: 64, kvLen: 1, capacity: 4100 }],
    ['full, 3 splits, GQA 4', { numHeads: 8, kvHeads: 2, headDim: 64, kvLen: 513, capacity: 4100, oRows: 37 }],
    [
      'full, d80 (HALF 40), new token in the last cache slot',
      { numHeads: 6, kvHeads: 2, headDim: 80, kvLen: 333, capacity: 333 },
    ],
    ['full, 32 q / 8 kv heads', { numHeads: 32, kvHeads: 8, headDim: 64, kvLen: 37, capacity: 64 }],
    [
      "full, d128, a CPU adapter's 1024-position splits (3, the last partial)",
      { numHeads: 4, kvHeads: 2, headDim: 128, kvLen: 2300, capacity: 2304, targetChunk: CPU_TARGET_CHUNK, oRows: 9 },
    ],
    [
      'recycled, 9 attended over 8 splits (the new token in split 4, splits 5-7 empty)',
      {
        numHeads: 8,
        kvHeads: 2,
        headDim: 64,
        kvLen: 2000,
        capacity: 4100,
        recycled: { nAttend: 5, lastFullLen: 1996 },
        oRows: 37,
      },
    ],
    [
      'recycled, no GQA, d32',
      { numHeads: 4, kvHeads: 4, headDim: 32, kvLen: 600, capacity: 600, recycled: { nAttend: 100, lastFullLen: 590 } },
    ],
  ];
  // Both split kernels on every adapter: 'tiled' is what a GPU runs, 'lanes' what a CPU adapter runs.
  for (const kernel of ['tiled', 'lanes'] as const) {
    for (const dtype of kvDtypes(ctx)) {
      for (const [name, c] of cases) {
        test(`${kernel} ${dtype} ${name}`, async () => {
          await runCase(ctx, { ...c, kernel }, dtype, c.kvLen * 3 + c.numHeads);
        });
      }
    }

    test(`${kernel}: 32K context: the rotation at position 32770 and 129 splits`, async () => {
      const c = { numHeads: 2, kvHeads: 1, headDim: 64, kvLen: 32_771, capacity: 32_800, oRows: 5, kernel };
      const { numSplits } = await runCase(ctx, c, ctx.f16 ? 'f16' : 'f32', 11);
      expect(numSplits).toBe(129);
    });
  }

  test('ropeNewToken needs a whole qkv row and the inverse frequencies', () => {
    const layout = { dtype: 'f32' as const, kvHeads: 2, headDim: 64, capacity: 8 };
    const scratch = createDecodeAttentionScratch(ctx, { numHeads: 4, capacity: 8, headDim: 64 });
    const small = storageBuffer(ctx, 4 * 64 * 4);
    const make = (invFreq: GPUBuffer) => () =>
      createSplitAttention(ctx, {
        layout,
        numHeads: 4,
        k: small,
        v: small,
        q: small,
        out: small,
        idx: small,
        idxStride: 1,
        state: small,
        scratch,
        ropeNewToken: { invFreq },
      });
    expect(make(small)).toThrow(/less than one row of q, k and v heads/);
  });
});
