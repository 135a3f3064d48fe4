// Reference forward pass over ModelWeights in plain TypeScript: one token at a time with a KV cache.
// The GPU engine is tested against it; it shares no code with the kernels. Weights are widened to f32 once.

import { dequantizeLinear } from '../../kernels/dequantize';
import type { ModelConfig } from '../model/config';
import { ropeInverseFrequencies } from '../model/rope';
import type { ModelWeights } from '../model/weights';
import { applyRope, argmax, matvec, rmsNorm, silu, vectorToF32 } from './ops';

interface RefLayer {
  inputNorm: Float32Array;
  qkv: Float32Array;
  qkvBias?: Float32Array;
  qNorm?: Float32Array;
  kNorm?: Float32Array;
  oProj: Float32Array;
  postNorm: Float32Array;
  gateUp: Float32Array;
  down: Float32Array;
}

/** Sparse attention for attention policies: the positions (< length) that a layer's KV head may attend to, or null
 * for all of them. A recycled step passes its top-K positions plus the tokens generated since. `preRopeQuery` is the
 * layer's query [numHeads][headDim] before RoPE (what the dynamic schedule compares); called for kvHead 0 first. */
export type AttendFilter = (
  layer: number,
  kvHead: number,
  length: number,
  preRopeQuery: Float32Array,
) => ArrayLike<number> | null;

export interface ReferenceOptions {
  /** Keep each step's attention probabilities (`lastAttention`), for attention-policy tests. */
  recordAttention?: boolean;
}

export class ReferenceModel {
  /** Tokens in the KV cache = the position of the next token. */
  position = 0;
  /** When `recordAttention`: [layer][qHead] softmax probabilities over positions 0..position of the last step. */
  lastAttention: Float32Array[][] = [];

  private readonly layers: RefLayer[];
  private readonly embed: Float32Array;
  private readonly lmHead: Float32Array;
  private readonly finalNorm: Float32Array;
  private readonly invFreq: Float32Array;
  private readonly kvDim: number;
  /** Per layer: [position][kvHeads * headDim]. Grown by doubling. */
  private kCache: Float32Array[];
  private vCache: Float32Array[];
  private capacity = 0;

  // Scratch buffers, reused every step.
  private readonly x: Float32Array;
  private readonly xn: Float32Array;
  private readonly qkvOut: Float32Array;
  private readonly attnOut: Float32Array;
  private readonly proj: Float32Array;
  private readonly gateUpOut: Float32Array;
  private readonly act: Float32Array;
  private scores: Float32Array;
  /** The current layer's query before RoPE, for attend filters. */
  private readonly preRopeQuery: Float32Array;
  /** One head's attention output, accumulated in double. */
  private readonly acc: Float64Array;

  /** Keep each step's attention probabilities in `lastAttention` (may be switched on and off between steps). */
  recordAttention: boolean;

  constructor(
    readonly config: ModelConfig,
    weights: ModelWeights,
    opts: ReferenceOptions = {},
  ) {
    const c = config;
    this.recordAttention = opts.recordAttention ?? false;
    this.embed = dequantizeLinear(weights.embed);
    this.lmHead = weights.lmHead === weights.embed ? this.embed : dequantizeLinear(weights.lmHead);
    this.finalNorm = vectorToF32(weights.finalNorm);
    this.layers = weights.layers.map((l) => ({
      inputNorm: vectorToF32(l.inputNorm),
      qkv: dequantizeLinear(l.qkv),
      qkvBias: l.qkvBias && vectorToF32(l.qkvBias),
      qNorm: l.qNorm && vectorToF32(l.qNorm),
      kNorm: l.kNorm && vectorToF32(l.kNorm),
      oProj: dequantizeLinear(l.oProj),
      postNorm: vectorToF32(l.postNorm),
      gateUp: dequantizeLinear(l.gateUp),
      down: dequantizeLinear(l.down),
    }));
    this.invFreq = ropeInverseFrequencies(c);
    this.kvDim = c.numKvHeads * c.headDim;
    this.kCache = this.layers.map(() => new Float32Array(0));
    this.vCache = this.layers.map(() => new Float32Array(0));
    this.x = new Float32Array(c.hiddenSize);
    this.xn = new Float32Array(c.hiddenSize);
    this.qkvOut = new Float32Array((c.numHeads + 2 * c.numKvHeads) * c.headDim);
    this.attnOut = new Float32Array(c.numHeads * c.headDim);
    this.proj = new Float32Array(c.hiddenSize);
    this.gateUpOut = new Float32Array(2 * c.intermediateSize);
    this.act = new Float32Array(c.intermediateSize);
    this.scores = new Float32Array(256);
    this.preRopeQuery = new Float32Array(c.numHeads * c.headDim);
    this.acc = new Float64Array(c.headDim);
  }

