// Citations: the quotes an answer gives (text in double quotes, Markdown block quotes, `[p. N]` page markers, or the
// whole answer when it is itself a passage of the document) matched against the document text the extraction
// produced. Exact first, then tolerant of whitespace and case; the span found is in the document's own offsets, which
// the content script maps back to the live DOM through its offset map. Pure: no DOM.

export interface Citation {
  /** The quote as the answer wrote it (for a page marker: "p. N"). */
  quote: string;
  kind: 'quote' | 'page';
  /** [start, end) in the document text; null when not found. */
  start: number | null;
  end: number | null;
  /** How it was found: verbatim, or after folding whitespace and case. */
  match: 'exact' | 'tolerant' | 'none';
  /** The PDF page the span lies on (from the nearest preceding "[p. N]" marker), or the page a marker names. */
  page: number | null;
}

/** Quotes shorter than this (after trimming) are too common to point at one passage. */
const MIN_QUOTE_CHARS = 8;
const MAX_CITATIONS = 12;

const QUOTE_PAIRS: [string, string][] = [
  ['"', '"'],
  ['\u201c', '\u201d'],
  ['\u00ab', '\u00bb'],
];
const PAGE_MARKER = /\[p\.\s*(\d{1,5})\]/g;

/** The candidate quotes of an answer, in order of appearance, without duplicates. */
export function quotesOf(answer: string): { quote: string; kind: 'quote' | 'page' }[] {
  const found: { at: number; quote: string; kind: 'quote' | 'page' }[] = [];
  for (const [open, close] of QUOTE_PAIRS) {
    let from = 0;
    while (true) {
      const a = answer.indexOf(open, from);
      if (a < 0) break;
      const b = answer.indexOf(close, a + 1);
      if (b < 0) break;
      const quote = answer.slice(a + 1, b).trim();
      if (quote.length >= MIN_QUOTE_CHARS && !quote.includes('\n\n')) found.push({ at: a, quote, kind: 'quote' });
      from = b + 1;
    }
  }
  // Markdown block quotes: consecutive "> " lines form one quote.
  const lines = answer.split('\n');
  let offset = 0;
  let block: string[] = [];
  let blockAt = 0;
  const flush = () => {
    const quote = block.join(' ').trim();
    if (quote.length >= MIN_QUOTE_CHARS) found.push({ at: blockAt, quote, kind: 'quote' });
    block = [];
  };
  for (const line of lines) {
    const m = /^\s*>\s?(.*)$/.exec(line);
    if (m) {
      if (block.length === 0) blockAt = offset;
      block.push(m[1]);
    } else if (block.length > 0) flush();
    offset += line.length + 1;
  }
  if (block.length > 0) flush();
  for (const m of answer.matchAll(PAGE_MARKER)) found.push({ at: m.index ?? 0, quote: `p. ${m[1]}`, kind: 'page' });
  found.sort((x, y) => x.at - y.at);
  const seen = new Set<string>();
  return found
    .filter((f) => {
      const key = `${f.kind}:${f.quote}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    })
    .map(({ quote, kind }) => ({ quote, kind }));
}

/** Text folded for tolerant matching (runs of whitespace → one space, lower case, curly quotes straightened), with
 * the offset in the original text of each folded character. */
export interface FoldedText {
  text: string;
  origin: number[];
}

export function foldText(text: string): FoldedText {
  let out = '';
  const origin: number[] = [];
  let lastSpace = true;
  for (let i = 0; i < text.length; i++) {
    let c = text[i];
    if (/\s/.test(c)) {
      if (lastSpace) continue;
      c = ' ';
      lastSpace = true;
    } else lastSpace = false;
    if (c === '\u2018' || c === '\u2019') c = "'";
    else if (c === '\u201c' || c === '\u201d') c = '"';
    const lower = c.toLowerCase();
    // Keep one folded character per source character so the offsets map back exactly.
    out += lower.length === 1 ? lower : c;
    origin.push(i);
  }
  if (out.endsWith(' ')) {
    out = out.slice(0, -1);
    origin.pop();
  }
  return { text: out, origin };
}

/** Where `quote` lies in `document`: verbatim, else after folding both; null when it is not there. */
export function locateQuote(
  document: string,
  quote: string,
  folded?: FoldedText,
): { start: number; end: number; match: 'exact' | 'tolerant' } | null {
  const q = quote.trim();
  if (!q) return null;
  const exact = document.indexOf(q);
  if (exact >= 0) return { start: exact, end: exact + q.length, match: 'exact' };
  const doc = folded ?? foldText(document);
  const fq = foldText(q).text.replace(/^"|"$/g, '');
  if (!fq) return null;
  const at = doc.text.indexOf(fq);
  if (at < 0) return null;
  return { start: doc.origin[at], end: doc.origin[at + fq.length - 1] + 1, match: 'tolerant' };
}

/** The number of the last "[p. N]" marker before `offset`, or null (not a PDF, or before the first page). */
export function pageAt(document: string, offset: number): number | null {
  let page: number | null = null;
  for (const m of document.matchAll(PAGE_MARKER)) {
    if ((m.index ?? 0) > offset) break;
    page = Number(m[1]);
  }
  return page;
}

/**
 * The citations of an answer about `document`. When the answer quotes nothing but is itself a passage of the
 * document (a base model continuing the text, an answer that is a verbatim excerpt), the whole answer is the quote.
 */
export function findCitations(answer: string, document: string): Citation[] {
  const folded = foldText(document);
  const candidates = quotesOf(answer);
  const whole = answer.trim();
  if (candidates.length === 0 && whole.length >= MIN_QUOTE_CHARS && locateQuote(document, whole, folded))
    candidates.push({ quote: whole, kind: 'quote' });
  return candidates.slice(0, MAX_CITATIONS).map(({ quote, kind }) => {
    if (kind === 'page') {
      const n = Number(quote.slice(3));
      const marker = locateQuote(document, `[p. ${n}]`);
      return marker
        ? { quote, kind, start: marker.start, end: marker.end, match: 'exact', page: n }
        : { quote, kind, start: null, end: null, match: 'none', page: n };
    }
    const at = locateQuote(document, quote, folded);
    if (!at) return { quote, kind, start: null, end: null, match: 'none', page: null };
    return { quote, kind, start: at.start, end: at.end, match: at.match, page: pageAt(document, at.start) };
  });
}
