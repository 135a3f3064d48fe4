// The WebGPU model: weights on the device, the KV cache, and the forward pass, read top to bottom.
// One command buffer per prefill chunk and per decode step. The decode loop stays on the GPU: a step embeds the token
// the previous step sampled straight from its GPU buffer, the per-step scalars of every kernel go to the GPU in one
// write (a UniformArena), and the host keeps two steps in flight, reading each sampled id (one u32) back through a
// small ring of staging buffers while the next step runs.

import {
  createDecodeAttentionScratch,
  type DecodeAttentionScratch,
} from '../../kernels/decodeAttention/decodeAttention';
import { MAX_SPLITS, STATE } from '../../kernels/decodeAttention/decodeAttention.wgsl';
import { AddBiasKernel, SiluMulKernel } from '../../kernels/elementwise/elementwise';
import { type GpuVector, uploadVector } from '../../kernels/elementwise/gpuVector';
import { EmbeddingKernel } from '../../kernels/embedding/embedding';
import type { GpuContext } from '../../kernels/gpuContext';
import { align, readBuffer, storageBuffer, writeBuffer } from '../../kernels/gpuUtil';
import { linearBytes, uploadLinear } from '../../kernels/linearUpload';
import { MatmulKernel } from '../../kernels/matmul/matmul';
import { prefillChunkTokens } from '../../kernels/matmul/tuning';
import { createMatvec, type Matvec, type MatvecOptions, matvecFusable } from '../../kernels/matvec/matvec';
import { createPrefillAttention, type PrefillAttention } from '../../kernels/prefillAttention/prefillAttention';
import { RmsNormKernel } from '../../kernels/rmsnorm/rmsnorm';
import { RopeKernel, uploadInverseFrequencies } from '../../kernels/rope/rope';
import { createSampler, type Sampler } from '../../kernels/sampling/sampling';
import type { GpuLinear } from '../../kernels/types';
import { UniformArena } from '../../kernels/uniforms';
import {
  createDecodeAttention,
  type DecodeAttentionParams,
  type LayerDecodeAttention,
  summarizeAttentionStats,
} from '../attention/decodeAttention';
import { isStrideFullStep, resolveAttentionPolicy } from '../attention/policy';
import { createPolicySelection, type ModelSelection } from '../attention/selection';
import type { ModelConfig } from '../model/config';
import { ropeInverseFrequencies } from '../model/rope';
import type { HostLinear, HostVector, ModelWeights } from '../model/weights';
import type { DecodeBytesModel } from './fastMode';
import { createKvCache, type KvCache, readKvLayer, writeKvLayer } from './kvCache';
import type { DecodeInput, DecodeRuntimeStats, KvInfo, ModelRunner, PrefillOptions, SamplingParams } from './runner';
import type { AttentionPolicy, AttentionStats } from './types';

/** A linear layer on fixed buffers: a matvec for decode (one token) and a matmul for prefill, over one weight. The
 * decode matvec may carry a fusion (RMSNorm or split-combine prologue, SiLU·mul or residual-add epilogue): see
 * encodeLayer. */
interface Projection {
  decode: Matvec;
  prefill: MatmulKernel;
}

/** Kernels of one transformer layer. */
interface GpuLayer {
  /** x += proj (the previous layer's MLP output; not on layer 0), then xn = norm(x). */
  inputNorm: RmsNormKernel;
  qkv: Projection;
  qkvBias?: AddBiasKernel;
  qNorm?: RmsNormKernel;
  kNorm?: RmsNormKernel;
  /** Prefill only: a decode step's attention rotates and stores the one new token itself. */
  rope: RopeKernel;
  prefillAttention: PrefillAttention;
  o: Projection;
  /** x += proj (the attention output), then xn = norm(x). */
  postNorm: RmsNormKernel;
  gateUp: Projection;
  siluMul: SiluMulKernel;
  down: Projection;
}

/** What one encodeLayer call computes: a prefill chunk of `tokens` tokens at pos.., or decode step `step` at pos. */
type LayerStep = { kind: 'prefill'; tokens: number; pos: number } | { kind: 'decode'; pos: number; step: number };

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

/** Decode steps the host keeps submitted ahead of the token it waits for. */
const IN_FLIGHT = 2;

