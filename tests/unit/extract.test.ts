import { readFileSync } from 'node:fs';
import { parseHTML } from 'linkedom';
import { describe, expect, it } from 'vitest';
import { ExtractionError, extractPage, type SelectionLike } from '../../entrypoints/content/extract.ts';
import { locateOffset, resolvePath } from '../../entrypoints/content/extractLocate.ts';

const chapterText = readFileSync(new URL('../fixtures/pages/persuasion-ch1-2.txt', import.meta.url), 'utf8');
const paragraphs = chapterText
  .split(/\n\s*\n/)
  .map((p) => p.replace(/\s+/g, ' ').trim())
  .filter((p) => p.length > 0);
const escapeHtml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

function articleHtml(noise: boolean): string {
  const body = paragraphs
    .map((p) => (/^Chapter \d+$/.test(p) ? `<h2>${p}</h2>` : `<p>${escapeHtml(p)}</p>`))
    .join('\n');
  const nav = noise
    ? '<nav><ul><li><a href="/">NAVHOME link</a></li><li><a href="/b">NAVBOOKS link</a></li></ul></nav>' +
      '<div class="ad-slot" id="ads-top">ADVERT buy cheap watches now</div>'
    : '';
  const aside = noise
    ? '<aside><h3>Related</h3><p>SIDEBARTEXT other novels</p></aside><footer>FOOTERTEXT</footer>'
    : '';
  return `<!doctype html><html lang="en"><head><title>Persuasion, chapters 1 and 2</title></head><body>${nav}<main><article><h1>Persuasion</h1><p class="byline">By Jane Austen</p>${body}</article></main>${aside}</body></html>`;
}

describe('extractPage: article', () => {
  const { document } = parseHTML(articleHtml(true));
  const page = extractPage(document, { url: 'https://example.org/persuasion' });

  it('uses Readability and keeps every paragraph, in order', () => {
    expect(page.kind).toBe('article');
    expect(page.stats.readability).toBe('used');
    expect(page.truncated).toBeNull();
    let from = 0;
    for (const p of paragraphs) {
      const at = page.text.indexOf(p.replace(/^Chapter/, '## Chapter'), from);
      expect(at, `paragraph "${p.slice(0, 40)}"`).toBeGreaterThanOrEqual(from);
      from = at + 1;
    }
    expect(page.url).toBe('https://example.org/persuasion');
    expect(page.lang).toBe('en');
    expect(page.byline).toBe('By Jane Austen');
    expect(page.title).toBe('Persuasion, chapters 1 and 2');
  });

  it('drops navigation, ads, sidebars and footers', () => {
    for (const noise of ['NAVHOME', 'NAVBOOKS', 'ADVERT', 'SIDEBARTEXT', 'FOOTERTEXT'])
      expect(page.text).not.toContain(noise);
  });

  it('maps blocks back to their source elements', () => {
    expect(page.blocks.length).toBe(paragraphs.length);
    for (const block of page.blocks) {
      const el = resolvePath(document, block.path);
      expect(el, block.path).not.toBeNull();
      const domText = (el!.textContent ?? '').replace(/\s+/g, ' ').trim();
      expect(domText).toBe(page.text.slice(block.contentStart, block.end));
    }
    const heading = page.blocks.find((b) => b.kind === 'heading')!;
    expect(page.text.slice(heading.start, heading.end)).toBe('## Chapter 1');
    expect(heading.path).toBe('/html[1]/body[1]/main[1]/article[1]/h2[1]');
  });

  it('locates a character offset in the DOM', () => {
    const needle = 'Kellynch Hall';
    const offset = page.text.indexOf(needle);
    const point = locateOffset(document, page.text, page.offsetMap, offset);
    expect(point).not.toBeNull();
    expect((point!.node.nodeValue ?? '').slice(point!.offset, point!.offset + needle.length)).toBe(needle);
  });
});

