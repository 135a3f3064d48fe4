// Loading generated MLC folders of every dtype/architecture from disk, and the errors for broken folders.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Quantization } from '../../core/model/config';
import { loadModel } from '../../core/model/load';
import { ModelFileError } from '../../core/model/sources';
import type { HostLinear, HostVector } from '../../core/model/weights';
import { DirSource } from '../../core/node/dirSource';
import { vectorToF32 } from '../../core/reference/ops';
import { type FixtureOptions, makeFixtureModel } from '../../core/testing/fixtureModel';
import { dequantizeLinear } from '../../kernels/dequantize';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function writeFixture(opts: FixtureOptions, mutate?: (files: Map<string, Uint8Array>) => void) {
  const model = makeFixtureModel(opts);
  mutate?.(model.files);
  const dir = mkdtempSync(join(tmpdir(), 'rr-loader-'));
  dirs.push(dir);
  for (const [name, data] of model.files) writeFileSync(join(dir, name), data);
  return { dir, model };
}

const asF32 = (x: HostLinear | HostVector): Float32Array =>
  'rows' in x ? dequantizeLinear(x) : vectorToF32(x as HostVector);

const variants: [string, FixtureOptions, string][] = [
  ['llama q0f32 untied', { quantization: 'q0f32' }, 'f32'],
  ['llama q0f16 tied', { quantization: 'q0f16', tied: true }, 'f16'],
  ['llama q4f16_1 rope_scaling', { quantization: 'q4f16_1', ropeScaling: true }, 'q4f16'],
  ['llama q4f32_1 tied', { quantization: 'q4f32_1', tied: true }, 'q4f32'],
  ['qwen2 q4f16_1 bias', { architecture: 'qwen2', quantization: 'q4f16_1' }, 'q4f16'],
  ['qwen3 q0f16 qk-norm', { architecture: 'qwen3', quantization: 'q0f16', headDim: 32 }, 'f16'],
  ['llama q0f32 bf16 records', { quantization: 'q0f32', bf16: true }, 'f32'],
  ['qwen3 q4f32_1 bf16 records', { architecture: 'qwen3', quantization: 'q4f32_1', bf16: true }, 'q4f32'],
];

describe('loadModel from a directory', () => {
  for (const [label, opts, linearDtype] of variants) {
    it(`${label}: every tensor round-trips`, async () => {
      const { dir, model } = writeFixture({ seed: 7, ...opts });
      const progress: number[] = [];
      const loaded = await loadModel(new DirSource(dir), { onProgress: (p) => progress.push(p.loadedBytes) });
      const c = loaded.config;
      expect(c.quantization).toBe(opts.quantization as Quantization);
      expect(loaded.manifest.shards.length).toBeGreaterThanOrEqual(2);
      const totalBytes = loaded.manifest.shards.reduce((a, s) => a + s.nbytes, 0);
      expect(progress.at(-1)).toBe(totalBytes);
      const w = loaded.weights;
      expect(w.layers).toHaveLength(2);
      expect(w.layers[0].qkv.dtype).toBe(linearDtype);
      expect(w.layers[0].qkv.rows).toBe((c.numHeads + 2 * c.numKvHeads) * c.headDim);
      expect(w.lmHead === w.embed).toBe(!!opts.tied);
      const arch = opts.architecture ?? 'llama';
      const qkvName = arch === 'llama' ? 'qkv_proj' : 'c_attn';
      const expectSame = (name: string, actual: HostLinear | HostVector | undefined) => {
        const expected = model.tensors.get(name);
        if (!expected) throw new Error(`generator has no ${name}`);
        expect(actual, name).toBeDefined();
        expect(Array.from(asF32(actual as HostLinear)), name).toEqual(Array.from(expected));
      };
      expectSame('model.embed_tokens.weight', w.embed);
      expectSame('model.norm.weight', w.finalNorm);
      if (!opts.tied) expectSame('lm_head.weight', w.lmHead);
      for (let i = 0; i < 2; i++) {
        const p = `model.layers.${i}`;
        const l = w.layers[i];
        expectSame(`${p}.input_layernorm.weight`, l.inputNorm);
        expectSame(`${p}.self_attn.${qkvName}.weight`, l.qkv);
        expectSame(`${p}.self_attn.o_proj.weight`, l.oProj);
        expectSame(`${p}.post_attention_layernorm.weight`, l.postNorm);
        expectSame(`${p}.mlp.gate_up_proj.weight`, l.gateUp);
        expectSame(`${p}.mlp.down_proj.weight`, l.down);
        if (arch === 'qwen2') expectSame(`${p}.self_attn.c_attn.bias`, l.qkvBias);
        else expect(l.qkvBias).toBeUndefined();
        if (arch === 'qwen3') {
          expectSame(`${p}.self_attn.q_norm.weight`, l.qNorm);
          expectSame(`${p}.self_attn.k_norm.weight`, l.kNorm);
        }
      }
      if (opts.bf16) {
        const recs = loaded.manifest.shards.flatMap((s) => s.records);
        expect(recs.some((r) => r.format === 'f32-to-bf16')).toBe(true);
        expect(recs.find((r) => r.name === 'model.norm.weight')?.dtype).toBe('bfloat16');
        expect(w.finalNorm.dtype).toBe('f32');
      }
    });
  }

  it('loads the stories260k fixture (tied, GQA, f32) and its tokenizer bytes', async () => {
    const loaded = await loadModel(new DirSource(new URL('../fixtures/stories260k/', import.meta.url).pathname));
    expect(loaded.config).toMatchObject({ numLayers: 5, numHeads: 8, numKvHeads: 4, headDim: 8, vocabSize: 512 });
    expect(loaded.weights.lmHead).toBe(loaded.weights.embed);
    expect(new TextDecoder().decode(loaded.tokenizerJson.subarray(0, 1))).toBe('{');
  });
});

