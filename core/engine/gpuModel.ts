// The WebGPU model: weights on the device, the KV cache, and the forward pass, read top to bottom.
// One command buffer per prefill chunk and per decode step; per decode step exactly one u32 (the sampled token id)
// comes back to the CPU.

import {
  createDecodeAttentionScratch,
  type DecodeAttentionScratch,
} from '../../kernels/decodeAttention/decodeAttention';
import { AddBiasKernel, AddInPlaceKernel, SiluMulKernel } from '../../kernels/elementwise/elementwise';
import { type GpuVector, uploadVector } from '../../kernels/elementwise/gpuVector';
import { EmbeddingKernel } from '../../kernels/embedding/embedding';
import type { GpuContext } from '../../kernels/gpuContext';
import { readBuffer, storageBuffer, writeBuffer } from '../../kernels/gpuUtil';
import { uploadLinear } from '../../kernels/linearUpload';
import { MatmulKernel } from '../../kernels/matmul/matmul';
import { prefillChunkTokens } from '../../kernels/matmul/tuning';
import { createMatvec, type Matvec } from '../../kernels/matvec/matvec';
import { createPrefillAttention, type PrefillAttention } from '../../kernels/prefillAttention/prefillAttention';
import { RmsNormKernel } from '../../kernels/rmsnorm/rmsnorm';
import { RopeKernel, uploadInverseFrequencies } from '../../kernels/rope/rope';
import { createSampler, type Sampler } from '../../kernels/sampling/sampling';
import type { GpuLinear } from '../../kernels/types';
import {
  createDecodeAttention,
  type LayerDecodeAttention,
  summarizeAttentionStats,
} from '../attention/decodeAttention';
import { isStrideFullStep, resolveAttentionPolicy } from '../attention/policy';
import type { ModelConfig } from '../model/config';
import { ropeInverseFrequencies } from '../model/rope';
import type { HostLinear, HostVector, ModelWeights } from '../model/weights';
import { createKvCache, type KvCache, readKvLayer, writeKvLayer } from './kvCache';
import type { KvInfo, ModelRunner, PrefillOptions, SamplingParams } from './runner';
import type { AttentionPolicy, AttentionStats } from './types';

/** A linear layer on fixed buffers: a matvec for decode (one token) and a matmul for prefill, over one weight. */
interface Projection {
  decode: Matvec;
  prefill: MatmulKernel;
}

/** Kernels of one transformer layer. */
interface GpuLayer {
  inputNorm: RmsNormKernel;
  qkv: Projection;
  qkvBias?: AddBiasKernel;
  qNorm?: RmsNormKernel;
  kNorm?: RmsNormKernel;
  rope: RopeKernel;
  prefillAttention: PrefillAttention;
  o: Projection;
  attnResidual: AddInPlaceKernel;
  postNorm: RmsNormKernel;
  gateUp: Projection;
  siluMul: SiluMulKernel;
  down: Projection;
  mlpResidual: AddInPlaceKernel;
}

export interface GpuModelOptions {
  contextWindow: number;
  /** Tokens per prefill command buffer (bounds the activation buffers). Default: the adapter's, as chosen by the
   * bench (kernels/matmul/tuning.ts), within what one storage binding holds. */
  prefillChunk?: number;
}

/** The largest chunk whose widest activation buffer ([tokens][2 × intermediate] f32) fits one storage binding. */
function maxChunk(ctx: GpuContext, c: ModelConfig): number {
  const widest = Math.max(2 * c.intermediateSize, (c.numHeads + 2 * c.numKvHeads) * c.headDim, c.hiddenSize) * 4;
  return Math.max(1, Math.floor(ctx.device.limits.maxStorageBufferBindingSize / widest));
}

export class GpuModel implements ModelRunner {
  readonly capacity: number;
  readonly prefillChunk: number;
  readonly kv: KvCache;
  private readonly layers: GpuLayer[] = [];
  private readonly embedding: EmbeddingKernel;
  private readonly finalNorm: RmsNormKernel;
  private readonly lmHead: Matvec;
  private readonly sampler: Sampler;
  private readonly buffers: Record<string, GPUBuffer>;
  private readonly weightBuffers: GPUBuffer[] = [];
  private readonly scratch: DecodeAttentionScratch;
  private attention: LayerDecodeAttention[] = [];
  private policy: AttentionPolicy = { kind: 'full' };
  private stepTimes = { full: 0, fullCount: 0, other: 0, otherCount: 0 };

