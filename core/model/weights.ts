// Host-side weights in the layout the engine uploads: one object per linear layer, in its stored dtype.
// bfloat16 records (raw bfloat16 or f32-to-bf16) are widened to f32 here, since no kernel reads bf16.

import { bf16ArrayToF32 } from '../../kernels/half';
import type { ModelConfig } from './config';
import { storedElementBytes, type TensorManifest, type TensorRecord } from './manifest';

export type HostVector = { dtype: 'f32'; data: Float32Array } | { dtype: 'f16'; data: Uint16Array };

/** A weight matrix [rows = out][cols = in]. q4: MLC q4*_1 (`qweight` u32 [rows][cols/8], nibble j = (w >> 4j) & 15,
 * value = (q - 7) * scale; `scales` [rows][cols/32], f16 bits for q4f16, f32 for q4f32). */
export type HostLinear =
  | { dtype: 'f32'; rows: number; cols: number; data: Float32Array }
  | { dtype: 'f16'; rows: number; cols: number; data: Uint16Array }
  | { dtype: 'q4f16' | 'q4f32'; rows: number; cols: number; qweight: Uint32Array; scales: Uint16Array | Float32Array };

export interface LayerWeights {
  inputNorm: HostVector;
  /** Fused projection: q rows, then k rows, then v rows. */
  qkv: HostLinear;
  qkvBias?: HostVector;
  /** Qwen3: RMSNorm weights [headDim] applied per head to q and k before RoPE. */
  qNorm?: HostVector;
  kNorm?: HostVector;
  oProj: HostLinear;
  postNorm: HostVector;
  /** Fused MLP input: gate rows, then up rows. */
  gateUp: HostLinear;
  down: HostLinear;
}

export interface ModelWeights {
  /** [vocab][hidden]; the embedding of token t is row t. */
  embed: HostLinear;
  layers: LayerWeights[];
  finalNorm: HostVector;
  /** [vocab][hidden]; the same object as `embed` when the embeddings are tied. */
  lmHead: HostLinear;
}

export class WeightsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WeightsError';
  }
}

/** Reads tensors by name out of the shard bytes a manifest describes. */
export class TensorReader {
  constructor(
    readonly manifest: TensorManifest,
    private readonly shards: Uint8Array[],
  ) {
    if (shards.length !== manifest.shards.length) {
      throw new WeightsError(`expected ${manifest.shards.length} shards, got ${shards.length}`);
    }
  }

  has(name: string): boolean {
    return this.manifest.tensors.has(name);
  }

  record(name: string): TensorRecord {
    const entry = this.manifest.tensors.get(name);
    if (!entry) throw new WeightsError(`tensor "${name}" is missing from ${this.manifest.fileName}`);
    return entry.record;
  }

  /** float32 / float16 / bfloat16 / uint32 data as a typed array (a view into the shard when aligned). */
  read(name: string): { record: TensorRecord; data: Float32Array | Uint16Array | Uint32Array } {
    const entry = this.manifest.tensors.get(name);
    if (!entry) throw new WeightsError(`tensor "${name}" is missing from ${this.manifest.fileName}`);
    const { record } = entry;
    const shard = this.shards[entry.shard];
    const bytes = shard.subarray(record.byteOffset, record.byteOffset + record.nbytes);
    if (bytes.length !== record.nbytes) {
      throw new WeightsError(`tensor "${name}" runs past the end of ${this.manifest.shards[entry.shard].dataPath}`);
    }
    const elemBytes = storedElementBytes(record);
    const count = record.nbytes / elemBytes;
    const aligned = (shard.byteOffset + record.byteOffset) % elemBytes === 0;
    const buffer = aligned ? shard.buffer : bytes.slice().buffer;
    const offset = aligned ? shard.byteOffset + record.byteOffset : 0;
    if (record.format === 'f32-to-bf16' || record.dtype === 'bfloat16') {
      return { record, data: bf16ArrayToF32(new Uint16Array(buffer, offset, count)) };
    }
    if (record.dtype === 'float32') return { record, data: new Float32Array(buffer, offset, count) };
    if (record.dtype === 'float16') return { record, data: new Uint16Array(buffer, offset, count) };
    return { record, data: new Uint32Array(buffer, offset, count) };
  }

  vector(name: string, length: number): HostVector {
    const { record, data } = this.read(name);
    if (data.length !== length)
      throw new WeightsError(`tensor "${name}" has ${data.length} elements, expected ${length}`);
    if (data instanceof Float32Array) return { dtype: 'f32', data };
    if (data instanceof Uint16Array) return { dtype: 'f16', data };
    throw new WeightsError(`tensor "${name}" has dtype ${record.dtype}, expected a float vector`);
  }

