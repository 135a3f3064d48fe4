// Random-weight models in exact MLC format, for tests: mlc-chat-config.json, tensor-cache.json (real md5s),
// params_shard_*.bin (>= 2 shards) and a WordLevel tokenizer.json that web-tokenizers loads. Deterministic from a
// seed. Also returns every tensor as the f32 values a correct loader + dequantiser must reproduce.

import { createHash } from 'node:crypto';
import { f16BitsToF32, f32ArrayToBf16, f32ArrayToF16, f32ToF16Bits } from '../../kernels/half';
import type { Architecture, Quantization } from '../model/config';

export interface FixtureOptions {
  architecture?: Architecture;
  quantization?: Quantization;
  /** Tied input/output embeddings (no lm_head tensor). */
  tied?: boolean;
  /** Llama-3.x rope_scaling (llama only). */
  ropeScaling?: boolean;
  /** Store float32 tensors as `f32-to-bf16` records, and the final norm as a raw `bfloat16` record. */
  bf16?: boolean;
  /** 'raw' (BOS prefix only) or 'chatml' (adds <|im_start|>/<|im_end|> tokens). */
  template?: 'raw' | 'chatml';
  seed?: number;
  hiddenSize?: number;
  intermediateSize?: number;
  numLayers?: number;
  numHeads?: number;
  numKvHeads?: number;
  headDim?: number;
  vocabSize?: number;
  contextWindow?: number;
  ropeTheta?: number;
  /** Number of params_shard_*.bin files (at least 2). */
  shards?: number;
}

export interface FixtureModel {
  /** File name -> bytes, ready to write to a folder or serve over HTTP. */
  files: Map<string, Uint8Array>;
  /** Tensor name -> values as f32 after the stored rounding (f16 / bf16 / q4 dequantisation). */
  tensors: Map<string, Float32Array>;
  /** The tokenizer's words by id. */
  vocab: string[];
  options: Required<FixtureOptions>;
}

const DEFAULTS: Required<FixtureOptions> = {
  architecture: 'llama',
  quantization: 'q0f32',
  tied: false,
  ropeScaling: false,
  bf16: false,
  template: 'raw',
  seed: 1,
  hiddenSize: 64,
  intermediateSize: 96,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 16,
  vocabSize: 96,
  contextWindow: 1024,
  ropeTheta: 10000,
  shards: 2,
};

/** mulberry32: tiny, seedable, good enough for test weights. */
export function makeRng(seed: number): { uniform(): number; normal(): number } {
  let state = seed >>> 0;
  const uniform = () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = () => {
    const u = Math.max(uniform(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * uniform());
  };
  return { uniform, normal };
}

/** MLC q4*_1 quantisation of [rows][cols]: groups of 32 along cols, scale = max|w| / 7, q = round(w / scale) + 7
 * clamped to [0, 15], 8 nibbles per u32 lowest first. `dequantized` uses the stored (rounded) scale. */
export function quantizeQ4(
  values: Float32Array,
  rows: number,
  cols: number,
  scaleDtype: 'f16' | 'f32',
): { qweight: Uint32Array; scales: Uint16Array | Float32Array; dequantized: Float32Array } {
  if (cols % 32 !== 0) throw new Error(`quantizeQ4: cols ${cols} is not a multiple of 32`);
  const groups = cols / 32;
  const qweight = new Uint32Array((rows * cols) / 8);
  const scales = scaleDtype === 'f16' ? new Uint16Array(rows * groups) : new Float32Array(rows * groups);
  const dequantized = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < groups; g++) {
      const base = r * cols + g * 32;
      let maxAbs = 0;
      for (let j = 0; j < 32; j++) maxAbs = Math.max(maxAbs, Math.abs(values[base + j]));
      let scale: number;
      if (scaleDtype === 'f16') {
        const bits = f32ToF16Bits(maxAbs / 7);
        scales[r * groups + g] = bits;
        scale = f16BitsToF32(bits);
      } else {
        scales[r * groups + g] = maxAbs / 7;
        scale = scales[r * groups + g];
      }
      for (let j = 0; j < 32; j++) {
        const q = scale === 0 ? 7 : Math.min(15, Math.max(0, Math.round(values[base + j] / scale) + 7));
        qweight[(base + j) >>> 3] |= q << (4 * (j & 7));
        dequantized[base + j] = (q - 7) * scale;
      }
    }
  }
  return { qweight, scales, dequantized };
}

interface PendingTensor {
  name: string;
  shape: number[];
  dtype: 'float32' | 'float16' | 'bfloat16' | 'uint32';
  format: 'raw' | 'f32-to-bf16';
  bytes: Uint8Array;
}

