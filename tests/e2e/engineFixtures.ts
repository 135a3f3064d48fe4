// What the engine e2e tests serve: a generated tiny model (random weights, exact MLC format, f32-scale dtypes because
// SwiftShader has no shader-f16), a long article and a PDF made from the Persuasion excerpt in tests/fixtures/pages.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import type { SettingsPatch } from '../../core/protocol/settings';
import { writeFixtureModelDir } from '../../core/testing/fixtureModelDir';
import { makeTextPdf, paragraphsOf } from '../fixtures/pdf/makePdfs';
import {
  buildExtension,
  hostRequest,
  type LaunchedExtension,
  launchWithExtension,
  openPopup,
  openTab,
  ROOT,
  type StaticServer,
  startStaticServer,
} from './harness';

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

/** A test file's browser with the extension, and a server with the tiny chat model under /models/tiny-chat/ and a
 * 200-word article at /article.html; started before the file's tests and closed after them. */
export interface TinyChatExtension {
  ext: LaunchedExtension;
  server: StaticServer;
}

export function useTinyChatExtension(tmpPrefix: string): TinyChatExtension {
  const t = {} as TinyChatExtension;
  let modelDir = '';
  beforeAll(async () => {
    buildExtension();
    modelDir = mkdtempSync(join(tmpdir(), tmpPrefix));
    writeTinyChatModel(join(modelDir, 'models/tiny-chat'));
    t.server = await startStaticServer({ root: modelDir, routes: { '/article.html': longArticleHtml(200) } });
    t.ext = await launchWithExtension();
  }, 400_000);
  afterAll(async () => {
    await t.ext?.close();
    await t.server?.close();
    if (modelDir) rmSync(modelDir, { recursive: true, force: true });
  });
  return t;
}

/** Opens the article in a tab and the popup on it, adds the tiny chat model and applies `settings` with it chosen. */
export async function popupWithTinyChat(t: TinyChatExtension, settings: SettingsPatch) {
  const { page, tabId } = await openTab(t.ext, t.server.url('/article.html'));
  const popup = await openPopup(t.ext, tabId);
  await expect.poll(() => popup.getByTestId('status').textContent()).not.toMatch(/Connecting/);
  const entry = await hostRequest(popup, { type: 'addCustomModel', baseUrl: t.server.url('/models/tiny-chat/') });
  await hostRequest(popup, { type: 'setSettings', settings: { modelId: entry.modelId, ...settings } });
  return { page, tabId, popup, modelId: entry.modelId };
}
