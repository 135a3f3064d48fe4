// The fixture generator: exact MLC layout, deterministic, real md5s, a quantiser checked against hand-packed words,
// and the reference forward on every variant checked against a naive whole-sequence forward written here from the
// generator's own tensors (no KV cache, float64, no shared code with core/reference).
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../../core/model/load';
import { DirSource } from '../../core/node/dirSource';
import { ReferenceModel } from '../../core/reference/forward';
import { type FixtureModel, type FixtureOptions, makeFixtureModel, quantizeQ4 } from '../../core/testing/fixtureModel';
import { Tokenizer } from '../../core/tokenizer/tokenizer';
import { f16BitsToF32 } from '../../kernels/half';

describe('quantizeQ4', () => {
  it('packs 8 nibbles per word, lowest first, q = round(w / (max|w| / 7)) + 7', () => {
    // Group of 32: w[j] = (j % 15) - 7 with max |w| = 7 -> scale 1, q = w + 7 = j % 15.
    const w = Float32Array.from({ length: 32 }, (_, j) => (j % 15) - 7);
    const { qweight, scales, dequantized } = quantizeQ4(w, 1, 32, 'f32');
    expect(Array.from(scales)).toEqual([1]);
    // j = 0..7 -> q 0..7 -> 0x76543210; j = 8..15 -> 8,9,...,14,0 -> 0x0edcba98.
    expect(qweight[0]).toBe(0x76543210);
    expect(qweight[1]).toBe(0x0edcba98);
    expect(Array.from(dequantized)).toEqual(Array.from(w));
  });

  it('stores f16 scales and clamps to [0, 15]', () => {
    const w = new Float32Array(32);
    w[0] = 0.7; // scale 0.1 (as f16), q = 14
    w[1] = -0.7; // q = 0
    w[2] = 0.05; // 0.5 -> rounds to q = 8 (Math.round rounds half up)
    const { qweight, scales, dequantized } = quantizeQ4(w, 1, 32, 'f16');
    const scale = f16BitsToF32(scales[0]);
    expect(scale).toBeCloseTo(0.1, 4);
    expect(qweight[0] & 0xf).toBe(14);
    expect((qweight[0] >>> 4) & 0xf).toBe(0);
    expect(dequantized[0]).toBeCloseTo(7 * scale, 6);
    expect(dequantized[3]).toBe(0);
  });
});

describe('makeFixtureModel', () => {
  it('is deterministic from the seed and writes real md5s over >= 2 shards', () => {
    const a = makeFixtureModel({ seed: 5, quantization: 'q4f16_1' });
    const b = makeFixtureModel({ seed: 5, quantization: 'q4f16_1' });
    const c = makeFixtureModel({ seed: 6, quantization: 'q4f16_1' });
    expect([...a.files.keys()].sort()).toEqual([
      'mlc-chat-config.json',
      'params_shard_0.bin',
      'params_shard_1.bin',
      'tensor-cache.json',
      'tokenizer.json',
    ]);
    for (const [name, bytes] of a.files)
      expect(Buffer.from(bytes).equals(Buffer.from(b.files.get(name) as Uint8Array))).toBe(true);
    expect(
      Buffer.from(a.files.get('params_shard_0.bin') as Uint8Array).equals(
        Buffer.from(c.files.get('params_shard_0.bin') as Uint8Array),
      ),
    ).toBe(false);
    const manifest = JSON.parse(new TextDecoder().decode(a.files.get('tensor-cache.json')));
    expect(manifest.records).toHaveLength(2);
    for (const shard of manifest.records) {
      const data = a.files.get(shard.dataPath) as Uint8Array;
      expect(shard.nbytes).toBe(data.length);
      expect(shard.md5sum).toBe(createHash('md5').update(data).digest('hex'));
    }
    const names = manifest.records.flatMap((s: { records: { name: string }[] }) => s.records.map((r) => r.name));
    expect(names).toContain('model.layers.0.self_attn.qkv_proj.q_weight');
    expect(names).toContain('model.layers.0.self_attn.qkv_proj.q_scale');
    expect(names).toContain('lm_head.q_weight');
  });

  it('writes a tokenizer.json that web-tokenizers loads (WordLevel, specials, chatml tokens)', async () => {
    const m = makeFixtureModel({ template: 'chatml' });
    const tok = await Tokenizer.fromJSON(m.files.get('tokenizer.json') as Uint8Array);
    expect(tok.vocabSize).toBe(96);
    expect(tok.encode('<s> w0 w1 w2')).toEqual([1, 8, 9, 10]);
    expect(tok.encode('<|im_start|>user\nw5<|im_end|>')).toEqual([3, 6, 13, 4]);
    expect(tok.decode([8, 9, 10])).toBe('w0 w1 w2');
    expect(m.vocab[8]).toBe('w0');
  }, 30_000);
});