describe('extractPage: other pages', () => {
  it('falls back to visible text on a non-article page, without hidden or navigation text', () => {
    const rows = Array.from(
      { length: 12 },
      (_, i) => `<tr><td>Item ${i}</td><td>${(i * 3.5).toFixed(2)} EUR</td></tr>`,
    );
    const html =
      '<html><head><title>Price list</title><script>var SCRIPTTEXT = 1;</script></head><body>' +
      '<nav>NAVTEXT</nav><h1>Prices</h1><table>' +
      rows.join('') +
      '</table><ul><li>Open daily</li><li>Closed <b>Sundays</b></li></ul>' +
      '<div style="display: none">HIDDENTEXT</div><p hidden>HIDDEN2</p><footer>FOOTERTEXT</footer></body></html>';
    const { document } = parseHTML(html);
    const page = extractPage(document);
    expect(page.kind).toBe('visible-text');
    expect(page.title).toBe('Price list');
    expect(page.text).toContain('# Prices');
    expect(page.text).toContain('Item 3 | 10.50 EUR');
    expect(page.text).toContain('- Closed Sundays');
    for (const noise of ['SCRIPTTEXT', 'NAVTEXT', 'HIDDENTEXT', 'HIDDEN2', 'FOOTERTEXT'])
      expect(page.text).not.toContain(noise);
    const row = page.blocks.find(
      (b) => b.kind === 'table-row' && page.text.slice(b.start, b.end).startsWith('Item 3'),
    )!;
    expect(row.path).toBe('/html[1]/body[1]/table[1]/tr[4]');
  });

  it('normalises garbled text: control characters and zero-width characters removed', () => {
    const garbled = 'Caf\u0065\u0301 \u0000\u0007bin\u0001ary\u200b data\ufffd\ufffd\ufffd end\u001b[0m';
    const { document } = parseHTML(`<html><head><title>x</title></head><body><p>${garbled}</p></body></html>`);
    const page = extractPage(document, { mode: 'visible-text' });
    expect(page.text).toBe('Caf\u00e9 binary data\ufffd end[0m');
    expect(page.text).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u200b]/);
  });

  it('uses the selection when there is one', () => {
    const { document } = parseHTML('<html><body><p id="a">First paragraph.</p><p id="b">Second one.</p></body></html>');
    const b = document.getElementById('b')!;
    const selection: SelectionLike = {
      rangeCount: 1,
      getRangeAt: () => ({ toString: () => '  Second\u0000 one.  ', commonAncestorContainer: b.firstChild! }),
    };
    const page = extractPage(document, { selection });
    expect(page.kind).toBe('selection');
    expect(page.text).toBe('Second one.');
    expect(page.offsetMap).toEqual([{ start: 0, end: 11, contentStart: 0, path: '/html[1]/body[1]/p[2]' }]);
  });

  it('throws a clear error on an empty page', () => {
    const { document } = parseHTML('<html><head><title>Empty</title></head><body><script>x()</script> </body></html>');
    expect(() => extractPage(document)).toThrow(ExtractionError);
    expect(() => extractPage(document)).toThrow('This page has no readable text.');
    expect(() => extractPage(document, { mode: 'selection', selection: null })).toThrow('No text is selected');
  });

  it('stops at the deadline on a huge page and says how much it took', () => {
    const many = Array.from({ length: 3000 }, (_, i) => `<div><span>Row ${i} of a long listing.</span></div>`).join('');
    const { document } = parseHTML(`<html><head><title>Huge</title></head><body>${many}</body></html>`);
    let clock = 0;
    // A fake clock that advances 1 ms per reading (one reading per 128 elements): the 10 ms deadline falls mid-walk.
    const page = extractPage(document, { mode: 'visible-text', deadlineMs: 10, now: () => clock++ });
    expect(page.truncated).not.toBeNull();
    expect(page.truncated!.reason).toBe('deadline');
    expect(page.text.length).toBeGreaterThan(0);
    expect(page.truncated!.takenChars).toBe(page.text.length);
    expect(page.truncated!.fraction).toBeGreaterThan(0);
    expect(page.truncated!.fraction).toBeLessThan(1);
    expect(page.text.startsWith('Row 0 of a long listing.')).toBe(true);
  });

  it('stops at maxChars and reports it', () => {
    const many = Array.from({ length: 200 }, (_, i) => `<p>Paragraph ${i} text.</p>`).join('');
    const { document } = parseHTML(`<html><body>${many}</body></html>`);
    const page = extractPage(document, { mode: 'visible-text', maxChars: 500 });
    expect(page.truncated?.reason).toBe('max-chars');
    expect(page.text.length).toBeLessThan(540);
    expect(page.truncated!.pageChars).toBeGreaterThan(3000);
  });
});
