// The user's settings: what the popup edits, what chrome.storage.local keeps, what the host reads at each job.

import * as v from 'valibot';
import type { TopKBudget } from '../attention/policy';
import { array, bool, literal, num, obj, optional, type Same, str, topKBudget } from './schema';

export interface CustomModel {
  /** `custom:<baseUrl>`; unique. */
  modelId: string;
  /** HTTP(S) folder holding mlc-chat-config.json, tensor-cache.json and the shards; ends with `/`. */
  baseUrl: string;
  label: string;
}

export interface Settings {
  /** A catalog model id or a custom model id; '' = none chosen yet. */
  modelId: string;
  /** Tokens of context the engine allocates KV cache for. */
  contextWindow: number;
  /** Recycled Attention during decode. */
  fastMode: boolean;
  /** Fast mode: positions attended by a recycled step (count, or fraction of the prompt). */
  fastK: TopKBudget;
  /** Fast mode schedule: 'dynamic' refreshes a layer when its query drifts (checked every `fastQc` steps, threshold by
   * model family); 'fixed' runs a full step every `fastStride` decode steps. */
  fastSchedule: 'fixed' | 'dynamic';
  /** Fixed schedule: a full attention step every `fastStride` decode steps. */
  fastStride: number;
  /** Dynamic schedule: the query check runs every `fastQc` decode steps. */
  fastQc: number;
  /** Run fast mode even where the engine predicts it cannot pay off (by default it then runs full attention). */
  fastModeAlways: boolean;
  /** Disk budget for saved KV snapshots of long documents, in MiB. */
  snapshotBudgetMB: number;
  /** Longest answer, in tokens. */
  maxAnswerTokens: number;
  theme: 'auto' | 'light' | 'dark';
  customModels: CustomModel[];
}

export const DEFAULT_SETTINGS: Settings = {
  modelId: '',
  contextWindow: 8192,
  fastMode: true,
  // K = L/8 with the dynamic schedule checked every step (QC = 1) at the family's threshold: on the multi-query task it
  // keeps 0.93-0.97 of the answer tokens where the fixed strides and SnapKV keep 0.48-0.71 (docs/BENCH.md, "Fast-mode
  // defaults"). The fixed stride stays offered (S = 10, the paper's v1 setting).
  fastK: { fraction: 0.125 },
  fastSchedule: 'dynamic',
  fastStride: 10,
  fastQc: 1,
  fastModeAlways: false,
  snapshotBudgetMB: 1024,
  maxAnswerTokens: 512,
  theme: 'auto',
  customModels: [],
};

export const MIN_CONTEXT_WINDOW = 512;
export const MAX_CONTEXT_WINDOW = 131_072;

const customModel = obj({
  modelId: str({ min: 1, max: 2048 }),
  baseUrl: str({ min: 8, max: 2048 }),
  label: str({ min: 1, max: 200 }),
});

/** Field checks shared by the `setSettings` message (partial) and the stored settings (full). */
export const settingsFields = {
  modelId: optional(str({ max: 2048 })),
  contextWindow: optional(num({ min: MIN_CONTEXT_WINDOW, max: MAX_CONTEXT_WINDOW, integer: true })),
  fastMode: optional(bool),
  fastK: optional(topKBudget),
  fastSchedule: optional(literal('fixed', 'dynamic')),
  fastStride: optional(num({ min: 1, max: 10_000, integer: true })),
  fastQc: optional(num({ min: 1, max: 10_000, integer: true })),
  fastModeAlways: optional(bool),
  snapshotBudgetMB: optional(num({ min: 0, max: 1_048_576, integer: true })),
  maxAnswerTokens: optional(num({ min: 1, max: 8192, integer: true })),
  theme: optional(literal('auto', 'light', 'dark')),
  customModels: optional(array(customModel, 100)),
};

export const settingsPatch = obj(settingsFields);
export type SettingsPatch = Partial<Settings>;
// Type-level agreement: the patch schema's output is exactly Partial<Settings> (a field added to one side fails tsc).
const settingsSchemaAgrees: Same<v.InferOutput<typeof settingsPatch>, SettingsPatch> = true;
void settingsSchemaAgrees;

/**
 * Settings read back from storage: each field that is missing or invalid (an older version, a hand edit) falls back
 * to its default instead of failing the whole object.
 */
export function settingsFromStorage(raw: unknown): Settings {
  const out: Settings = { ...DEFAULT_SETTINGS, customModels: [] };
  if (typeof raw !== 'object' || raw === null) return out;
  const record = raw as Record<string, unknown>;
  for (const [key, schema] of Object.entries(settingsFields)) {
    const result = v.safeParse(schema, record[key]);
    // An invalid field keeps its default.
    if (result.success && result.output !== undefined) (out as unknown as Record<string, unknown>)[key] = result.output;
  }
  return out;
}

export function applySettingsPatch(current: Settings, patch: SettingsPatch): Settings {
  const next = { ...current };
  for (const [key, value] of Object.entries(patch)) {
    if (value !== undefined) (next as unknown as Record<string, unknown>)[key] = value;
  }
  return next;
}

/** Parses what a user types for K: "12.5%", "1/8", "0.125" (fractions) or "2048" (positions). */
export function parseTopK(text: string): TopKBudget | null {
  const t = text.trim();
  let m = /^(\d+(?:\.\d+)?)\s*%$/.exec(t);
  if (m) {
    const f = Number(m[1]) / 100;
    return f > 0 && f <= 1 ? { fraction: f } : null;
  }
  m = /^(\d+)\s*\/\s*(\d+)$/.exec(t);
  if (m) {
    const f = Number(m[1]) / Number(m[2]);
    return Number.isFinite(f) && f > 0 && f <= 1 ? { fraction: f } : null;
  }
  if (/^\d*\.\d+$/.test(t)) {
    const f = Number(t);
    return f > 0 && f <= 1 ? { fraction: f } : null;
  }
  if (/^\d+$/.test(t)) {
    const n = Number(t);
    return n >= 1 ? { count: n } : null;
  }
  return null;
}

export function formatTopK(k: TopKBudget): string {
  if ('count' in k) return String(k.count);
  return `${Math.round(k.fraction * 10000) / 100}%`;
}