  /** Use `GpuModel.create` (the KV cache allocation is asynchronous). */
  private constructor(
    private readonly ctx: GpuContext,
    readonly config: ModelConfig,
    weights: ModelWeights,
    kv: KvCache,
    prefillChunk: number,
  ) {
    const c = config;
    this.kv = kv;
    this.capacity = kv.layout.capacity;
    this.prefillChunk = prefillChunk;
    const T = prefillChunk;
    const qkvDim = (c.numHeads + 2 * c.numKvHeads) * c.headDim;
    const qDim = c.numHeads * c.headDim;
    const f32 = (n: number, label: string) => storageBuffer(ctx, n * 4, label);
    const b = {
      ids: f32(T, 'ids'),
      x: f32(T * c.hiddenSize, 'x'),
      xn: f32(T * c.hiddenSize, 'xn'),
      qkv: f32(T * qkvDim, 'qkv'),
      q: f32(T * qDim, 'q'),
      attn: f32(T * qDim, 'attn'),
      proj: f32(T * c.hiddenSize, 'proj'),
      gateUp: f32(T * 2 * c.intermediateSize, 'gateUp'),
      act: f32(T * c.intermediateSize, 'act'),
      logits: f32(c.vocabSize, 'logits'),
      sampled: f32(4, 'sampled'),
    };
    this.buffers = b;

    const linear = (host: HostLinear, name: string): GpuLinear => {
      const l = uploadLinear(ctx, host, name);
      this.weightBuffers.push(l.weight, ...(l.scales ? [l.scales] : []));
      return l;
    };
    const vector = (host: HostVector, name: string): GpuVector => {
      const v = uploadVector(ctx, host, name);
      this.weightBuffers.push(v.buffer);
      return v;
    };
    const eps = c.rmsNormEps;
    const invFreq = uploadInverseFrequencies(ctx, ropeInverseFrequencies(c));
    this.weightBuffers.push(invFreq);

    const embedTable = linear(weights.embed, 'embed');
    this.embedding = new EmbeddingKernel(ctx, { table: embedTable, ids: b.ids, out: b.x, maxTokens: T });
    this.scratch = createDecodeAttentionScratch(ctx, {
      numHeads: c.numHeads,
      capacity: this.capacity,
      headDim: c.headDim,
    });

    const projection = (host: HostLinear, name: string, x: GPUBuffer, y: GPUBuffer): Projection => {
      const weight = linear(host, name);
      return {
        decode: createMatvec(ctx, { weight, input: x, output: y }),
        prefill: new MatmulKernel(ctx, { weight, x, y, maxTokens: T }),
      };
    };
    /** RMSNorm of the residual stream x into xn. */
    const hiddenNorm = (host: HostVector, name: string) =>
      new RmsNormKernel(ctx, {
        n: c.hiddenSize,
        weight: vector(host, name),
        eps,
        input: b.x,
        output: b.xn,
        maxRows: T,
      });

    weights.layers.forEach((w, i) => {
      const layer: GpuLayer = {
        inputNorm: hiddenNorm(w.inputNorm, 'inputNorm'),
        qkv: projection(w.qkv, `layers.${i}.qkv`, b.xn, b.qkv),
        rope: new RopeKernel(ctx, {
          numHeads: c.numHeads,
          numKvHeads: c.numKvHeads,
          headDim: c.headDim,
          invFreq,
          qkv: b.qkv,
          q: b.q,
          kv: kv.layers[i],
          layout: kv.layout,
          maxTokens: T,
        }),
        prefillAttention: createPrefillAttention(ctx, {
          q: b.q,
          out: b.attn,
          k: kv.layers[i].k,
          v: kv.layers[i].v,
          layout: kv.layout,
          numHeads: c.numHeads,
          maxTokens: T,
        }),
        o: projection(w.oProj, `layers.${i}.o`, b.attn, b.proj),
        attnResidual: new AddInPlaceKernel(ctx, { width: c.hiddenSize, x: b.x, y: b.proj, maxTokens: T }),
        postNorm: hiddenNorm(w.postNorm, 'postNorm'),
        gateUp: projection(w.gateUp, `layers.${i}.gateUp`, b.xn, b.gateUp),
        siluMul: new SiluMulKernel(ctx, {
          intermediate: c.intermediateSize,
          gateUp: b.gateUp,
          out: b.act,
          maxTokens: T,
        }),
        down: projection(w.down, `layers.${i}.down`, b.act, b.proj),
        mlpResidual: new AddInPlaceKernel(ctx, { width: c.hiddenSize, x: b.x, y: b.proj, maxTokens: T }),
      };
      if (w.qkvBias)
        layer.qkvBias = new AddBiasKernel(ctx, { bias: vector(w.qkvBias, 'qkvBias'), x: b.qkv, maxTokens: T });
      if (w.qNorm && w.kNorm) {
        const common = { n: c.headDim, eps, input: b.qkv, maxRows: T, rowStride: qkvDim };
        layer.qNorm = new RmsNormKernel(ctx, { ...common, weight: vector(w.qNorm, 'qNorm'), segments: c.numHeads });
        layer.kNorm = new RmsNormKernel(ctx, {
          ...common,
          weight: vector(w.kNorm, 'kNorm'),
          segments: c.numKvHeads,
          rowOffset: c.numHeads * c.headDim,
        });
      }
      this.layers.push(layer);
    });
    this.finalNorm = hiddenNorm(weights.finalNorm, 'finalNorm');
    const head = weights.lmHead === weights.embed ? embedTable : linear(weights.lmHead, 'lmHead');
    this.lmHead = createMatvec(ctx, { weight: head, input: b.xn, output: b.logits });
    this.sampler = createSampler(ctx, { logits: b.logits, vocab: c.vocabSize, output: b.sampled });
    this.beginGeneration({ kind: 'full' });
  }

