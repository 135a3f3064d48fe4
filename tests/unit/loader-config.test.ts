// mlc-chat-config.json parsing: the shapes of real MLC configs (values as published for these models) and the
// unsupported features we must reject by name.
import { describe, expect, it } from 'vitest';
import { type ModelConfig, ModelConfigError, parseModelConfig, UnsupportedModelError } from '../../core/model/config';

function mlcConfig(modelType: string, quantization: string, modelConfig: Record<string, unknown>, extra = {}) {
  return JSON.stringify({
    model_type: modelType,
    quantization,
    model_config: modelConfig,
    vocab_size: modelConfig.vocab_size,
    context_window_size: 4096,
    sliding_window_size: -1,
    prefill_chunk_size: 2048,
    attention_sink_size: -1,
    tensor_parallel_shards: 1,
    bos_token_id: 128000,
    eos_token_id: [128001, 128008, 128009],
    ...extra,
  });
}

const llama32_1b = {
  hidden_size: 2048,
  intermediate_size: 8192,
  num_attention_heads: 32,
  num_hidden_layers: 16,
  rms_norm_eps: 1e-5,
  vocab_size: 128256,
  tie_word_embeddings: true,
  position_embedding_base: 500000.0,
  rope_scaling: {
    factor: 32.0,
    high_freq_factor: 4.0,
    low_freq_factor: 1.0,
    original_max_position_embeddings: 8192,
    rope_type: 'llama3',
  },
  context_window_size: 131072,
  prefill_chunk_size: 8192,
  num_key_value_heads: 8,
  head_dim: 64,
  tensor_parallel_shards: 1,
  pipeline_parallel_stages: 1,
  max_batch_size: 128,
};