  reset(): void {
    this.position = 0;
  }

  /** Forget every position from `length` on (the cache keeps its first `length` tokens). */
  truncate(length: number): void {
    if (length < 0 || length > this.position) throw new Error(`truncate(${length}): cache holds ${this.position}`);
    this.position = length;
  }

  /** Runs `tokenId` at the current position and appends its K/V. Returns the logits unless `wantLogits` is false. */
  step(tokenId: number, wantLogits = true, attend?: AttendFilter): Float32Array | null {
    const c = this.config;
    if (!Number.isInteger(tokenId) || tokenId < 0 || tokenId >= c.vocabSize) {
      throw new Error(`token id ${tokenId} outside the vocabulary [0, ${c.vocabSize})`);
    }
    const pos = this.position;
    this.ensureCapacity(pos + 1);
    const { x, xn, qkvOut, attnOut, proj, gateUpOut, act } = this;
    const h = c.hiddenSize;
    const hd = c.headDim;
    x.set(this.embed.subarray(tokenId * h, (tokenId + 1) * h));
    if (this.recordAttention) this.lastAttention = [];

    for (let li = 0; li < this.layers.length; li++) {
      const L = this.layers[li];
      rmsNorm(x, L.inputNorm, c.rmsNormEps, xn);
      matvec(L.qkv, qkvOut.length, h, xn, qkvOut, L.qkvBias);
      const kOffset = c.numHeads * hd;
      const vOffset = kOffset + this.kvDim;
      for (let head = 0; head < c.numHeads; head++) {
        if (L.qNorm) rmsNorm(qkvOut, L.qNorm, c.rmsNormEps, qkvOut, head * hd, hd);
        if (attend) this.preRopeQuery.set(qkvOut.subarray(head * hd, (head + 1) * hd), head * hd);
        applyRope(qkvOut, head * hd, hd, pos, this.invFreq);
      }
      for (let head = 0; head < c.numKvHeads; head++) {
        if (L.kNorm) rmsNorm(qkvOut, L.kNorm, c.rmsNormEps, qkvOut, kOffset + head * hd, hd);
        applyRope(qkvOut, kOffset + head * hd, hd, pos, this.invFreq);
      }
      this.kCache[li].set(qkvOut.subarray(kOffset, vOffset), pos * this.kvDim);
      this.vCache[li].set(qkvOut.subarray(vOffset, vOffset + this.kvDim), pos * this.kvDim);
      this.attention(li, qkvOut, pos + 1, attnOut, attend);
      matvec(L.oProj, h, attnOut.length, attnOut, proj);
      for (let i = 0; i < h; i++) x[i] += proj[i];

      rmsNorm(x, L.postNorm, c.rmsNormEps, xn);
      matvec(L.gateUp, gateUpOut.length, h, xn, gateUpOut);
      const inter = c.intermediateSize;
      for (let i = 0; i < inter; i++) act[i] = silu(gateUpOut[i]) * gateUpOut[inter + i];
      matvec(L.down, h, inter, act, proj);
      for (let i = 0; i < h; i++) x[i] += proj[i];
    }
    this.position = pos + 1;
    if (!wantLogits) return null;
    rmsNorm(x, this.finalNorm, c.rmsNormEps, xn);
    const logits = new Float32Array(c.vocabSize);
    matvec(this.lmHead, c.vocabSize, h, xn, logits);
    return logits;
  }

  /** Runs every id; returns the logits of the last one. */
  prefill(ids: ArrayLike<number>): Float32Array {
    if (ids.length === 0) throw new Error('prefill: no tokens');
    for (let i = 0; i < ids.length - 1; i++) this.step(ids[i], false);
    return this.step(ids[ids.length - 1]) as Float32Array;
  }