function bytesOf(a: Float32Array | Uint16Array | Uint32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

export function makeFixtureModel(options: FixtureOptions = {}): FixtureModel {
  const o: Required<FixtureOptions> = { ...DEFAULTS, ...options };
  const rng = makeRng(o.seed);
  const q4 = o.quantization === 'q4f16_1' || o.quantization === 'q4f32_1';
  const half = o.quantization === 'q0f16' || o.quantization === 'q4f16_1';
  const pending: PendingTensor[] = [];
  const tensors = new Map<string, Float32Array>();

  /** A plain (not quantised) float tensor in the model dtype. */
  const addFloat = (name: string, shape: number[], values: Float32Array, rawBf16 = false) => {
    if (half) {
      const bits = f32ArrayToF16(values);
      pending.push({ name, shape, dtype: 'float16', format: 'raw', bytes: bytesOf(bits) });
      tensors.set(name, Float32Array.from(bits, f16BitsToF32));
    } else if (o.bf16) {
      const bits = f32ArrayToBf16(values);
      const dtype = rawBf16 ? 'bfloat16' : 'float32';
      pending.push({ name, shape, dtype, format: rawBf16 ? 'raw' : 'f32-to-bf16', bytes: bytesOf(bits) });
      tensors.set(name, new Float32Array(Uint32Array.from(bits, (b) => b << 16).buffer));
    } else {
      pending.push({ name, shape, dtype: 'float32', format: 'raw', bytes: bytesOf(values) });
      tensors.set(name, values);
    }
  };
  const randomValues = (n: number, std: number, mean = 0) =>
    Float32Array.from({ length: n }, () => mean + std * rng.normal());
  /** A weight matrix [rows][cols]: quantised in q4 modes, else a plain float tensor. */
  const addLinear = (prefix: string, rows: number, cols: number, std = 1 / Math.sqrt(cols)) => {
    const values = randomValues(rows * cols, std);
    if (!q4) return addFloat(`${prefix}.weight`, [rows, cols], values);
    const q = quantizeQ4(values, rows, cols, half ? 'f16' : 'f32');
    pending.push({
      name: `${prefix}.q_weight`,
      shape: [rows, cols / 8],
      dtype: 'uint32',
      format: 'raw',
      bytes: bytesOf(q.qweight),
    });
    const scaleDtype = half ? 'float16' : 'float32';
    pending.push({
      name: `${prefix}.q_scale`,
      shape: [rows, cols / 32],
      dtype: scaleDtype,
      format: 'raw',
      bytes: bytesOf(q.scales),
    });
    tensors.set(`${prefix}.weight`, q.dequantized);
  };

  const { hiddenSize: h, intermediateSize: inter, numHeads, numKvHeads, headDim: hd, vocabSize } = o;
  const qkvName = o.architecture === 'llama' ? 'qkv_proj' : 'c_attn';
  addLinear('model.embed_tokens', vocabSize, h, 0.5);
  for (let i = 0; i < o.numLayers; i++) {
    const p = `model.layers.${i}`;
    addFloat(`${p}.input_layernorm.weight`, [h], randomValues(h, 0.1, 1));
    addLinear(`${p}.self_attn.${qkvName}`, (numHeads + 2 * numKvHeads) * hd, h);
    if (o.architecture === 'qwen2') {
      addFloat(
        `${p}.self_attn.${qkvName}.bias`,
        [(numHeads + 2 * numKvHeads) * hd],
        randomValues((numHeads + 2 * numKvHeads) * hd, 0.2),
      );
    }
    if (o.architecture === 'qwen3') {
      addFloat(`${p}.self_attn.q_norm.weight`, [hd], randomValues(hd, 0.1, 1));
      addFloat(`${p}.self_attn.k_norm.weight`, [hd], randomValues(hd, 0.1, 1));
    }
    addLinear(`${p}.self_attn.o_proj`, h, numHeads * hd);
    addFloat(`${p}.post_attention_layernorm.weight`, [h], randomValues(h, 0.1, 1));
    addLinear(`${p}.mlp.gate_up_proj`, 2 * inter, h);
    addLinear(`${p}.mlp.down_proj`, h, inter);
  }
  addFloat('model.norm.weight', [h], randomValues(h, 0.1, 1), o.bf16);
  if (!o.tied) addLinear('lm_head', vocabSize, h, 0.5 / Math.sqrt(h));

  const files = new Map<string, Uint8Array>();
  const manifest = packShards(pending, Math.max(2, o.shards), files);
  const { json: tokenizerJson, vocab } = makeTokenizerJson(vocabSize, o.template);
  files.set('tensor-cache.json', new TextEncoder().encode(JSON.stringify(manifest, null, 1)));
  files.set('mlc-chat-config.json', new TextEncoder().encode(JSON.stringify(makeChatConfig(o), null, 1)));
  files.set('tokenizer.json', new TextEncoder().encode(tokenizerJson));
  return { files, tensors, vocab, options: o };
}

function packShards(pending: PendingTensor[], shardCount: number, files: Map<string, Uint8Array>) {
  const total = pending.reduce((a, t) => a + t.bytes.length, 0);
  const target = Math.ceil(total / shardCount);
  const groups: PendingTensor[][] = [[]];
  let current = 0;
  for (const t of pending) {
    if (current >= target && groups.length < shardCount) {
      groups.push([]);
      current = 0;
    }
    groups[groups.length - 1].push(t);
    current += t.bytes.length;
  }
  const records = groups.map((group, i) => {
    const nbytes = group.reduce((a, t) => a + t.bytes.length, 0);
    const data = new Uint8Array(nbytes);
    let offset = 0;
    const tensorRecords = group.map((t) => {
      data.set(t.bytes, offset);
      const r = {
        name: t.name,
        shape: t.shape,
        dtype: t.dtype,
        format: t.format,
        nbytes: t.bytes.length,
        byteOffset: offset,
      };
      offset += t.bytes.length;
      return r;
    });
    const dataPath = `params_shard_${i}.bin`;
    files.set(dataPath, data);
    return {
      dataPath,
      format: 'raw-shard',
      nbytes,
      md5sum: createHash('md5').update(data).digest('hex'),
      records: tensorRecords,
    };
  });
  const paramSize = pending.length;
  return { metadata: { ParamSize: paramSize, ParamBytes: total, BitsPerParam: 0 }, records };
}

function makeChatConfig(o: Required<FixtureOptions>): Record<string, unknown> {
  const modelConfig: Record<string, unknown> = {
    hidden_act: 'silu',
    hidden_size: o.hiddenSize,
    intermediate_size: o.intermediateSize,
    num_attention_heads: o.numHeads,
    num_hidden_layers: o.numLayers,
    num_key_value_heads: o.numKvHeads,
    head_dim: o.headDim,
    rms_norm_eps: 1e-6,
    vocab_size: o.vocabSize,
    tie_word_embeddings: o.tied,
    context_window_size: o.contextWindow,
    prefill_chunk_size: Math.min(o.contextWindow, 512),
    tensor_parallel_shards: 1,
    max_batch_size: 1,
  };
  if (o.architecture === 'llama') {
    modelConfig.position_embedding_base = o.ropeTheta;
    modelConfig.rope_scaling = o.ropeScaling
      ? {
          rope_type: 'llama3',
          factor: 8,
          low_freq_factor: 1,
          high_freq_factor: 4,
          original_max_position_embeddings: 64,
        }
      : null;
  } else {
    modelConfig.rope_theta = o.ropeTheta;
  }
  if (o.architecture === 'qwen3') modelConfig.attention_bias = false;
  const chatml = o.template === 'chatml';
  return {
    model_type: o.architecture,
    quantization: o.quantization,
    model_config: modelConfig,
    vocab_size: o.vocabSize,
    context_window_size: o.contextWindow,
    sliding_window_size: -1,
    prefill_chunk_size: modelConfig.prefill_chunk_size,
    attention_sink_size: -1,
    tensor_parallel_shards: 1,
    temperature: 0,
    conv_template: {
      name: chatml ? 'chatml' : 'raw',
      system_template: chatml ? '<|im_start|>system\n{system_message}<|im_end|>\n' : '{system_message}',
      system_message: chatml ? 'You are a test model.' : '',
      system_prefix_token_ids: [1],
      roles: chatml ? { user: '<|im_start|>user', assistant: '<|im_start|>assistant' } : { user: '', assistant: '' },
      role_templates: { user: '{user_message}', assistant: '{assistant_message}' },
      seps: chatml ? ['<|im_end|>\n'] : [' '],
      role_content_sep: chatml ? '\n' : '',
      role_empty_sep: chatml ? '\n' : '',
      stop_str: chatml ? ['<|im_end|>'] : [],
      stop_token_ids: chatml ? [2, 4] : [2],
    },
    pad_token_id: 0,
    bos_token_id: 1,
    eos_token_id: 2,
    tokenizer_files: ['tokenizer.json'],
    version: '0.1.0',
  };
}

/** A HF WordLevel tokenizer: whitespace-split words, special tokens as added tokens, decoded joined by spaces. */
function makeTokenizerJson(vocabSize: number, template: 'raw' | 'chatml'): { json: string; vocab: string[] } {
  const specials = ['<unk>', '<s>', '</s>', ...(template === 'chatml' ? ['<|im_start|>', '<|im_end|>'] : [])];
  const words = template === 'chatml' ? ['system', 'user', 'assistant'] : [];
  const vocab = [...specials, ...words];
  for (let i = 0; vocab.length < vocabSize; i++) vocab.push(`w${i}`);
  if (vocab.length > vocabSize) throw new Error(`vocabSize ${vocabSize} is too small for the ${template} specials`);
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((content, id) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: { type: 'WhitespaceSplit' },
    post_processor: null,
    decoder: { type: 'WordPiece', prefix: '##', cleanup: false },
    model: { type: 'WordLevel', vocab: Object.fromEntries(vocab.map((w, i) => [w, i])), unk_token: '<unk>' },
  };
  return { json: JSON.stringify(json), vocab };
}