  static async create(
    ctx: GpuContext,
    config: ModelConfig,
    weights: ModelWeights,
    opts: GpuModelOptions,
  ): Promise<GpuModel> {
    const kv = await createKvCache(ctx, config, opts.contextWindow);
    const chunk = Math.max(
      1,
      Math.min(opts.prefillChunk ?? prefillChunkTokens(ctx), opts.contextWindow, maxChunk(ctx, config)),
    );
    ctx.device.pushErrorScope('out-of-memory');
    ctx.device.pushErrorScope('validation');
    let model: GpuModel;
    try {
      model = new GpuModel(ctx, config, weights, kv, chunk);
    } catch (e) {
      await ctx.device.popErrorScope();
      await ctx.device.popErrorScope();
      kv.destroy();
      throw e;
    }
    const validation = await ctx.device.popErrorScope();
    const oom = await ctx.device.popErrorScope();
    if (oom || validation) {
      model.dispose();
      if (oom) throw new Error(`The GPU ran out of memory while uploading the model weights: ${oom.message}`);
      throw new Error(`The GPU rejected the model setup: ${validation?.message}`);
    }
    return model;
  }

  /** Prefill in chunks of `prefillChunk` tokens. Each chunk is submitted before the previous one is waited for, so
   * the GPU always has the next chunk queued (no CPU round trip between chunks); progress and Stop are checked as
   * each chunk completes, so at most the chunk in flight runs after an abort. */
  async prefill(ids: number[], startPos: number, opts: PrefillOptions = {}): Promise<void> {
    if (startPos + ids.length > this.capacity) {
      throw new Error(`prefill past the KV capacity (${startPos + ids.length} > ${this.capacity})`);
    }
    let inFlight: { done: number; finished: Promise<undefined> } | undefined;
    for (let done = 0; done < ids.length; done += this.prefillChunk) {
      const part = ids.slice(done, done + this.prefillChunk);
      this.submitPrefillChunk(part, startPos + done);
      const finished = this.ctx.device.queue.onSubmittedWorkDone();
      const previous = inFlight;
      inFlight = { done: done + part.length, finished };
      if (previous) {
        await previous.finished;
        opts.onChunk?.(previous.done);
        if (opts.signal?.aborted) break;
      }
    }
    if (inFlight) {
      await inFlight.finished;
      opts.onChunk?.(inFlight.done);
    }
  }

  /** Encodes and submits one prefill chunk: `part` at positions pos.. */
  private submitPrefillChunk(part: number[], pos: number): void {
    const T = part.length;
    writeBuffer(this.ctx, this.buffers.ids, Uint32Array.from(part));
    const enc = this.ctx.device.createCommandEncoder({ label: 'prefill' });
    const pass = enc.beginComputePass();
    this.embedding.encode(pass, T);
    for (const L of this.layers) {
      L.inputNorm.encode(pass, T);
      L.qkv.prefill.encode(pass, T);
      L.qkvBias?.encode(pass, T);
      L.qNorm?.encode(pass, T);
      L.kNorm?.encode(pass, T);
      L.rope.encode(pass, T, pos);
      L.prefillAttention.encode(pass, { tokens: T, startPos: pos });
      L.o.prefill.encode(pass, T);
      L.attnResidual.encode(pass, T);
      L.postNorm.encode(pass, T);
      L.gateUp.prefill.encode(pass, T);
      L.siluMul.encode(pass, T);
      L.down.prefill.encode(pass, T);
      L.mlpResidual.encode(pass, T);
    }
    pass.end();
    this.ctx.device.queue.submit([enc.finish()]);
  }

