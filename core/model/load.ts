// Reads an MLC model folder from a WeightSource: config, manifest, verified shards, normalised host weights, tokenizer.

import { type ModelConfig, ModelConfigError, modelConfigFromJson } from './config';
import { parseManifest, type TensorManifest } from './manifest';
import { ModelFileError, type WeightSource } from './sources';
import { buildModelWeights, type ModelWeights, TensorReader } from './weights';

export interface LoadProgress {
  phase: 'download' | 'cache' | 'upload' | 'compile';
  loadedBytes: number;
  totalBytes: number;
  file?: string;
}

export interface LoadedModel {
  config: ModelConfig;
  /** mlc-chat-config.json as parsed JSON (for fields the engine may want: sampling defaults, tokenizer_info...). */
  chatConfig: Record<string, unknown>;
  manifest: TensorManifest;
  weights: ModelWeights;
  /** tokenizer.json bytes, for `Tokenizer.fromJSON`. */
  tokenizerJson: Uint8Array;
}

export interface LoadModelOptions {
  onProgress?: (p: LoadProgress) => void;
  signal?: AbortSignal;
}

export const MANIFEST_FILES = ['tensor-cache.json', 'ndarray-cache.json'] as const;

export async function loadModelConfig(
  source: WeightSource,
): Promise<{ config: ModelConfig; chatConfig: Record<string, unknown> }> {
  const text = await source.readText('mlc-chat-config.json');
  let chatConfig: Record<string, unknown>;
  try {
    chatConfig = JSON.parse(text);
  } catch (e) {
    throw new ModelFileError(`${source.location} mlc-chat-config.json`, `not valid JSON (${(e as Error).message})`);
  }
  if (!chatConfig || typeof chatConfig !== 'object' || Array.isArray(chatConfig)) {
    throw new ModelConfigError('expected a JSON object');
  }
  return { config: modelConfigFromJson(chatConfig), chatConfig };
}

/** tensor-cache.json, or ndarray-cache.json when the first is missing. */
export async function loadManifest(source: WeightSource): Promise<TensorManifest> {
  const failures: string[] = [];
  for (const name of MANIFEST_FILES) {
    let text: string;
    try {
      text = await source.readText(name);
    } catch (e) {
      if (!(e instanceof ModelFileError)) throw e;
      failures.push(e.message);
      continue;
    }
    return parseManifest(text, name);
  }
  throw new ModelFileError(source.location, `no weight manifest found (${failures.join('; ')})`);
}

export async function loadTokenizerJson(
  source: WeightSource,
  chatConfig: Record<string, unknown>,
): Promise<Uint8Array> {
  const files = Array.isArray(chatConfig.tokenizer_files) ? chatConfig.tokenizer_files : ['tokenizer.json'];
  if (!files.includes('tokenizer.json')) {
    throw new ModelFileError(
      `${source.location} mlc-chat-config.json`,
      `tokenizer_files ${JSON.stringify(files)} has no tokenizer.json (sentencepiece-only tokenizers are not supported)`,
    );
  }
  return new TextEncoder().encode(await source.readText('tokenizer.json'));
}

export async function loadModel(source: WeightSource, opts: LoadModelOptions = {}): Promise<LoadedModel> {
  const { config, chatConfig } = await loadModelConfig(source);
  const manifest = await loadManifest(source);
  const tokenizerJson = await loadTokenizerJson(source, chatConfig);

  const totalBytes = manifest.shards.reduce((a, s) => a + s.nbytes, 0);
  let doneBytes = 0;
  const shards: Uint8Array[] = [];
  for (const shard of manifest.shards) {
    const bytes = await source.readBytes(shard.dataPath, {
      expectedBytes: shard.nbytes,
      md5: shard.md5sum,
      signal: opts.signal,
      onProgress: (loaded, _total, fromCache) =>
        opts.onProgress?.({
          phase: fromCache ? 'cache' : 'download',
          loadedBytes: doneBytes + loaded,
          totalBytes,
          file: shard.dataPath,
        }),
    });
    doneBytes += shard.nbytes;
    shards.push(bytes);
  }
  const weights = buildModelWeights(config, new TensorReader(manifest, shards));
  return { config, chatConfig, manifest, weights, tokenizerJson };
}
