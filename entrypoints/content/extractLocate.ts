// From offsets in ExtractedPage.text back to the live DOM: path → element, then a character span → text-node
// positions (a Range's start and end), e.g. to highlight the passage an answer cites.

import type { OffsetMapEntry } from './extract.ts';
import { NEVER_TEXT_TAGS } from './extractBlocks.ts';

export interface DomPoint {
  node: Node;
  offset: number;
}

/** Resolves "/html[1]/body[1]/div[2]/p[3]" (the form extraction writes) to an element, or null if the page changed. */
export function resolvePath(doc: Document, path: string): Element | null {
  const steps = path.split('/').filter((s) => s.length > 0);
  let current: Element | null = null;
  for (const step of steps) {
    const match = /^([^[\]]+)\[(\d+)\]$/.exec(step);
    if (match === null) return null;
    const [, tag, nth] = match;
    const candidates: Element[] =
      current === null ? [doc.documentElement] : Array.from(current.children as ArrayLike<Element>);
    const sameTag = candidates.filter((c) => c !== null && c.localName.toLowerCase() === tag);
    current = sameTag[Number(nth) - 1] ?? null;
    if (current === null) return null;
  }
  return current;
}

/** The element's text with whitespace collapsed, and for each of its characters the text-node position it came from. */
function normalisedText(el: Element): { text: string; points: DomPoint[] } {
  let text = '';
  const points: DomPoint[] = [];
  let lastWasSpace = true;
  const visit = (node: Node) => {
    if (node.nodeType === 3) {
      const value = node.nodeValue ?? '';
      for (let i = 0; i < value.length; i++) {
        const isSpace = /\s/.test(value[i]);
        if (isSpace && lastWasSpace) continue;
        text += isSpace ? ' ' : value[i];
        points.push({ node, offset: i });
        lastWasSpace = isSpace;
      }
      return;
    }
    if (node.nodeType !== 1 || NEVER_TEXT_TAGS.has((node as Element).localName.toLowerCase())) return;
    for (let child = node.firstChild; child !== null; child = child.nextSibling) visit(child);
  };
  visit(el);
  return { text, points };
}

function entryAt(offsetMap: readonly OffsetMapEntry[], offset: number): OffsetMapEntry | null {
  let lo = 0;
  let hi = offsetMap.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const e = offsetMap[mid];
    if (offset < e.start) hi = mid - 1;
    else if (offset >= e.end) lo = mid + 1;
    else return e;
  }
  return null;
}

/** The DOM position of one character offset of the extracted text, or null when it cannot be found any more. */
export function locateOffset(
  doc: Document,
  pageText: string,
  offsetMap: readonly OffsetMapEntry[],
  offset: number,
): DomPoint | null {
  const entry = entryAt(offsetMap, offset);
  if (entry === null) return null;
  const el = resolvePath(doc, entry.path);
  if (el === null) return null;
  const { text, points } = normalisedText(el);
  // The block's content without Markdown line prefixes, as it reads in the element.
  const content = pageText.slice(entry.contentStart, entry.end).replace(/\n(> )*/g, ' ');
  const probe = content.slice(0, 40);
  const base = text.indexOf(probe);
  if (base < 0) return null;
  const within = Math.max(0, offset - entry.contentStart);
  return points[Math.min(points.length - 1, base + within)] ?? null;
}

/** A live Range for [start, end) of the extracted text (browser only: linkedom has no Range.setStart). */
export function rangeForSpan(
  doc: Document,
  pageText: string,
  offsetMap: readonly OffsetMapEntry[],
  start: number,
  end: number,
): Range | null {
  const from = locateOffset(doc, pageText, offsetMap, start);
  const to = locateOffset(doc, pageText, offsetMap, Math.max(start, end - 1));
  if (from === null || to === null) return null;
  const range = doc.createRange();
  range.setStart(from.node, from.offset);
  range.setEnd(to.node, to.offset + 1);
  return range;
}
