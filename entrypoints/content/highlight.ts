// Shows a citation in the page: the span of the extracted text goes back to a DOM Range through the extraction's
// offset map (extractLocate.ts); the page then scrolls to it and highlights it with the CSS Custom Highlight API, or
// with the selection where that API is missing. When the page changed since it was read, the quote is searched for.
import type { HighlightReply, HighlightRequest } from '../../core/protocol/content';
import type { ExtractedPage } from './extract';
import { rangeForSpan } from './extractLocate';

export const HIGHLIGHT_NAME = 'recycled-reader-citation';
const STYLE_ID = 'recycled-reader-highlight-style';

interface HighlightRegistry {
  set(name: string, value: unknown): void;
}
type HighlightCtor = new (...ranges: Range[]) => unknown;

/** The DOM range of `quote` found by walking the text nodes (whitespace and case folded), or null. */
function searchQuote(doc: Document, quote: string): Range | null {
  const wanted = quote.replace(/\s+/g, ' ').trim().toLowerCase();
  if (!wanted) return null;
  const walker = doc.createTreeWalker(doc.body, NodeFilter.SHOW_TEXT);
  let text = '';
  const points: { node: Text; offset: number }[] = [];
  let lastSpace = true;
  for (let n = walker.nextNode() as Text | null; n; n = walker.nextNode() as Text | null) {
    const parent = n.parentElement?.localName;
    if (parent === 'script' || parent === 'style' || parent === 'noscript') continue;
    const value = n.nodeValue ?? '';
    for (let i = 0; i < value.length; i++) {
      const space = /\s/.test(value[i]);
      if (space && lastSpace) continue;
      text += space ? ' ' : value[i].toLowerCase();
      points.push({ node: n, offset: i });
      lastSpace = space;
    }
    if (!lastSpace) {
      // Text nodes of different blocks read as separated words.
      text += ' ';
      points.push({ node: n, offset: value.length });
      lastSpace = true;
    }
  }
  const at = text.indexOf(wanted);
  if (at < 0) return null;
  const from = points[at];
  const to = points[at + wanted.length - 1];
  const range = doc.createRange();
  range.setStart(from.node, from.offset);
  range.setEnd(to.node, Math.min((to.node.nodeValue ?? '').length, to.offset + 1));
  return range;
}

function ensureStyle(doc: Document): void {
  if (doc.getElementById(STYLE_ID)) return;
  const style = doc.createElement('style');
  style.id = STYLE_ID;
  style.textContent = `::highlight(${HIGHLIGHT_NAME}) { background-color: #ffe066; color: #111; }`;
  (doc.head ?? doc.documentElement).appendChild(style);
}

export function showPassage(doc: Document, page: ExtractedPage | null, req: HighlightRequest): HighlightReply {
  let range: Range | null = null;
  if (page && req.end <= page.text.length && page.text.slice(req.start, req.end).length > 0) {
    try {
      range = rangeForSpan(doc, page.text, page.offsetMap, req.start, req.end);
    } catch {
      range = null;
    }
    // The offset map can drift on a page that changed: trust it only if it still reads as the quote.
    const norm = (t: string) => t.replace(/\s+/g, ' ').trim().toLowerCase();
    if (range && norm(range.toString()) !== norm(page.text.slice(req.start, req.end))) range = null;
  }
  range ??= searchQuote(doc, req.quote);
  if (!range) return { ok: false, reason: 'The passage is not in the page any more (it changed since it was read).' };
  const target = range.startContainer.parentElement ?? doc.body;
  target.scrollIntoView({ block: 'center', behavior: 'smooth' });
  const registry = (globalThis as { CSS?: { highlights?: HighlightRegistry } }).CSS?.highlights;
  const Highlight = (globalThis as { Highlight?: HighlightCtor }).Highlight;
  if (registry && Highlight) {
    ensureStyle(doc);
    registry.set(HIGHLIGHT_NAME, new Highlight(range));
    return { ok: true, method: 'highlight-api' };
  }
  const selection = doc.getSelection();
  selection?.removeAllRanges();
  selection?.addRange(range);
  return { ok: true, method: 'selection' };
}
