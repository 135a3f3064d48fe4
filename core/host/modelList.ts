// The models a user can pick: the built-in catalog plus custom models added by base URL.
import { builtinCatalog, catalogEntry, familyOf, quantizationOf } from '../catalog/catalog';
import type { ModelEntry } from '../protocol/messages';
import { ProtocolError } from '../protocol/messages';
import type { CustomModel } from '../protocol/settings';

/**
 * Checks and normalizes a custom model's base URL: http(s), no credentials, a folder (ends with `/`).
 * A Hugging Face repo URL gets WebLLM's `resolve/main/`.
 */
export function normalizeModelBaseUrl(input: string): string {
  let url: URL;
  try {
    url = new URL(input.trim());
  } catch {
    throw new ProtocolError('bad-url', `“${input}” is not a URL. Give the folder that holds mlc-chat-config.json.`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new ProtocolError('bad-url', `Model URLs must be http or https, not ${url.protocol}`);
  if (url.username || url.password)
    throw new ProtocolError('bad-url', 'Model URLs must not contain a user name or password.');
  url.hash = '';
  url.search = '';
  let href = url.href;
  href = href.replace(/\/(mlc-chat-config\.json|tensor-cache\.json|ndarray-cache\.json)$/, '/');
  if (!href.endsWith('/')) href += '/';
  if (url.hostname === 'huggingface.co' && !/\/resolve\/[^/]+\/$/.test(href)) href += 'resolve/main/';
  return href;
}

export function customModelFor(baseUrl: string): CustomModel {
  const url = new URL(baseUrl);
  const parts = url.pathname.split('/').filter((p) => p && p !== 'resolve' && p !== 'main');
  const name = parts.at(-1) ?? url.host;
  return { modelId: `custom:${baseUrl}`, baseUrl, label: `${name} (${url.host})` };
}

export function customEntry(m: CustomModel, cached: boolean): ModelEntry {
  const name = m.label.split(' ')[0];
  return {
    modelId: m.modelId,
    label: m.label,
    baseUrl: m.baseUrl,
    family: familyOf(name),
    quantization: quantizationOf(name),
    vramRequiredMB: null,
    downloadBytesEstimate: null,
    custom: true,
    cached,
  };
}

/** Every model, built-in first; `cachedBaseUrls` marks those with files in the browser's model cache. */
export function listModelEntries(custom: CustomModel[], cachedBaseUrls: ReadonlySet<string>): ModelEntry[] {
  return [
    ...builtinCatalog().map((m) => catalogEntry(m, cachedBaseUrls.has(m.baseUrl))),
    ...custom.map((m) => customEntry(m, cachedBaseUrls.has(m.baseUrl))),
  ];
}

export function findModel(modelId: string, custom: CustomModel[]): ModelEntry {
  const entry = listModelEntries(custom, new Set()).find((m) => m.modelId === modelId);
  if (!entry) throw new ProtocolError('model-unknown', `Unknown model “${modelId}”.`);
  return entry;
}