describe('parseModelConfig', () => {
  it('Llama-3.2-1B q4f16_1: GQA, llama3 rope scaling, tied, nested values win over top-level', () => {
    const c = parseModelConfig(mlcConfig('llama', 'q4f16_1', llama32_1b));
    const expected: Partial<ModelConfig> = {
      architecture: 'llama',
      hiddenSize: 2048,
      intermediateSize: 8192,
      numLayers: 16,
      numHeads: 32,
      numKvHeads: 8,
      headDim: 64,
      vocabSize: 128256,
      rmsNormEps: 1e-5,
      ropeTheta: 500000,
      tieWordEmbeddings: true,
      qkvBias: false,
      qkNorm: false,
      contextWindow: 131072,
      prefillChunkSize: 8192,
      quantization: 'q4f16_1',
      bosTokenId: 128000,
      eosTokenIds: [128001, 128008, 128009],
    };
    expect(c).toMatchObject(expected);
    expect(c.ropeScaling).toEqual({
      type: 'llama3',
      factor: 32,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositionEmbeddings: 8192,
    });
  });

  it('Qwen2.5-0.5B: qkv bias, rope_theta, head_dim from hidden/heads when absent', () => {
    const c = parseModelConfig(
      mlcConfig('qwen2', 'q4f16_1', {
        hidden_act: 'silu',
        hidden_size: 896,
        intermediate_size: 4864,
        num_attention_heads: 14,
        num_hidden_layers: 24,
        num_key_value_heads: 2,
        rms_norm_eps: 1e-6,
        rope_theta: 1000000.0,
        vocab_size: 151936,
        tie_word_embeddings: true,
        context_window_size: 32768,
        prefill_chunk_size: 2048,
      }),
    );
    expect(c).toMatchObject({ architecture: 'qwen2', headDim: 64, numKvHeads: 2, ropeTheta: 1e6, qkvBias: true });
    expect(c.qkNorm).toBe(false);
    expect(c.ropeScaling).toBeNull();
  });

  it('Qwen3-0.6B: q/k norm, explicit head_dim that differs from hidden/heads', () => {
    const c = parseModelConfig(
      mlcConfig('qwen3', 'q4f16_1', {
        hidden_act: 'silu',
        hidden_size: 1024,
        intermediate_size: 3072,
        attention_bias: false,
        num_attention_heads: 16,
        num_hidden_layers: 28,
        num_key_value_heads: 8,
        rms_norm_eps: 1e-6,
        rope_theta: 1000000,
        vocab_size: 151936,
        tie_word_embeddings: true,
        context_window_size: 40960,
        prefill_chunk_size: 2048,
        head_dim: 128,
      }),
    );
    expect(c).toMatchObject({ architecture: 'qwen3', headDim: 128, qkNorm: true, qkvBias: false, hiddenSize: 1024 });
  });

  it('SmolLM2 (llama arch) with model fields only at the top level, rope_theta fallback, q0f16', () => {
    const c = parseModelConfig(
      JSON.stringify({
        model_type: 'llama',
        quantization: 'q0f16',
        hidden_size: 960,
        intermediate_size: 2560,
        num_attention_heads: 15,
        num_key_value_heads: 5,
        num_hidden_layers: 32,
        rms_norm_eps: 1e-5,
        vocab_size: 49152,
        rope_theta: 100000,
        tie_word_embeddings: true,
        context_window_size: 8192,
        conv_template: {
          name: 'chatml',
          system_template: '<|im_start|>system\n{system_message}<|im_end|>\n',
          roles: { user: '<|im_start|>user', assistant: '<|im_start|>assistant' },
          seps: ['<|im_end|>\n'],
          stop_token_ids: [2],
        },
      }),
    );
    expect(c).toMatchObject({ architecture: 'llama', headDim: 64, ropeTheta: 100000, quantization: 'q0f16' });
    expect(c.prefillChunkSize).toBe(2048);
    expect(c.convTemplate?.name).toBe('chatml');
    expect(c.convTemplate?.stop_token_ids).toEqual([2]);
  });

  it('the retrieval fixture config (q0f32, raw template, untied)', async () => {
    const { readFileSync } = await import('node:fs');
    const text = readFileSync(new URL('../fixtures/retrieval-llama/mlc-chat-config.json', import.meta.url), 'utf8');
    const c = parseModelConfig(text);
    expect(c).toMatchObject({
      numKvHeads: 2,
      headDim: 32,
      ropeTheta: 500000,
      tieWordEmbeddings: false,
      contextWindow: 8192,
    });
    expect(c.convTemplate?.system_prefix_token_ids).toEqual([1]);
  });

  const reject = (modelType: string, quant: string, patch: Record<string, unknown>, feature: RegExp) => {
    let err: unknown;
    try {
      parseModelConfig(mlcConfig(modelType, quant, { ...llama32_1b, ...patch }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UnsupportedModelError);
    expect((err as Error).message).toMatch(feature);
  };

  it('rejects unsupported architectures, quantizations, rope scaling, sliding window and MoE by name', () => {
    reject('mistral', 'q4f16_1', {}, /model_type "mistral"/);
    reject('gemma2', 'q4f16_1', {}, /model_type "gemma2"/);
    reject('llama', 'q4f16_awq', {}, /quantization "q4f16_awq"/);
    reject('llama', 'q3f16_1', {}, /quantization "q3f16_1"/);
    reject('llama', 'q4f16_1', { rope_scaling: { rope_type: 'yarn', factor: 4 } }, /rope_scaling type "yarn"/);
    reject('llama', 'q4f16_1', { sliding_window_size: 4096 }, /sliding window/);
    reject('qwen2', 'q4f16_1', { num_experts: 60 }, /mixture of experts/);
    reject('llama', 'q4f16_1', { hidden_act: 'gelu' }, /hidden_act "gelu"/);
    reject('qwen3', 'q4f16_1', { attention_bias: true }, /attention_bias/);
  });

  it('gives clear errors for malformed configs', () => {
    expect(() => parseModelConfig('<html>')).toThrow(ModelConfigError);
    expect(() => parseModelConfig('{"quantization":"q0f32"}')).toThrow(/model_type/);
    const noHidden = { ...llama32_1b } as Record<string, unknown>;
    delete noHidden.hidden_size;
    expect(() => parseModelConfig(mlcConfig('llama', 'q0f32', noHidden))).toThrow(/missing field "hidden_size"/);
    expect(() => parseModelConfig(mlcConfig('llama', 'q0f32', { ...llama32_1b, num_key_value_heads: 5 }))).toThrow(
      /not a multiple of num_key_value_heads/,
    );
  });
});
