import { readFileSync } from 'node:fs';
import { prebuiltAppConfig } from '@mlc-ai/web-llm';
import { describe, expect, test } from 'vitest';
import {
  builtinCatalog,
  DEFAULT_MODEL_ID,
  extractRecords,
  familyOf,
  filterPrebuiltModels,
  modelBaseUrl,
  PREBUILT_RECORDS,
  type PrebuiltModelRecord,
  quantizationOf,
  WEBLLM_VERSION,
} from '../../core/catalog/catalog';

describe('model catalog', () => {
  test('the extracted JSON matches the installed @mlc-ai/web-llm (rebuild refreshes it)', () => {
    const installed = JSON.parse(readFileSync('node_modules/@mlc-ai/web-llm/package.json', 'utf8')).version;
    expect(WEBLLM_VERSION).toBe(installed);
    expect(PREBUILT_RECORDS).toEqual(extractRecords(prebuiltAppConfig.model_list as PrebuiltModelRecord[]));
  });

  test('keeps only llama / qwen2 / qwen3 / smollm with q4f16_1, q4f32_1, q0f16, q0f32', () => {
    const catalog = builtinCatalog();
    const ids = catalog.map((m) => m.modelId);
    for (const id of [
      'Llama-3.2-1B-Instruct-q4f16_1-MLC',
      'Llama-3.2-1B-Instruct-q0f32-MLC',
      'Qwen2.5-0.5B-Instruct-q4f32_1-MLC',
      'Qwen3-0.6B-q0f16-MLC',
      'SmolLM2-135M-Instruct-q0f16-MLC',
      'TinyLlama-1.1B-Chat-v1.0-q4f16_1-MLC',
      'DeepSeek-R1-Distill-Qwen-7B-q4f16_1-MLC',
    ])
      expect(ids).toContain(id);
    for (const id of [
      'Phi-3.5-mini-instruct-q4f16_1-MLC',
      'gemma-2-2b-it-q4f16_1-MLC',
      'Mistral-7B-Instruct-v0.3-q4f16_1-MLC',
      'Qwen3.5-0.8B-q4f16_1-MLC', // a different architecture
      'Llama-3.1-70B-Instruct-q3f16_1-MLC', // q3 is not implemented
      'snowflake-arctic-embed-m-q0f32-MLC-b32',
      'Llama-3.1-8B-Instruct-q4f16_1-MLC-1k', // same weights as the 4K entry
    ])
      expect(ids).not.toContain(id);
    expect(ids).toContain(DEFAULT_MODEL_ID);
    expect(new Set(catalog.map((m) => m.baseUrl)).size).toBe(catalog.length);
    expect(new Set(catalog.map((m) => m.family))).toEqual(new Set(['llama', 'qwen2', 'qwen3', 'smollm']));
  });

  test('entries carry the weight URL (WebLLM rule), VRAM and a size estimate', () => {
    const m = builtinCatalog().find((e) => e.modelId === 'SmolLM2-360M-Instruct-q4f16_1-MLC')!;
    expect(m.baseUrl).toBe('https://huggingface.co/mlc-ai/SmolLM2-360M-Instruct-q4f16_1-MLC/resolve/main/');
    expect(m.vramRequiredMB).toBe(376.06);
    expect(m.family).toBe('smollm');
    // 360M parameters × 4.5 bits.
    expect(m.downloadBytesEstimate).toBe(202_500_000);
  });

  test('helpers', () => {
    expect(modelBaseUrl('https://huggingface.co/u/m')).toBe('https://huggingface.co/u/m/resolve/main/');
    expect(modelBaseUrl('https://huggingface.co/u/m/resolve/v2/')).toBe('https://huggingface.co/u/m/resolve/v2/');
    expect(familyOf('Hermes-3-Llama-3.2-3B-q4f16_1-MLC')).toBe('llama');
    expect(familyOf('Qwen3.5-2B-q4f16_1-MLC')).toBeNull();
    expect(quantizationOf('Llama-3-8B-Instruct-q4f32_1-MLC-1k')).toBe('q4f32_1');
    expect(quantizationOf('Llama-3-70B-Instruct-q3f16_1-MLC')).toBeNull();
    const twice = filterPrebuiltModels([
      { model: 'https://h/u/A-1B-q4f16_1-MLC', model_id: 'Llama-3-1B-q4f16_1-MLC-1k' },
      { model: 'https://h/u/A-1B-q4f16_1-MLC', model_id: 'Llama-3-1B-q4f16_1-MLC' },
    ]);
    expect(twice.map((m) => m.modelId)).toEqual(['Llama-3-1B-q4f16_1-MLC']);
  });
});