interface PendingStep {
  step: number;
  /** A refresh (full attention) step of a fixed schedule, as the host knows it (timing stats). */
  full: boolean;
  staging: GPUBuffer;
  mapped: Promise<void>;
  backup: GPUBuffer;
  /** Restores the host side of every layer's attention state to before this step. */
  restoreHost: (() => void)[];
  submittedAt: number;
  dispatches: number;
}

/** Counts the dispatches kernels record (the engine's dispatchesPerToken); forwards everything else. */
class CountingPass {
  count = 0;
  constructor(readonly pass: GPUComputePassEncoder) {}
  setPipeline(p: GPUComputePipeline): void {
    this.pass.setPipeline(p);
  }
  setBindGroup(i: number, g: GPUBindGroup): void {
    this.pass.setBindGroup(i, g);
  }
  dispatchWorkgroups(x: number, y?: number, z?: number): void {
    this.count++;
    this.pass.dispatchWorkgroups(x, y, z);
  }
  asEncoder(): GPUComputePassEncoder {
    return this as unknown as GPUComputePassEncoder;
  }
}

export class GpuModel implements ModelRunner {
  readonly capacity: number;
  readonly prefillChunk: number;
  readonly kv: KvCache;
  readonly decodeBytes: DecodeBytesModel;
  private readonly layers: GpuLayer[] = [];
  /** Embeds the ids in `buffers.ids` (prefill, and a decode step fed from the host). */
  private readonly embedding: EmbeddingKernel;
  /** Embeds the id the previous decode step sampled, from its GPU buffer (no round trip through the host). */
  private readonly embedSampled: EmbeddingKernel;
  /** Unfused decode: x += proj (the last layer's MLP output), then xn = norm(x). */
  private readonly finalNorm: RmsNormKernel | null;
  /** Logits; fused decode: of norm(x) (the final norm in its prologue), else of xn. */
  private readonly lmHead: Matvec;
  /** Decode runs the fused matvecs (see encodeLayer): every weight's shape allows them. */
  private readonly fusedDecode: boolean;
  private readonly sampler: Sampler;
  private readonly buffers: Record<string, GPUBuffer>;
  private readonly weightBuffers: GPUBuffer[] = [];
  private readonly scratch: DecodeAttentionScratch;
  private readonly invFreq: GPUBuffer;
  private attention: LayerDecodeAttention[] = [];
  /** The top-K selection of every layer, encoded once after the last layer of a step (top-K policies). */
  private selection: ModelSelection | null = null;
  private policy: AttentionPolicy = { kind: 'full' };
  private stepTimes = { full: 0, fullCount: 0, other: 0, otherCount: 0 };
  /** Every kernel's per-step scalars: one queue write per submitted command buffer. */
  private readonly uniforms: UniformArena;
  private readonly attentionParams: DecodeAttentionParams;
  /** Every layer's decode-attention state record, and its copy taken at the start of each decode step (a ring of
   * IN_FLIGHT): restoring the copy of the oldest discarded step undoes the steps computed past a stop. */
  private readonly attentionStates: GPUBuffer;
  private readonly stateBackups: GPUBuffer[];
  private readonly stateRecordBytes: number;
  /** Staging buffers the sampled ids come back through (MAP_READ), used round robin. */
  private readonly staging: GPUBuffer[];
  private pending: PendingStep[] = [];
  private submittedSteps = 0;
  private lastArrival = 0;
  private dispatchCounts = { steps: 0, dispatches: 0, plain: 0, plainSteps: 0, refresh: 0, refreshSteps: 0 };
  private uniformWritesAtStart = 0;

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
    this.uniforms = new UniformArena(ctx, 4096, 'step uniforms');
    // Shared by every layer: in one step all layers take the same scalars.
    this.attentionParams = {
      attention: this.uniforms.slot(16, 'attention'),
      decide: this.uniforms.slot(32, 'decide'),
      topK: this.uniforms.slot(16, 'topK'),
    };
    this.stateRecordBytes = align(STATE.words * 4, ctx.device.limits.minStorageBufferOffsetAlignment);
    const statesBytes = this.stateRecordBytes * c.numLayers;
    this.attentionStates = storageBuffer(ctx, statesBytes, 'attention states');
    this.stateBackups = Array.from({ length: IN_FLIGHT }, (_, i) => storageBuffer(ctx, statesBytes, `states.${i}`));
    // One more than the steps in flight: a buffer is mapped again only after its token was taken.
    this.staging = Array.from({ length: IN_FLIGHT + 1 }, (_, i) =>
      ctx.device.createBuffer({
        size: 4,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
        label: `token.${i}`,
      }),
    );
    const ropeParams = this.uniforms.slot(16, 'rope');

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
    this.invFreq = invFreq;