  /** Causal attention of the q heads in `qkv` over positions [0, length); GQA: q head j reads kv head j / group. */
  private attention(
    layer: number,
    qkv: Float32Array,
    length: number,
    out: Float32Array,
    attend: AttendFilter | undefined,
  ): void {
    const c = this.config;
    const hd = c.headDim;
    const kvDim = this.kvDim;
    const hd4 = hd - (hd % 4);
    const group = c.numHeads / c.numKvHeads;
    const scale = 1 / Math.sqrt(hd);
    const keys = this.kCache[layer];
    const values = this.vCache[layer];
    if (this.scores.length < length) this.scores = new Float32Array(this.capacity);
    const scores = this.scores;
    const layerProbs: Float32Array[] = [];
    const keep = attend ? this.attendMasks(layer, length, attend) : null;
    for (let head = 0; head < c.numHeads; head++) {
      const q = qkv.subarray(head * hd, (head + 1) * hd);
      const kvHead = Math.floor(head / group);
      const kvBase = kvHead * hd;
      const mask = keep?.[kvHead] ?? null;
      let max = Number.NEGATIVE_INFINITY;
      for (let t = 0, k = kvBase; t < length; t++, k += kvDim) {
        let d0 = 0;
        let d1 = 0;
        let d2 = 0;
        let d3 = 0;
        let i = 0;
        for (; i < hd4; i += 4) {
          d0 += q[i] * keys[k + i];
          d1 += q[i + 1] * keys[k + i + 1];
          d2 += q[i + 2] * keys[k + i + 2];
          d3 += q[i + 3] * keys[k + i + 3];
        }
        for (; i < hd; i++) d0 += q[i] * keys[k + i];
        const s = mask && !mask[t] ? Number.NEGATIVE_INFINITY : (d0 + d1 + d2 + d3) * scale;
        scores[t] = s;
        if (s > max) max = s;
      }
      let sum = 0;
      for (let t = 0; t < length; t++) {
        const e = Math.exp(scores[t] - max);
        scores[t] = e;
        sum += e;
      }
      const o = this.acc;
      o.fill(0);
      const invSum = 1 / sum;
      for (let t = 0, v = kvBase; t < length; t++, v += kvDim) {
        const p = scores[t] * invSum;
        scores[t] = p;
        let i = 0;
        for (; i < hd4; i += 4) {
          o[i] += p * values[v + i];
          o[i + 1] += p * values[v + i + 1];
          o[i + 2] += p * values[v + i + 2];
          o[i + 3] += p * values[v + i + 3];
        }
        for (; i < hd; i++) o[i] += p * values[v + i];
      }
      out.set(o, head * hd);
      if (this.recordAttention) layerProbs.push(scores.slice(0, length));
    }
    if (this.recordAttention) this.lastAttention.push(layerProbs);
  }

  /** Per KV head: 1 where attention is allowed (null = everywhere). */
  private attendMasks(layer: number, length: number, attend: AttendFilter): (Uint8Array | null)[] {
    const masks: (Uint8Array | null)[] = [];
    for (let kvHead = 0; kvHead < this.config.numKvHeads; kvHead++) {
      const positions = attend(layer, kvHead, length, this.preRopeQuery);
      if (!positions) {
        masks.push(null);
        continue;
      }
      const mask = new Uint8Array(length);
      for (let i = 0; i < positions.length; i++) {
        const p = positions[i];
        if (!Number.isInteger(p) || p < 0 || p >= length) {
          throw new Error(`attend filter: position ${p} outside [0, ${length}) (layer ${layer}, kv head ${kvHead})`);
        }
        mask[p] = 1;
      }
      if (positions.length === 0) throw new Error(`attend filter: no positions for layer ${layer}, kv head ${kvHead}`);
      masks.push(mask);
    }
    return masks;
  }

  private ensureCapacity(needed: number): void {
    if (needed <= this.capacity) return;
    const capacity = Math.max(needed, this.capacity * 2, 64);
    for (let li = 0; li < this.layers.length; li++) {
      const k = new Float32Array(capacity * this.kvDim);
      const v = new Float32Array(capacity * this.kvDim);
      k.set(this.kCache[li].subarray(0, this.position * this.kvDim));
      v.set(this.vCache[li].subarray(0, this.position * this.kvDim));
      this.kCache[li] = k;
      this.vCache[li] = v;
    }
    this.capacity = capacity;
  }
}

/** Greedy decoding: prefill `promptIds`, then up to `maxNewTokens` argmax tokens (stops after a stop token). */
export function greedyGenerate(
  model: ReferenceModel,
  promptIds: ArrayLike<number>,
  maxNewTokens: number,
  stopTokenIds: readonly number[] = [],
): number[] {
  const out: number[] = [];
  let logits = model.prefill(promptIds);
  for (let i = 0; i < maxNewTokens; i++) {
    const next = argmax(logits);
    out.push(next);
    if (stopTokenIds.includes(next) || i === maxNewTokens - 1) break;
    logits = model.step(next) as Float32Array;
  }
  return out;
}