describe('loadModel errors name the file or tensor', () => {
  const expectLoadError = async (dir: string, pattern: RegExp) => {
    await expect(loadModel(new DirSource(dir))).rejects.toThrow(pattern);
  };

  it('missing shard', async () => {
    const { dir } = writeFixture({});
    rmSync(join(dir, 'params_shard_1.bin'));
    await expectLoadError(dir, /params_shard_1\.bin: missing file/);
  });

  it('truncated shard', async () => {
    const { dir } = writeFixture({});
    const path = join(dir, 'params_shard_0.bin');
    writeFileSync(path, readFileSync(path).subarray(0, 1000));
    await expectLoadError(dir, /params_shard_0\.bin: truncated: 1000 of \d+ bytes/);
  });

  it('wrong hash', async () => {
    const { dir } = writeFixture({});
    const path = join(dir, 'params_shard_1.bin');
    const bytes = readFileSync(path);
    bytes[17] ^= 0xff;
    writeFileSync(path, bytes);
    await expectLoadError(dir, /params_shard_1\.bin: md5 mismatch/);
  });

  it('HTML instead of JSON', async () => {
    const { dir } = writeFixture({});
    writeFileSync(join(dir, 'mlc-chat-config.json'), '<!DOCTYPE html><html><body>Sign in</body></html>');
    await expectLoadError(dir, /mlc-chat-config\.json: expected JSON but got HTML/);
  });

  it('missing tensor names the tensor', async () => {
    const { dir } = writeFixture({}, (files) => {
      const manifest = JSON.parse(new TextDecoder().decode(files.get('tensor-cache.json')));
      for (const shard of manifest.records) {
        shard.records = shard.records.filter((r: { name: string }) => r.name !== 'model.layers.1.mlp.down_proj.weight');
      }
      files.set('tensor-cache.json', new TextEncoder().encode(JSON.stringify(manifest)));
    });
    await expectLoadError(dir, /model\.layers\.1\.mlp\.down_proj\.weight.*missing/);
  });

  it('falls back to ndarray-cache.json, and reports both when neither exists', async () => {
    const { dir } = writeFixture({ seed: 3 });
    writeFileSync(join(dir, 'ndarray-cache.json'), readFileSync(join(dir, 'tensor-cache.json')));
    rmSync(join(dir, 'tensor-cache.json'));
    const loaded = await loadModel(new DirSource(dir));
    expect(loaded.manifest.fileName).toBe('ndarray-cache.json');
    rmSync(join(dir, 'ndarray-cache.json'));
    await expectLoadError(
      dir,
      /no weight manifest found.*tensor-cache\.json: missing file.*ndarray-cache\.json: missing file/,
    );
  });

  it('shape mismatch against the config', async () => {
    const { dir } = writeFixture({}, (files) => {
      const cfg = JSON.parse(new TextDecoder().decode(files.get('mlc-chat-config.json')));
      cfg.model_config.intermediate_size = 128;
      files.set('mlc-chat-config.json', new TextEncoder().encode(JSON.stringify(cfg)));
    });
    await expectLoadError(dir, /gate_up_proj\.weight" has shape \[192, 64\], expected \[256, 64\]/);
  });

  it('errors are ModelFileError with the file', async () => {
    const { dir } = writeFixture({});
    rmSync(join(dir, 'tokenizer.json'));
    const err = await loadModel(new DirSource(dir)).catch((e) => e);
    expect(err).toBeInstanceOf(ModelFileError);
    expect((err as ModelFileError).file).toBe(join(dir, 'tokenizer.json'));
  });
});