  /** `prefix` is the layer name without `.weight` / `.q_weight`. */
  linear(prefix: string, rows: number, cols: number): HostLinear {
    if (this.has(`${prefix}.q_weight`)) return this.quantizedLinear(prefix, rows, cols);
    const name = `${prefix}.weight`;
    if (!this.has(name)) {
      throw new WeightsError(`tensor "${name}" (or "${prefix}.q_weight") is missing from ${this.manifest.fileName}`);
    }
    const { record, data } = this.read(name);
    checkShape(record, [rows, cols]);
    if (data instanceof Float32Array) return { dtype: 'f32', rows, cols, data };
    if (data instanceof Uint16Array) return { dtype: 'f16', rows, cols, data };
    throw new WeightsError(`tensor "${name}" has dtype ${record.dtype}, expected float weights`);
  }

  private quantizedLinear(prefix: string, rows: number, cols: number): HostLinear {
    if (cols % 32 !== 0) throw new WeightsError(`${prefix}: q4 needs in-features divisible by 32, got ${cols}`);
    const q = this.read(`${prefix}.q_weight`);
    if (q.record.dtype !== 'uint32') throw new WeightsError(`tensor "${prefix}.q_weight" must be uint32`);
    checkShape(q.record, [rows, cols / 8]);
    const s = this.read(`${prefix}.q_scale`);
    checkShape(s.record, [rows, cols / 32]);
    const qweight = q.data as Uint32Array;
    if (s.data instanceof Uint16Array) return { dtype: 'q4f16', rows, cols, qweight, scales: s.data };
    if (s.data instanceof Float32Array) return { dtype: 'q4f32', rows, cols, qweight, scales: s.data };
    throw new WeightsError(`tensor "${prefix}.q_scale" has dtype ${s.record.dtype}, expected float16/float32`);
  }
}

function checkShape(record: TensorRecord, expected: number[]): void {
  if (record.shape.length !== expected.length || record.shape.some((d, i) => d !== expected[i])) {
    throw new WeightsError(
      `tensor "${record.name}" has shape [${record.shape.join(', ')}], expected [${expected.join(', ')}]`,
    );
  }
}

/** Builds the normalised weights for `config` from the tensors a reader can see. */
export function buildModelWeights(config: ModelConfig, reader: TensorReader): ModelWeights {
  const { hiddenSize: h, numHeads, numKvHeads, headDim, intermediateSize: inter, vocabSize: vocab } = config;
  const qkvRows = (numHeads + 2 * numKvHeads) * headDim;
  const embed = reader.linear('model.embed_tokens', vocab, h);
  const layers: LayerWeights[] = [];
  for (let i = 0; i < config.numLayers; i++) {
    const p = `model.layers.${i}`;
    // Llama: self_attn.qkv_proj; Qwen2/Qwen3: self_attn.c_attn (MLC's names).
    const qkvPrefix = [`${p}.self_attn.qkv_proj`, `${p}.self_attn.c_attn`].find(
      (n) => reader.has(`${n}.weight`) || reader.has(`${n}.q_weight`),
    );
    if (!qkvPrefix) {
      throw new WeightsError(
        `tensor "${p}.self_attn.qkv_proj.weight" (or c_attn / q_weight) is missing from ${reader.manifest.fileName}`,
      );
    }
    const layer: LayerWeights = {
      inputNorm: reader.vector(`${p}.input_layernorm.weight`, h),
      qkv: reader.linear(qkvPrefix, qkvRows, h),
      oProj: reader.linear(`${p}.self_attn.o_proj`, h, numHeads * headDim),
      postNorm: reader.vector(`${p}.post_attention_layernorm.weight`, h),
      gateUp: reader.linear(`${p}.mlp.gate_up_proj`, 2 * inter, h),
      down: reader.linear(`${p}.mlp.down_proj`, h, inter),
    };
    if (config.qkvBias) layer.qkvBias = reader.vector(`${qkvPrefix}.bias`, qkvRows);
    else if (reader.has(`${qkvPrefix}.bias`)) {
      throw new WeightsError(`tensor "${qkvPrefix}.bias" is present but the ${config.architecture} config has no bias`);
    }
    if (config.qkNorm) {
      layer.qNorm = reader.vector(`${p}.self_attn.q_norm.weight`, headDim);
      layer.kNorm = reader.vector(`${p}.self_attn.k_norm.weight`, headDim);
    }
    layers.push(layer);
  }
  const finalNorm = reader.vector('model.norm.weight', h);
  let lmHead = embed;
  if (!config.tieWordEmbeddings) lmHead = reader.linear('lm_head', vocab, h);
  return { embed, layers, finalNorm, lmHead };
}

/** Total bytes of host weight data (what the engine will upload). */
export function hostWeightBytes(w: ModelWeights): number {
  const seen = new Set<object>();
  let total = 0;
  const add = (x: HostLinear | HostVector | undefined) => {
    if (!x || seen.has(x)) return;
    seen.add(x);
    if ('qweight' in x) total += x.qweight.byteLength + x.scales.byteLength;
    else total += x.data.byteLength;
  };
  add(w.embed);
  add(w.lmHead);
  add(w.finalNorm);
  for (const l of w.layers)
    [l.inputNorm, l.qkv, l.qkvBias, l.qNorm, l.kNorm, l.oProj, l.postNorm, l.gateUp, l.down].forEach(add);
  return total;
}
