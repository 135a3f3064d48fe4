// Turns pdf.js text items of one page into readable text: items → lines → paragraphs, with hyphenated line ends
// joined. Pure logic (no pdf.js import) so it is tested on hand-made items.

/** The part of a pdf.js TextItem this module reads. transform = [a, b, c, d, x, y] (PDF user space, y grows up). */
export interface PdfTextItemLike {
  str: string;
  transform: readonly number[];
  width: number;
  height: number;
  hasEOL?: boolean;
}

interface Line {
  text: string;
  x: number;
  y: number;
  width: number;
  fontSize: number;
}

import { cleanText } from '../document/text.ts';

const SENTENCE_END = /[.!?:;"'\u201d\u2019)\]]$/;

function itemFontSize(item: PdfTextItemLike): number {
  // The vertical scale of the text matrix is the font size; height is 0 for some fonts.
  const scale = Math.hypot(item.transform[2] ?? 0, item.transform[3] ?? 0);
  return scale > 0 ? scale : item.height > 0 ? item.height : 10;
}

function buildLines(items: readonly PdfTextItemLike[]): Line[] {
  const lines: Line[] = [];
  let current: Line | null = null;
  let endX = 0;
  let breakAfterPrevious = false;
  for (const item of items) {
    const x = item.transform[4] ?? 0;
    const y = item.transform[5] ?? 0;
    const fontSize = itemFontSize(item);
    const str = cleanText(item.str).replace(/\s+/g, ' ');
    const movedVertically = current !== null && Math.abs(y - current.y) > 0.5 * Math.max(fontSize, current.fontSize);
    if (current === null || breakAfterPrevious || movedVertically) {
      if (str.trim() === '' && current !== null && !movedVertically && !breakAfterPrevious) continue;
      current = { text: str.trimStart(), x, y, width: item.width, fontSize };
      lines.push(current);
    } else {
      // Same line: add a space where there is a visible gap and neither side already has one.
      const gap = x - endX;
      const needsSpace = gap > 0.15 * fontSize && !/\s$/.test(current.text) && !/^\s/.test(str);
      current.text += (needsSpace ? ' ' : '') + str;
      current.width = Math.max(current.width, x + item.width - current.x);
      current.fontSize = Math.max(current.fontSize, fontSize);
    }
    endX = x + item.width;
    breakAfterPrevious = item.hasEOL === true;
  }
  return lines.map((l) => ({ ...l, text: l.text.trimEnd() })).filter((l) => l.text.length > 0);
}

function median(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Joins the next line onto a paragraph, undoing end-of-line hyphenation ("recom-" + "mend" → "recommend"). */
function joinLine(paragraph: string, next: string): string {
  if (/\p{L}[-\u00ad]$/u.test(paragraph) && /^\p{Ll}/u.test(next)) return paragraph.slice(0, -1) + next;
  if (paragraph.endsWith('\u00ad')) return paragraph.slice(0, -1) + next;
  return paragraph + ' ' + next;
}

/**
 * Assembles one page. Paragraph breaks come from larger vertical gaps than the page's usual line spacing, or from a
 * short line that ends a sentence (the last line of a paragraph).
 */
export function assemblePageText(items: readonly PdfTextItemLike[]): string {
  const lines = buildLines(items);
  if (lines.length === 0) return '';
  const gaps: number[] = [];
  for (let i = 1; i < lines.length; i++) {
    const gap = lines[i - 1].y - lines[i].y;
    if (gap > 0) gaps.push(gap);
  }
  const usualGap = median(gaps);
  const fullWidth = Math.max(...lines.map((l) => l.width));
  const paragraphs: string[] = [];
  let paragraph = lines[0].text;
  for (let i = 1; i < lines.length; i++) {
    const prev = lines[i - 1];
    const line = lines[i];
    const gap = prev.y - line.y;
    const bigGap = usualGap > 0 && (gap > 1.6 * usualGap || gap < -prev.fontSize);
    const shortEnd = prev.width < 0.75 * fullWidth && SENTENCE_END.test(prev.text);
    const indented = line.x > prev.x + 1.5 * line.fontSize && shortEnd;
    if (bigGap || shortEnd || indented) {
      paragraphs.push(paragraph);
      paragraph = line.text;
    } else {
      paragraph = joinLine(paragraph, line.text);
    }
  }
  paragraphs.push(paragraph);
  return paragraphs.join('\n\n');
}

/** The page marker put before each page's text; the chunker and prompts rely on this exact form. */
export function pageMarker(pageNumber: number): string {
  return `[p. ${pageNumber}]`;
}