    const embedTable = linear(weights.embed, 'embed');
    this.embedding = new EmbeddingKernel(ctx, { table: embedTable, ids: b.ids, out: b.x, maxTokens: T });
    this.embedSampled = new EmbeddingKernel(ctx, { table: embedTable, ids: b.sampled, out: b.x, maxTokens: 1 });
    this.scratch = createDecodeAttentionScratch(ctx, {
      numHeads: c.numHeads,
      capacity: this.capacity,
      headDim: c.headDim,
    });

    let weightBytes = 0;
    // Decode fuses its norms, SiLU·mul and residual adds into the matvecs when every weight allows it (q4, or
    // columns a multiple of the vector unit); otherwise it runs the same separate kernels as prefill.
    const head = weights.lmHead === weights.embed ? undefined : weights.lmHead;
    const decodeWeights = [...weights.layers.flatMap((w) => [w.qkv, w.oProj, w.gateUp, w.down]), head ?? weights.embed];
    this.fusedDecode = decodeWeights.every((w) => matvecFusable(w.dtype, w.cols));
    const fuse = this.fusedDecode;
    /** `decode` gives the fused decode matvec's input, output and fusion; without fusion it reads x and writes y. */
    const projection = (
      host: HostLinear,
      name: string,
      x: GPUBuffer,
      y: GPUBuffer,
      decode: Omit<MatvecOptions, 'weight'>,
    ): Projection => {
      const weight = linear(host, name);
      weightBytes += linearBytes(weight);
      return {
        decode: createMatvec(ctx, fuse ? { weight, ...decode } : { weight, input: x, output: y }),
        prefill: new MatmulKernel(ctx, { weight, x, y, maxTokens: T }),
      };
    };
    /** RMSNorm of the residual stream x into xn; with `addProj`, the residual add x += proj comes first, in the
     * same dispatch. */
    const hiddenNorm = (gamma: GpuVector, addProj: boolean) =>
      new RmsNormKernel(ctx, {
        n: c.hiddenSize,
        weight: gamma,
        eps,
        input: b.x,
        output: b.xn,
        maxRows: T,
        residual: addProj ? b.proj : undefined,
      });