  beginGeneration(requested: AttentionPolicy): void {
    const policy = resolveAttentionPolicy(requested, this.config.architecture);
    if (this.attention.length === 0 || JSON.stringify(policy) !== JSON.stringify(this.policy)) {
      for (const a of this.attention) a.destroy();
      this.attention = this.kv.layers.map((kv) =>
        createDecodeAttention(this.ctx, {
          layout: this.kv.layout,
          numHeads: this.config.numHeads,
          k: kv.k,
          v: kv.v,
          q: this.buffers.q,
          // The decode step's qkv row starts with the query before RoPE (what the dynamic schedule compares).
          scheduleQuery: this.buffers.qkv,
          out: this.buffers.attn,
          policy,
          scratch: this.scratch,
        }),
      );
      this.policy = policy;
    } else {
      for (const a of this.attention) a.reset();
    }
    this.stepTimes = { full: 0, fullCount: 0, other: 0, otherCount: 0 };
  }

  async decodeStep(id: number, pos: number, sampling: SamplingParams, step: number): Promise<number> {
    if (pos >= this.capacity) throw new Error(`decode past the KV capacity (${pos} >= ${this.capacity})`);
    const t0 = performance.now();
    writeBuffer(this.ctx, this.buffers.ids, new Uint32Array([id]));
    const enc = this.ctx.device.createCommandEncoder({ label: 'decode' });
    const pass = enc.beginComputePass();
    this.embedding.encode(pass, 1);
    this.layers.forEach((L, i) => {
      L.inputNorm.encode(pass, 1);
      L.qkv.decode.encode(pass);
      L.qkvBias?.encode(pass, 1);
      L.qNorm?.encode(pass, 1);
      L.kNorm?.encode(pass, 1);
      L.rope.encode(pass, 1, pos);
      // Step 0 feeds the last prompt token: full attention for every policy (as prefill is), which also seeds the
      // top-K of recycled and SnapKV.
      if (step === 0) this.attention[i].seedFromPrefill(pass, { kvLen: pos + 1 });
      else this.attention[i].encodeStep(pass, { kvLen: pos + 1, step });
      L.o.decode.encode(pass);
      L.attnResidual.encode(pass, 1);
      L.postNorm.encode(pass, 1);
      L.gateUp.decode.encode(pass);
      L.siluMul.encode(pass, 1);
      L.down.decode.encode(pass);
      L.mlpResidual.encode(pass, 1);
    });
    this.finalNorm.encode(pass, 1);
    this.lmHead.encode(pass);
    this.sampler.encode(pass, { ...sampling, step });
    pass.end();
    this.ctx.device.queue.submit([enc.finish()]);
    const next = new Uint32Array(await readBuffer(this.ctx, this.buffers.sampled, 4))[0];
    const ms = performance.now() - t0;
    const full =
      step === 0 ||
      this.policy.kind === 'full' ||
      (this.policy.kind === 'recycled' && !this.policy.dynamic && isStrideFullStep(this.policy.stride, step));
    if (full) {
      this.stepTimes.full += ms;
      this.stepTimes.fullCount++;
    } else {
      this.stepTimes.other += ms;
      this.stepTimes.otherCount++;
    }
    return next;
  }

  async readLogits(): Promise<Float32Array> {
    return new Float32Array(await readBuffer(this.ctx, this.buffers.logits, this.config.vocabSize * 4));
  }

  async attentionStats(): Promise<AttentionStats | undefined> {
    const layerStats = await Promise.all(this.attention.map((a) => a.readStats()));
    const s = summarizeAttentionStats(this.policy, layerStats);
    const t = this.stepTimes;
    return {
      ...s,
      msPerFullStep: t.fullCount ? t.full / t.fullCount : 0,
      msPerRecycledStep: t.otherCount ? t.other / t.otherCount : 0,
    };
  }

  get kvInfo(): KvInfo {
    const { dtype, kvHeads, headDim } = this.kv.layout;
    return { dtype, numLayers: this.config.numLayers, kvHeads, headDim };
  }

  readKvLayer(layer: number, length: number): Promise<{ k: Uint8Array; v: Uint8Array }> {
    return readKvLayer(this.ctx, this.kv, layer, length);
  }

  writeKvLayer(layer: number, length: number, k: Uint8Array, v: Uint8Array): void {
    writeKvLayer(this.ctx, this.kv, layer, length, k, v);
  }

  dispose(): void {
    for (const a of this.attention) a.destroy();
    this.attention = [];
    for (const buf of [...Object.values(this.buffers), ...this.weightBuffers]) buf.destroy();
    this.kv.destroy();
  }
}
