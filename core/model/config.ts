// mlc-chat-config.json -> ModelConfig. MLC nests the model's settings under `model_config` and repeats the main ones
// at the top level; we read the nested value first and fall back to the top level. Anything our runtime does not
// implement is rejected here, by name, so the engine never sees a model it would run wrongly.

export type Architecture = 'llama' | 'qwen2' | 'qwen3';
export type Quantization = 'q0f32' | 'q0f16' | 'q4f16_1' | 'q4f32_1';

export interface Llama3RopeScaling {
  type: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

/** MLC's conversation template (the `conv_template` object of mlc-chat-config.json). */
export interface ConvTemplate {
  name: string;
  system_template: string;
  system_message: string;
  system_prefix_token_ids?: number[];
  add_role_after_system_message?: boolean;
  roles: Record<string, string>;
  role_templates?: Record<string, string>;
  seps: string[];
  role_content_sep?: string;
  role_empty_sep?: string;
  stop_str?: string[];
  stop_token_ids?: number[];
}

export interface ModelConfig {
  architecture: Architecture;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: null | Llama3RopeScaling;
  tieWordEmbeddings: boolean;
  /** Bias on the fused q/k/v projection (Qwen2). */
  qkvBias: boolean;
  /** Per-head RMSNorm on q and k before RoPE (Qwen3). */
  qkNorm: boolean;
  contextWindow: number;
  prefillChunkSize: number;
  quantization: Quantization;
  bosTokenId: number | null;
  eosTokenIds: number[];
  convTemplate: ConvTemplate | null;
}

/** The model needs a feature our runtime does not implement (the engine may fall back to WebLLM's MLCEngine). */
export class UnsupportedModelError extends Error {
  constructor(
    readonly feature: string,
    detail: string,
  ) {
    super(`Unsupported model: ${feature}: ${detail}`);
    this.name = 'UnsupportedModelError';
  }
}

/** mlc-chat-config.json is malformed (missing or wrong-typed field). */
export class ModelConfigError extends Error {
  constructor(message: string) {
    super(`mlc-chat-config.json: ${message}`);
    this.name = 'ModelConfigError';
  }
}

type Json = Record<string, unknown>;

const ARCHITECTURES: Record<string, Architecture> = { llama: 'llama', qwen2: 'qwen2', qwen3: 'qwen3' };
const QUANTIZATIONS: readonly string[] = ['q0f32', 'q0f16', 'q4f16_1', 'q4f32_1'];

export function parseModelConfig(text: string): ModelConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ModelConfigError(`not valid JSON (${(e as Error).message})`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new ModelConfigError('expected a JSON object');
  return modelConfigFromJson(raw as Json);
}

export function modelConfigFromJson(top: Json): ModelConfig {
  const nested = (isObject(top.model_config) ? top.model_config : {}) as Json;
  /** Nested value first, then the top level. */
  const field = (name: string): unknown => (nested[name] !== undefined ? nested[name] : top[name]);
  const num = (name: string, fallback?: number): number => {
    const v = field(name);
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw new ModelConfigError(`missing field "${name}"`);
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new ModelConfigError(`field "${name}" is not a number`);
    return v;
  };
  const positiveInt = (name: string, fallback?: number): number => {
    const v = num(name, fallback);
    if (!Number.isInteger(v) || v <= 0) throw new ModelConfigError(`field "${name}" must be a positive integer`);
    return v;
  };

  const modelType = top.model_type ?? nested.model_type;
  if (typeof modelType !== 'string') throw new ModelConfigError('missing field "model_type"');
  const architecture = ARCHITECTURES[modelType];
  if (!architecture) {
    throw new UnsupportedModelError(
      `model_type "${modelType}"`,
      'only llama (Llama 2/3.x, SmolLM2), qwen2 (Qwen2/2.5) and qwen3 are implemented',
    );
  }

  const quantization = top.quantization;
  if (typeof quantization !== 'string') throw new ModelConfigError('missing field "quantization"');
  if (!QUANTIZATIONS.includes(quantization)) {
    throw new UnsupportedModelError(`quantization "${quantization}"`, `supported: ${QUANTIZATIONS.join(', ')}`);
  }

  rejectUnsupportedFeatures(field, modelType);

  const hiddenSize = positiveInt('hidden_size');
  const numHeads = positiveInt('num_attention_heads');
  const numKvHeads = positiveInt('num_key_value_heads', numHeads);
  const headDimRaw = num('head_dim', 0);
  const headDim = headDimRaw > 0 ? headDimRaw : hiddenSize / numHeads;
  if (!Number.isInteger(headDim)) {
    throw new ModelConfigError(`hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numHeads}`);
  }
  if (numHeads % numKvHeads !== 0) {
    throw new ModelConfigError(
      `num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`,
    );
  }
  if (headDim % 2 !== 0) throw new ModelConfigError(`head_dim ${headDim} must be even for RoPE`);

  // Llama reads `position_embedding_base` (MLC's name) and falls back to `rope_theta`; Qwen uses `rope_theta`.
  const ropeTheta =
    field('position_embedding_base') !== undefined && num('position_embedding_base') > 0
      ? num('position_embedding_base')
      : num('rope_theta', 10000);

  const contextWindow = positiveInt(
    'context_window_size',
    (field('max_position_embeddings') as number | undefined) ?? undefined,
  );
  const prefillChunkSize = positiveInt('prefill_chunk_size', Math.min(contextWindow, 2048));

  let qkvBias = architecture === 'qwen2';
  if (architecture === 'qwen3') {
    if (field('attention_bias') === true) {
      // MLC's Qwen3 puts the bias on o_proj as well; no released Qwen3 uses it.
      throw new UnsupportedModelError('qwen3 attention_bias', 'biases on qkv/o_proj are not implemented for Qwen3');
    }
    qkvBias = false;
  }

  const eos = top.eos_token_id ?? nested.eos_token_id;
  const eosTokenIds = Array.isArray(eos) ? eos.filter((x): x is number => typeof x === 'number') : [];
  if (typeof eos === 'number') eosTokenIds.push(eos);
  const bos = top.bos_token_id ?? nested.bos_token_id;

  return {
    architecture,
    hiddenSize,
    intermediateSize: positiveInt('intermediate_size'),
    numLayers: positiveInt('num_hidden_layers'),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: positiveInt('vocab_size'),
    rmsNormEps: num('rms_norm_eps', num('layer_norm_eps', 1e-5)),
    ropeTheta,
    ropeScaling: parseRopeScaling(field('rope_scaling')),
    tieWordEmbeddings: field('tie_word_embeddings') === true,
    qkvBias,
    qkNorm: architecture === 'qwen3',
    contextWindow,
    prefillChunkSize,
    quantization: quantization as Quantization,
    bosTokenId: typeof bos === 'number' ? bos : null,
    eosTokenIds,
    convTemplate: parseConvTemplate(top.conv_template),
  };
}

function rejectUnsupportedFeatures(field: (name: string) => unknown, modelType: string): void {
  const slidingWindow = field('sliding_window_size') ?? field('sliding_window');
  const useSliding = field('use_sliding_window');
  if (typeof slidingWindow === 'number' && slidingWindow > 0 && useSliding !== false) {
    throw new UnsupportedModelError('sliding window attention', `sliding_window_size = ${slidingWindow}`);
  }
  for (const moeField of ['num_experts', 'num_local_experts', 'num_experts_per_tok', 'moe_intermediate_size']) {
    const v = field(moeField);
    if (typeof v === 'number' && v > 0) throw new UnsupportedModelError('mixture of experts', `${moeField} = ${v}`);
  }
  const act = field('hidden_act');
  if (act !== undefined && act !== 'silu' && act !== 'swish') {
    throw new UnsupportedModelError(`hidden_act "${String(act)}"`, 'only SiLU-gated MLPs are implemented');
  }
  const tp = field('tensor_parallel_shards');
  if (typeof tp === 'number' && tp > 1) {
    throw new UnsupportedModelError('tensor parallelism', `tensor_parallel_shards = ${tp} (${modelType})`);
  }
}

function parseRopeScaling(v: unknown): Llama3RopeScaling | null {
  if (v === undefined || v === null) return null;
  if (!isObject(v)) throw new ModelConfigError('field "rope_scaling" must be an object or null');
  const s = v as Json;
  const type = s.rope_type ?? s.type;
  // MLC's Llama treats a rope_scaling object without a type as absent.
  if (type === undefined) return null;
  if (type === 'default' || type === null) return null;
  if (type !== 'llama3') {
    throw new UnsupportedModelError(`rope_scaling type "${String(type)}"`, 'only "llama3" RoPE scaling is implemented');
  }
  const n = (name: string): number => {
    const x = s[name];
    if (typeof x !== 'number' || !(x > 0)) throw new ModelConfigError(`rope_scaling.${name} must be a positive number`);
    return x;
  };
  return {
    type: 'llama3',
    factor: n('factor'),
    lowFreqFactor: n('low_freq_factor'),
    highFreqFactor: n('high_freq_factor'),
    originalMaxPositionEmbeddings: n('original_max_position_embeddings'),
  };
}

function parseConvTemplate(v: unknown): ConvTemplate | null {
  if (!isObject(v)) return null;
  const t = v as Json;
  const str = (x: unknown, fallback: string): string => (typeof x === 'string' ? x : fallback);
  const strings = (x: unknown): string[] | undefined =>
    Array.isArray(x) ? x.filter((s): s is string => typeof s === 'string') : typeof x === 'string' ? [x] : undefined;
  const ints = (x: unknown): number[] | undefined =>
    Array.isArray(x) ? x.filter((n): n is number => typeof n === 'number') : undefined;
  const record = (x: unknown): Record<string, string> => {
    const out: Record<string, string> = {};
    if (isObject(x)) for (const [k, val] of Object.entries(x as Json)) if (typeof val === 'string') out[k] = val;
    return out;
  };
  return {
    name: str(t.name, 'custom'),
    system_template: str(t.system_template, '{system_message}'),
    system_message: str(t.system_message, ''),
    system_prefix_token_ids: ints(t.system_prefix_token_ids),
    add_role_after_system_message:
      typeof t.add_role_after_system_message === 'boolean' ? t.add_role_after_system_message : undefined,
    roles: record(t.roles),
    role_templates: record(t.role_templates),
    seps: strings(t.seps) ?? [''],
    role_content_sep: str(t.role_content_sep, ''),
    role_empty_sep: str(t.role_empty_sep, ''),
    stop_str: strings(t.stop_str) ?? [],
    stop_token_ids: ints(t.stop_token_ids) ?? [],
  };
}

function isObject(v: unknown): v is object {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
