// The models the runtime can run, from WebLLM's prebuilt catalog. `@mlc-ai/web-llm` is a single 6.8 MB module that
// does not tree-shake (importing only `prebuiltAppConfig` still bundled 6.2 MB), so the build extracts the records we
// use into `webllm-models.json` (see wxt.config.ts) and the extension imports that.
import type { ModelEntry, ModelFamily } from '../protocol/messages';
import webllmModels from './webllm-models.json';

/** One record of WebLLM's `prebuiltAppConfig.model_list`, the fields we read. */
export interface PrebuiltModelRecord {
  model: string;
  model_id: string;
  model_lib?: string;
  vram_required_MB?: number;
  low_resource_required?: boolean;
  overrides?: { context_window_size?: number; [key: string]: unknown };
  model_type?: number;
}

export interface CatalogModel {
  modelId: string;
  /** Folder the weight files are fetched from (WebLLM's rule: `<model>/resolve/main/`). */
  baseUrl: string;
  family: ModelFamily;
  quantization: SupportedQuantization;
  vramRequiredMB: number | null;
  lowResourceRequired: boolean;
  /** Parameter count parsed from the id (e.g. 1.7e9 for "SmolLM2-1.7B"); null when the id does not say. */
  parameters: number | null;
  downloadBytesEstimate: number | null;
}

export const SUPPORTED_QUANTIZATIONS = ['q4f16_1', 'q4f32_1', 'q0f16', 'q0f32'] as const;
export type SupportedQuantization = (typeof SUPPORTED_QUANTIZATIONS)[number];

// Architecture by model id. Qwen3.5 is a different (hybrid) architecture; Mistral, Phi, Gemma etc. are not implemented.
const FAMILY_PATTERNS: [RegExp, ModelFamily][] = [
  [/^Qwen3-/, 'qwen3'],
  [/^(Qwen2(\.5)?-|DeepSeek-R1-Distill-Qwen-)/, 'qwen2'],
  [/^(Llama-[23]|TinyLlama-|Hermes-[23]-(Theta-|Pro-)?Llama-|DeepSeek-R1-Distill-Llama-)/, 'llama'],
  [/^SmolLM2?-/, 'smollm'],
];

export function familyOf(modelId: string): ModelFamily | null {
  for (const [pattern, family] of FAMILY_PATTERNS) if (pattern.test(modelId)) return family;
  return null;
}

export function quantizationOf(modelId: string): SupportedQuantization | null {
  const m = /-(q4f16_1|q4f32_1|q0f16|q0f32)-MLC(-|$)/.exec(modelId);
  return m ? (m[1] as SupportedQuantization) : null;
}

/** WebLLM's cleanModelUrl: `https://huggingface.co/u/m` → `https://huggingface.co/u/m/resolve/main/`. */
export function modelBaseUrl(modelUrl: string): string {
  let url = modelUrl.endsWith('/') ? modelUrl : `${modelUrl}/`;
  if (!/.+\/resolve\/.+\//.test(url)) url += 'resolve/main/';
  return new URL(url).href;
}

export function parametersOf(modelId: string): number | null {
  const m = /-(\d+(?:\.\d+)?)([BM])-/.exec(`${modelId}-`);
  if (!m) return null;
  return Number(m[1]) * (m[2] === 'B' ? 1e9 : 1e6);
}

const BITS_PER_PARAMETER: Record<SupportedQuantization, number> = {
  // 4-bit values plus one scale per group of 32 (f16: 16 bits, f32: 32 bits).
  q4f16_1: 4 + 16 / 32,
  q4f32_1: 4 + 32 / 32,
  q0f16: 16,
  q0f32: 32,
};

export function estimateDownloadBytes(parameters: number | null, q: SupportedQuantization): number | null {
  return parameters === null ? null : Math.round((parameters * BITS_PER_PARAMETER[q]) / 8);
}

/**
 * Keeps the chat models whose architecture and quantization the runtime implements. WebLLM lists some weights twice
 * (a `-1k` entry with a small-context model library); our runtime picks its own context, so one entry per weight URL.
 */
export function filterPrebuiltModels(records: readonly PrebuiltModelRecord[]): CatalogModel[] {
  const byUrl = new Map<string, CatalogModel>();
  for (const r of records) {
    if (r.model_type !== undefined && r.model_type !== 0) continue; // embedding / vision models
    const family = familyOf(r.model_id);
    const quantization = quantizationOf(r.model_id);
    if (!family || !quantization) continue;
    const baseUrl = modelBaseUrl(r.model);
    const parameters = parametersOf(r.model_id);
    const entry: CatalogModel = {
      modelId: r.model_id,
      baseUrl,
      family,
      quantization,
      vramRequiredMB: r.vram_required_MB ?? null,
      lowResourceRequired: r.low_resource_required ?? false,
      parameters,
      downloadBytesEstimate: estimateDownloadBytes(parameters, quantization),
    };
    const previous = byUrl.get(baseUrl);
    if (!previous || (/-1k$/.test(previous.modelId) && !/-1k$/.test(r.model_id))) byUrl.set(baseUrl, entry);
  }
  return [...byUrl.values()];
}

/** The records the build extracted from `@mlc-ai/web-llm` (already restricted to supported models). */
export const PREBUILT_RECORDS: readonly PrebuiltModelRecord[] = webllmModels.model_list as PrebuiltModelRecord[];
export const WEBLLM_VERSION: string = webllmModels.webllmVersion;

let catalogCache: CatalogModel[] | null = null;
export function builtinCatalog(): CatalogModel[] {
  catalogCache ??= filterPrebuiltModels(PREBUILT_RECORDS);
  return catalogCache;
}

/** A smallish default that runs on most GPUs. */
export const DEFAULT_MODEL_ID = 'Llama-3.2-1B-Instruct-q4f16_1-MLC';

export function catalogEntry(m: CatalogModel, cached: boolean): ModelEntry {
  return {
    modelId: m.modelId,
    label: m.modelId.replace(/-MLC$/, ''),
    baseUrl: m.baseUrl,
    family: m.family,
    quantization: m.quantization,
    vramRequiredMB: m.vramRequiredMB,
    downloadBytesEstimate: m.downloadBytesEstimate,
    custom: false,
    cached,
  };
}

/** The subset of a WebLLM model list the build stores: supported models, fields we read. */
export function extractRecords(records: readonly PrebuiltModelRecord[]): PrebuiltModelRecord[] {
  return records
    .filter(
      (r) => (r.model_type === undefined || r.model_type === 0) && familyOf(r.model_id) && quantizationOf(r.model_id),
    )
    .map((r) => ({
      model: r.model,
      model_id: r.model_id,
      vram_required_MB: r.vram_required_MB,
      low_resource_required: r.low_resource_required,
      overrides: r.overrides?.context_window_size
        ? { context_window_size: r.overrides.context_window_size }
        : undefined,
    }));
}
