// What the engine e2e tests serve: a generated tiny model (random weights, exact MLC format, f32-scale dtypes because
// SwiftShader has no shader-f16), a long article and a PDF made from the Persuasion excerpt in tests/fixtures/pages.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFixtureModelDir } from '../../core/testing/fixtureModelDir';
import { makeTextPdf, paragraphsOf } from '../fixtures/pdf/makePdfs';
import { ROOT } from './harness';

export const PERSUASION = readFileSync(join(ROOT, 'tests/fixtures/pages/persuasion-ch1-2.txt'), 'utf8');

/** The book's first paragraphs, up to about `words` words. */
export function persuasionParagraphs(words: number): string[] {
  const out: string[] = [];
  let n = 0;
  for (const p of paragraphsOf(PERSUASION)) {
    if (n >= words) break;
    out.push(p);
    n += p.split(' ').length;
  }
  return out;
}

export const LONG_TITLE = 'Persuasion, chapter one';

/** An article page of about `words` words (the fixture tokenizer makes one token per word). */
export function longArticleHtml(words: number): string {
  const body = persuasionParagraphs(words)
    .map((p) => `<p>${p.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</p>`)
    .join('\n');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${LONG_TITLE}</title></head>
<body><article><h1>${LONG_TITLE}</h1>${body}</article></body></html>`;
}

/**
 * A 2-layer, hidden-64 chat model. ChatML: its <|im_start|>/<|im_end|> are added tokens of the WordLevel tokenizer,
 * "system"/"user"/"assistant" are words of its vocabulary, and every other word maps to <unk>.
 */
export function writeTinyChatModel(dir: string): void {
  writeFixtureModelDir(
    {
      template: 'chatml',
      quantization: 'q4f32_1',
      contextWindow: 2048,
      numLayers: 2,
      hiddenSize: 64,
      numHeads: 4,
      numKvHeads: 2,
      headDim: 16,
      vocabSize: 96,
      seed: 7,
    },
    dir,
  );
}

export async function makeBookPdf(words: number): Promise<Uint8Array> {
  return (await makeTextPdf(persuasionParagraphs(words), 'Persuasion (test PDF)')).bytes;
}