    weights.layers.forEach((w, i) => {
      const inputGamma = vector(w.inputNorm, 'inputNorm');
      const postGamma = vector(w.postNorm, 'postNorm');
      const layer: GpuLayer = {
        inputNorm: hiddenNorm(inputGamma, i > 0),
        qkv: projection(w.qkv, `layers.${i}.qkv`, b.xn, b.qkv, {
          input: b.x,
          output: b.qkv,
          rmsNorm: { weight: inputGamma, eps },
        }),
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
          params: ropeParams,
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
        // Decode: o combines the attention's splits in its prologue (the split count is the attention's uniform).
        o: projection(w.oProj, `layers.${i}.o`, b.attn, b.proj, {
          input: this.scratch.partAcc,
          output: b.x,
          accumulate: true,
          splitCombine: {
            maxSum: this.scratch.partMaxSum,
            splitCount: this.attentionParams.attention.binding,
            heads: c.numHeads,
            headDim: c.headDim,
            maxSplits: MAX_SPLITS,
          },
        }),
        postNorm: hiddenNorm(postGamma, true),
        gateUp: projection(w.gateUp, `layers.${i}.gateUp`, b.xn, b.gateUp, {
          input: b.x,
          output: b.act,
          rmsNorm: { weight: postGamma, eps },
          siluMul: true,
        }),
        siluMul: new SiluMulKernel(ctx, {
          intermediate: c.intermediateSize,
          gateUp: b.gateUp,
          out: b.act,
          maxTokens: T,
        }),
        down: projection(w.down, `layers.${i}.down`, b.act, b.proj, { input: b.act, output: b.x, accumulate: true }),
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
    const finalGamma = vector(weights.finalNorm, 'finalNorm');
    this.finalNorm = fuse ? null : hiddenNorm(finalGamma, true);
    const headWeight = head ? linear(head, 'lmHead') : embedTable;
    this.lmHead = createMatvec(
      ctx,
      fuse
        ? { weight: headWeight, input: b.x, output: b.logits, rmsNorm: { weight: finalGamma, eps } }
        : { weight: headWeight, input: b.xn, output: b.logits },
    );
    const kvBytes = kv.layout.dtype === 'f16' ? 2 : 4;
    this.decodeBytes = {
      weightBytes: weightBytes + linearBytes(headWeight),
      // K and V rows, and the f32 logit each q head writes and reads back per position.
      attentionBytesPerPosition: c.numLayers * (2 * c.numKvHeads * c.headDim * kvBytes + 2 * c.numHeads * 4),
      // Group max + pool reads the logits and writes one value per KV head; the select reads that ~4 times.
      refreshBytesPerPosition: c.numLayers * (c.numHeads * 4 + 5 * c.numKvHeads * 4),
    };
    this.sampler = createSampler(ctx, {
      logits: b.logits,
      vocab: c.vocabSize,
      output: b.sampled,
      params: this.uniforms.slot(32, 'sampler'),
    });
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

  /**
   * One transformer layer over `rows` tokens: a prefill chunk (matmuls, causal attention over the chunk and the cache)
   * or one decode step (matvecs, decode attention under the generation's policy). Data flow, with the buffers:
   *
   *   (x += proj) x ─inputNorm→ xn ─qkv→ qkv ─(+bias, q/k norm)→ rope → q, and k, v into the KV cache
   *   q, KV cache ─attention→ attn ─o→ proj
   *   (x += proj) x ─postNorm→ xn ─gateUp→ gateUp ─silu(gate)·up→ act ─down→ proj
   *
   * Each residual add x += proj runs inside the norm that follows it (one dispatch): the MLP's in the next layer's
   * input norm, the last layer's in the final norm. A prefill chunk has no final norm, so its last layer's MLP output
   * is never added: nothing reads that x (prefill only fills the KV cache; the next chunk or step embeds afresh).
   *
   * A decode step has one token: its attention kernel rotates q and k itself and stores k, v into the KV cache (no
   * rope dispatch). A fused decode step (this.fusedDecode) also folds the norms, SiLU·mul and residual adds into the
   * matvecs, and the attention's split combine into the o matvec's prologue: 5 dispatches per layer, 6 under a
   * policy with a schedule (its decide kernel runs before the attention):
   *
   *   x ─norm·qkv→ qkv ─(+bias, q/k norm)→ attention (RoPE, k, v into the KV cache) → split partials
   *   split partials ─combine·o→ x += o·attn
   *   x ─norm·gateUp, silu(gate)·up→ act;  x += down·act
   */
  private encodeLayer(pass: GPUComputePassEncoder, i: number, s: LayerStep): void {
    const L = this.layers[i];
    const rows = s.kind === 'prefill' ? s.tokens : 1;
    const separate = s.kind === 'prefill' || !this.fusedDecode; // norms, SiLU·mul as their own dispatches
    const project = (p: Projection) => (s.kind === 'prefill' ? p.prefill.encode(pass, rows) : p.decode.encode(pass));
    if (separate) L.inputNorm.encode(pass, rows);
    project(L.qkv);
    L.qkvBias?.encode(pass, rows);
    L.qNorm?.encode(pass, rows);
    L.kNorm?.encode(pass, rows);
    if (s.kind === 'prefill') {
      L.rope.encode(pass, rows, s.pos);
      L.prefillAttention.encode(pass, { tokens: rows, startPos: s.pos });
    }
    // Step 0 feeds the last prompt token: full attention for every policy (as prefill is), which also seeds the
    // top-K of recycled and SnapKV.
    else if (s.step === 0) this.attention[i].seedFromPrefill(pass, { kvLen: s.pos + 1 });
    else this.attention[i].encodeStep(pass, { kvLen: s.pos + 1, step: s.step });
    project(L.o);
    if (separate) L.postNorm.encode(pass, rows);
    project(L.gateUp);
    if (separate) L.siluMul.encode(pass, rows);
    project(L.down);
  }

  /** Prefill in chunks of `prefillChunk` tokens. Each chunk is submitted before the previous one is waited for, so
   * the GPU always has the next chunk queued (no CPU round trip between chunks); progress and Stop are checked as
   * each chunk completes, so at most the chunk in flight runs after an abort. */
  async prefill(ids: number[], startPos: number, opts: PrefillOptions = {}): Promise<void> {
    if (this.pending.length > 0) throw new Error('prefill while decode steps are in flight (take or discard them)');
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
    for (let i = 0; i < this.layers.length; i++) this.encodeLayer(pass, i, { kind: 'prefill', tokens: T, pos });
    pass.end();
    this.uniforms.flush();
    this.ctx.device.queue.submit([enc.finish()]);
  }

  beginGeneration(requested: AttentionPolicy): void {
    if (this.pending.length > 0) throw new Error('beginGeneration while decode steps are in flight');
    const policy = resolveAttentionPolicy(requested, this.config.architecture);
    if (this.attention.length === 0 || JSON.stringify(policy) !== JSON.stringify(this.policy)) {
      for (const a of this.attention) a.destroy();
      this.selection?.destroy();
      this.selection = createPolicySelection(this.ctx, policy, {
        layers: this.kv.layers.length,
        kvHeads: this.kv.layout.kvHeads,
        capacity: this.kv.layout.capacity,
        states: { buffer: this.attentionStates, offset: 0 },
        stateStride: this.stateRecordBytes,
        params: this.attentionParams.topK,
      });
      const selection = this.selection;
      this.attention = this.kv.layers.map((kv, i) =>
        createDecodeAttention(this.ctx, {
          layout: this.kv.layout,
          numHeads: this.config.numHeads,
          k: kv.k,
          v: kv.v,
          q: this.buffers.q,
          // The decode step's qkv row starts with the query before RoPE (what the dynamic schedule compares).
          scheduleQuery: this.buffers.qkv,
          ropeNewToken: { qkv: this.buffers.qkv, invFreq: this.invFreq },
          combineInConsumer: this.fusedDecode,
          out: this.buffers.attn,
          policy,
          scratch: this.scratch,
          params: this.attentionParams,
          state: { buffer: this.attentionStates, offset: i * this.stateRecordBytes, size: STATE.words * 4 },
          selection: selection ? { shared: selection, layer: i } : undefined,
        }),
      );
      this.policy = policy;
    } else {
      for (const a of this.attention) a.reset();
    }
    this.stepTimes = { full: 0, fullCount: 0, other: 0, otherCount: 0 };
    this.dispatchCounts = { steps: 0, dispatches: 0, plain: 0, plainSteps: 0, refresh: 0, refreshSteps: 0 };
    this.uniformWritesAtStart = this.uniforms.writes;
    this.submittedSteps = 0;
    this.lastArrival = 0;
  }

  /** Whether the host knows decode step `step` is a full (refresh) step: step 0, full policy, fixed stride. */
  private knownFullStep(step: number): boolean {
    const p = this.policy;
    return step === 0 || p.kind === 'full' || (p.kind === 'recycled' && !p.dynamic && isStrideFullStep(p.stride, step));
  }

  /** Whether step `step` runs the top-K selection (a refresh) as far as the host knows. */
  private refreshStep(step: number): boolean {
    const p = this.policy;
    if (p.kind === 'full' || p.kind === 'streaming') return false;
    if (step === 0) return true;
    return p.kind === 'recycled' && (p.dynamic !== undefined || isStrideFullStep(p.stride, step));
  }

  submitStep(input: DecodeInput, pos: number, sampling: SamplingParams, step: number): void {
    if (pos >= this.capacity) throw new Error(`decode past the KV capacity (${pos} >= ${this.capacity})`);
    if (this.pending.length >= IN_FLIGHT) {
      throw new Error(`decode: at most ${IN_FLIGHT} steps in flight (take a token first)`);
    }
    if (input === 'sampled' && this.submittedSteps === 0) {
      throw new Error("decode: input 'sampled' needs a previous step of this generation");
    }
    const submittedAt = performance.now();
    if (typeof input === 'number') writeBuffer(this.ctx, this.buffers.ids, new Uint32Array([input]));
    const backup = this.stateBackups[this.submittedSteps % IN_FLIGHT];
    const staging = this.staging[this.submittedSteps % this.staging.length];
    const restoreHost = this.attention.map((a) => a.checkpoint());
    const enc = this.ctx.device.createCommandEncoder({ label: 'decode' });
    // The state before this step: what a rollback to here restores.
    enc.copyBufferToBuffer(this.attentionStates, 0, backup, 0, this.attentionStates.size);
    const counting = new CountingPass(enc.beginComputePass());
    const pass = counting.asEncoder();
    (input === 'sampled' ? this.embedSampled : this.embedding).encode(pass, 1);
    for (let i = 0; i < this.layers.length; i++) this.encodeLayer(pass, i, { kind: 'decode', pos, step });
    // The layers that may refresh on this step pooled their scores; every layer's top-K runs here, in one set of
    // dispatches (selection.ts), ready for the next step's attention.
    this.selection?.encodePending(pass);
    this.finalNorm?.encode(pass, 1);
    this.lmHead.encode(pass);
    this.sampler.encode(pass, { ...sampling, step });
    counting.pass.end();
    enc.copyBufferToBuffer(this.buffers.sampled, 0, staging, 0, 4);
    this.uniforms.flush();
    this.ctx.device.queue.submit([enc.finish()]);
    const d = this.dispatchCounts;
    d.steps++;
    d.dispatches += counting.count;
    if (this.refreshStep(step)) {
      d.refresh += counting.count;
      d.refreshSteps++;
    } else {
      d.plain += counting.count;
      d.plainSteps++;
    }
    this.submittedSteps++;
    this.pending.push({
      step,
      full: this.knownFullStep(step),
      staging,
      mapped: staging.mapAsync(GPUMapMode.READ),
      backup,
      restoreHost,
      submittedAt,
      dispatches: counting.count,
    });
  }

  async takeToken(): Promise<number> {
    const p = this.pending.shift();
    if (!p) throw new Error('takeToken: no decode step in flight');
    await p.mapped;
    const id = new Uint32Array(p.staging.getMappedRange(0, 4).slice(0))[0];
    p.staging.unmap();
    // A step's time: from when it was submitted or the previous token arrived, whichever is later, to its token.
    const now = performance.now();
    const ms = now - Math.max(p.submittedAt, this.lastArrival);
    this.lastArrival = now;
    if (p.full) {
      this.stepTimes.full += ms;
      this.stepTimes.fullCount++;
    } else {
      this.stepTimes.other += ms;
      this.stepTimes.otherCount++;
    }
    return id;
  }

  async discardPending(): Promise<number> {
    const dropped = this.pending;
    if (dropped.length === 0) return 0;
    this.pending = [];
    for (const p of dropped) {
      await p.mapped;
      p.staging.unmap();
    }
    // The KV they wrote lies past the kept length (never read: attention stops at kvLen, the next step overwrites
    // it); their attention-state changes (counters, lastFullLen, selection flag) are undone from the copy the oldest
    // of them took before it ran.
    const enc = this.ctx.device.createCommandEncoder({ label: 'rollback' });
    enc.copyBufferToBuffer(dropped[0].backup, 0, this.attentionStates, 0, this.attentionStates.size);
    this.ctx.device.queue.submit([enc.finish()]);
    for (const restore of dropped[0].restoreHost) restore();
    const d = this.dispatchCounts;
    for (const p of dropped) {
      d.steps--;
      d.dispatches -= p.dispatches;
      if (this.refreshStep(p.step)) {
        d.refreshSteps--;
        d.refresh -= p.dispatches;
      } else {
        d.plainSteps--;
        d.plain -= p.dispatches;
      }
    }
    this.submittedSteps -= dropped.length;
    await this.ctx.device.queue.onSubmittedWorkDone();
    return dropped.length;
  }

  async decodeStep(id: number, pos: number, sampling: SamplingParams, step: number): Promise<number> {
    if (this.pending.length > 0) throw new Error('decodeStep while pipelined steps are in flight');
    this.submitStep(id, pos, sampling, step);
    return this.takeToken();
  }

  runtimeStats(): DecodeRuntimeStats {
    const d = this.dispatchCounts;
    const per = (n: number, steps: number) => (steps > 0 ? n / steps : null);
    return {
      decodeSteps: d.steps,
      dispatchesPerToken: per(d.plain, d.plainSteps),
      dispatchesPerRefreshToken: per(d.refresh, d.refreshSteps),
      uniformWritesPerToken: d.steps > 0 ? (this.uniforms.writes - this.uniformWritesAtStart) / d.steps : 0,
    };
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
    this.selection?.destroy();
    this.selection = null;
    const own = [this.attentionStates, ...this.stateBackups, ...this.staging, this.uniforms.buffer];
    for (const buf of [...Object.values(this.buffers), ...this.weightBuffers, ...own]) buf.destroy();
    this.kv.destroy();
  }
}