/** Naive forward over the whole sequence from the generator's f32 tensors; returns the last position's logits. */
function naiveLogits(m: FixtureModel, ids: number[]): Float64Array {
  const o = m.options;
  const t = (name: string) => {
    const v = m.tensors.get(name);
    if (!v) throw new Error(`no tensor ${name}`);
    return v;
  };
  const H = o.hiddenSize;
  const D = o.headDim;
  const nq = o.numHeads;
  const nkv = o.numKvHeads;
  const linear = (w: Float32Array, x: Float64Array, rows: number) => {
    const cols = x.length;
    const y = new Float64Array(rows);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) y[r] += w[r * cols + c] * x[c];
    return y;
  };
  const norm = (x: Float64Array, w: Float32Array) => {
    const ms = x.reduce((a, v) => a + v * v, 0) / x.length;
    return x.map((v, i) => (v / Math.sqrt(ms + 1e-6)) * w[i]);
  };
  const freqs = Array.from({ length: D / 2 }, (_, i) => {
    let f = o.ropeTheta ** (-(2 * i) / D);
    if (o.ropeScaling) {
      // factor 8, low 1, high 4, original 64 (the generator's values).
      const wl = (2 * Math.PI) / f;
      if (wl > 64) f = f / 8;
      else if (wl >= 16) {
        const s = (64 / wl - 1) / 3;
        f = (1 - s) * (f / 8) + s * f;
      }
    }
    return f;
  });
  const rope = (v: Float64Array, pos: number) => {
    const out = new Float64Array(D);
    for (let i = 0; i < D / 2; i++) {
      const c = Math.cos(pos * freqs[i]);
      const s = Math.sin(pos * freqs[i]);
      out[i] = v[i] * c - v[i + D / 2] * s;
      out[i + D / 2] = v[i + D / 2] * c + v[i] * s;
    }
    return out;
  };
  let xs = ids.map((id) => Float64Array.from(t('model.embed_tokens.weight').subarray(id * H, (id + 1) * H)));
  const qkvName = o.architecture === 'llama' ? 'qkv_proj' : 'c_attn';
  for (let l = 0; l < o.numLayers; l++) {
    const p = `model.layers.${l}`;
    const qs: Float64Array[][] = [];
    const ks: Float64Array[][] = [];
    const vs: Float64Array[][] = [];
    xs.forEach((x, pos) => {
      const qkv = linear(
        t(`${p}.self_attn.${qkvName}.weight`),
        norm(x, t(`${p}.input_layernorm.weight`)),
        (nq + 2 * nkv) * D,
      );
      if (o.architecture === 'qwen2') {
        const bias = t(`${p}.self_attn.c_attn.bias`);
        for (let i = 0; i < qkv.length; i++) qkv[i] += bias[i];
      }
      const head = (k: number) => {
        let v = qkv.slice(k * D, (k + 1) * D);
        if (o.architecture === 'qwen3') v = norm(v, t(`${p}.self_attn.${k < nq ? 'q' : 'k'}_norm.weight`));
        return v;
      };
      qs.push(Array.from({ length: nq }, (_, h) => rope(head(h), pos)));
      ks.push(Array.from({ length: nkv }, (_, h) => rope(head(nq + h), pos)));
      vs.push(Array.from({ length: nkv }, (_, h) => qkv.slice((nq + nkv + h) * D, (nq + nkv + h + 1) * D)));
    });
    xs = xs.map((x, pos) => {
      const attn = new Float64Array(nq * D);
      for (let h = 0; h < nq; h++) {
        const kv = Math.floor(h / (nq / nkv));
        const scores = ks
          .slice(0, pos + 1)
          .map((k) => k[kv].reduce((a, v, i) => a + v * qs[pos][h][i], 0) / Math.sqrt(D));
        const mx = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - mx));
        const z = e.reduce((a, b) => a + b, 0);
        e.forEach((w, j) => {
          for (let i = 0; i < D; i++) attn[h * D + i] += (w / z) * vs[j][kv][i];
        });
      }
      const h1 = x.map((v, i) => v + linear(t(`${p}.self_attn.o_proj.weight`), attn, H)[i]);
      const gu = linear(
        t(`${p}.mlp.gate_up_proj.weight`),
        norm(h1, t(`${p}.post_attention_layernorm.weight`)),
        2 * o.intermediateSize,
      );
      const act = new Float64Array(o.intermediateSize).map(
        (_, i) => (gu[i] / (1 + Math.exp(-gu[i]))) * gu[o.intermediateSize + i],
      );
      const down = linear(t(`${p}.mlp.down_proj.weight`), act, H);
      return h1.map((v, i) => v + down[i]);
    });
  }
  const head = o.tied ? t('model.embed_tokens.weight') : t('lm_head.weight');
  return linear(head, norm(xs[xs.length - 1], t('model.norm.weight')), o.vocabSize);
}

describe('reference forward on generated fixtures matches a naive whole-sequence forward', () => {
  const cases: [string, FixtureOptions][] = [
    ['llama GQA q0f32', { quantization: 'q0f32' }],
    ['llama3 rope_scaling q4f16_1 tied', { quantization: 'q4f16_1', ropeScaling: true, tied: true }],
    ['qwen2 bias q0f16', { architecture: 'qwen2', quantization: 'q0f16' }],
    ['qwen3 q/k norm q4f32_1 head_dim 32', { architecture: 'qwen3', quantization: 'q4f32_1', headDim: 32 }],
    ['llama bf16 records', { bf16: true, numKvHeads: 4 }],
  ];
  for (const [label, opts] of cases) {
    it(label, async () => {
      const m = makeFixtureModel({ seed: 21, ...opts });
      const dir = mkdtempSync(join(tmpdir(), 'rr-fx-'));
      try {
        for (const [name, data] of m.files) writeFileSync(join(dir, name), data);
        const loaded = await loadModel(new DirSource(dir));
        const ref = new ReferenceModel(loaded.config, loaded.weights);
        const ids = [1, 17, 40, 5, 93, 60, 60, 12, 33, 71, 2, 88, 9];
        // Positions up to 12 > 64/8: llama3 scaling changes some frequencies within this range.
        const logits = ref.prefill(ids);
        const expected = naiveLogits(m, ids);
        let maxAbs = 0;
        for (let i = 0; i < logits.length; i++) maxAbs = Math.max(maxAbs, Math.abs(logits[i] - expected[i]));
        const spread = Math.max(...expected) - Math.min(...expected);
        expect(spread).toBeGreaterThan(0.5); // activations are not degenerate
        expect(spread).toBeLessThan(100); // nor exploding
        expect(maxAbs).toBeLessThan(2e-3);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }, 30_000);
  }
});
