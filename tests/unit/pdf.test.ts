import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { assemblePageText, type PdfTextItemLike } from '../../core/pdf/assemble.ts';
import { isPdfUrl, pdfViewerSource } from '../../core/pdf/detect.ts';
import { extractPdfText, PdfError, type PdfjsLib, type PdfText } from '../../core/pdf/extract.ts';
import { loadPdfjsLegacy } from '../../core/pdf/pdfjsLegacy.ts';
import {
  makeEncryptedPdf,
  makeImageOnlyPdf,
  makeTextPdf,
  makeTruncatedPdf,
  paragraphsOf,
  type TextPdf,
} from '../fixtures/pdf/makePdfs.ts';

const persuasion = readFileSync(new URL('../fixtures/pages/persuasion-ch1-2.txt', import.meta.url), 'utf8');

async function expectPdfError(promise: Promise<unknown>, code: string, message: RegExp) {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(PdfError);
  expect((error as PdfError).code).toBe(code);
  expect((error as PdfError).message).toMatch(message);
}

describe('extractPdfText on generated PDFs (pdf.js legacy build)', () => {
  let pdfjs: PdfjsLib;
  let pdf: TextPdf;
  let result: PdfText;
  beforeAll(async () => {
    pdfjs = await loadPdfjsLegacy();
    pdf = await makeTextPdf(paragraphsOf(persuasion), 'Persuasion');
    result = await extractPdfText(pdfjs, pdf.bytes);
  }, 60_000);

  it('reads every page with its [p. N] marker and the title', () => {
    expect(pdf.pageParagraphs.length).toBeGreaterThan(5);
    expect(result.pageCount).toBe(pdf.pageParagraphs.length);
    expect(result.title).toBe('Persuasion');
    expect(result.truncated).toBeNull();
    expect(result.emptyPages).toEqual([]);
    result.pages.forEach((page, i) => {
      expect(page.pageNumber).toBe(i + 1);
      expect(result.text.slice(page.start, page.end).startsWith(`[p. ${i + 1}]\n`)).toBe(true);
    });
  });

  it('puts each paragraph on its page, whole, with hyphenated line ends joined', () => {
    expect(pdf.hyphenatedWords.length).toBeGreaterThan(3);
    pdf.pageParagraphs.forEach((paragraphs, i) => {
      const page = result.pages[i];
      const marker = `[p. ${i + 1}]\n`;
      const pageParagraphs = result.text.slice(page.start + marker.length, page.end).split('\n\n');
      expect(pageParagraphs, `page ${i + 1}`).toEqual(paragraphs);
    });
    for (const word of pdf.hyphenatedWords) expect(result.text).toContain(word);
  });

  it('keeps the caller’s bytes usable (pdf.js detaches what it is given)', async () => {
    const again = await extractPdfText(pdfjs, pdf.bytes, { maxPages: 2 });
    expect(again.pages.length).toBe(2);
    expect(again.truncated).toEqual({ reason: 'max-pages', pagesRead: 2, pageCount: result.pageCount });
  });

  it('says when a password is needed', async () => {
    await expectPdfError(extractPdfText(pdfjs, await makeEncryptedPdf()), 'encrypted', /password-protected/);
    await expectPdfError(
      extractPdfText(pdfjs, await makeEncryptedPdf(), { password: 'guess' }),
      'wrong-password',
      /password .* incorrect/,
    );
  });

  it('says when the file is broken or empty', async () => {
    await expectPdfError(extractPdfText(pdfjs, makeTruncatedPdf(pdf.bytes)), 'invalid', /not a valid PDF/);
    await expectPdfError(
      extractPdfText(pdfjs, new TextEncoder().encode('<html>not a pdf</html>')),
      'invalid',
      /not a valid PDF/,
    );
    await expectPdfError(extractPdfText(pdfjs, new Uint8Array(0)), 'empty-input', /empty/);
  });

  it('says when a PDF has no text layer', async () => {
    await expectPdfError(
      extractPdfText(pdfjs, await makeImageOnlyPdf(3)),
      'no-text-layer',
      /no text layer \(scanned\?\)/,
    );
  });

  it('stops at the deadline and reports the pages read', async () => {
    let clock = 0;
    const partial = await extractPdfText(pdfjs, pdf.bytes, { deadlineMs: 2.5, now: () => clock++ });
    expect(partial.truncated?.reason).toBe('deadline');
    expect(partial.truncated!.pagesRead).toBe(partial.pages.length);
    expect(partial.pages.length).toBeLessThan(result.pageCount);
  });
});

describe('assemblePageText', () => {
  // Items as pdf.js reports them: transform [size, 0, 0, size, x, y], y grows upwards.
  const item = (str: string, x: number, y: number, width: number, hasEOL = false): PdfTextItemLike => ({
    str,
    transform: [10, 0, 0, 10, x, y],
    width,
    height: 10,
    hasEOL,
  });

  it('joins lines, undoes hyphenation, splits paragraphs at larger gaps', () => {
    const items = [
      item('The quick brown fox recom-', 72, 700, 300),
      item('mended a well-', 72, 688, 300),
      item('Known path to the river.', 72, 676, 120),
      item('Second', 72, 650, 40),
      item('paragraph', 115, 650, 60),
      item('here.', 72, 638, 30),
    ];
    expect(assemblePageText(items)).toBe(
      'The quick brown fox recommended a well- Known path to the river.\n\nSecond paragraph here.',
    );
  });

  it('respects hasEOL and drops control characters', () => {
    const items = [item('alpha\u0000', 72, 700, 30, true), item('beta', 72, 700, 30)];
    expect(assemblePageText(items)).toBe('alpha beta');
    expect(assemblePageText([])).toBe('');
  });
});

describe('isPdfUrl', () => {
  it.each([
    ['https://example.org/paper.pdf', true],
    ['https://example.org/Paper.PDF?download=1#page=3', true],
    ['file:///home/me/My%20Book.pdf', true],
    ['chrome-extension://mhjfbmdgcfjbbpaeojofohoefgiehjai/index.html?https://x.org/a.pdf', true],
    ['https://mozilla.github.io/pdf.js/web/viewer.html?file=https%3A%2F%2Fx.org%2Fb.pdf', true],
    ['https://example.org/pdf-guide.html', false],
    ['https://example.org/article', false],
    ['not a url', false],
  ])('%s → %s', (url, expected) => {
    expect(isPdfUrl(url)).toBe(expected);
  });

  it('trusts the content type', () => {
    expect(isPdfUrl('https://example.org/download?id=7', 'application/pdf; charset=binary')).toBe(true);
    expect(isPdfUrl('https://example.org/download?id=7', 'text/html')).toBe(false);
    expect(pdfViewerSource('https://mozilla.github.io/pdf.js/web/viewer.html?file=%2Fc.pdf')).toBe('/c.pdf');
  });
});
