// Token-bounded chunks along paragraph boundaries. Paragraphs too long for one chunk are cut at sentences, then words,
// then characters, so every chunk fits. Each chunk knows its source offsets and the PDF pages ("[p. N]") it spans;
// a chunk that begins mid-page carries a "[p. N]" header so the model can still cite the page.
// The work is a generator (`chunkTextSteps`) that yields after each token count, so a 1M-character page can be chunked
// in slices that Stop interrupts (core/document/bounded.ts); `chunkText` runs it to the end.

import { COUNT_SLICE_CHARS, countTokensSteps, runToEnd, type Steps } from './bounded.ts';

export type CountTokens = (text: string) => number;

export interface Chunk {
  index: number;
  /** [start, end) in the source text; `text` is exactly that slice. */
  start: number;
  end: number;
  text: string;
  /** "[p. N]" when the chunk starts inside page N without its marker, else ''. */
  header: string;
  /** Tokens of chunkPromptText(chunk) (header + text). */
  tokens: number;
  firstPage: number | null;
  lastPage: number | null;
}

export interface ChunkOptions {
  countTokens: CountTokens;
  maxTokens: number;
}

const PAGE_MARKER = /\[p\. (\d+)\]/g;

/** The text a chunk contributes to a prompt. */
export function chunkPromptText(chunk: Pick<Chunk, 'header' | 'text'>): string {
  return chunk.header.length > 0 ? `${chunk.header}\n${chunk.text}` : chunk.text;
}

interface Span {
  start: number;
  end: number;
}

function spansOf(text: string, pattern: RegExp, from: number, to: number): Span[] {
  const spans: Span[] = [];
  const slice = text.slice(from, to);
  for (const m of slice.matchAll(pattern)) {
    const start = from + (m.index ?? 0);
    const trimmed = m[0].trimEnd();
    if (trimmed.trim().length > 0) spans.push({ start, end: start + trimmed.length });
  }
  return spans;
}

function paragraphSpans(text: string): Span[] {
  return spansOf(text, /[^\n]*\S[^\n]*(?:\n(?![ \t]*\n)[^\n]*)*/g, 0, text.length).map((s) => {
    const lead = text.slice(s.start, s.end).search(/\S/);
    return { start: s.start + lead, end: s.end };
  });
}

/** Tokens of a span: one count up to COUNT_SLICE_CHARS. A longer span is counted in slices: a sum over the limit
 * splits it (its pieces are then measured), a sum within the limit is confirmed by one whole count. */
function* spanTokens(text: string, span: Span, count: CountTokens, limit: number): Steps<number> {
  const source = text.slice(span.start, span.end);
  if (source.length <= COUNT_SLICE_CHARS) {
    const n = count(source);
    yield;
    return n;
  }
  const sliced = yield* countTokensSteps(source, count);
  if (sliced > limit) return sliced;
  const n = count(source);
  yield;
  return n;
}

/** Cuts a span into pieces of at most `limit` tokens: sentences, then words, then characters. */
function* splitSpan(text: string, span: Span, limit: number, count: CountTokens, level = 0): Steps<Span[]> {
  if ((yield* spanTokens(text, span, count, limit)) <= limit) return [span];
  const patterns = [/[^.!?]+(?:[.!?]+["'\u201d\u2019)\]]*\s*|$)/g, /\S+\s*/g];
  if (level < patterns.length) {
    const parts = spansOf(text, patterns[level], span.start, span.end);
    if (parts.length > 1) return yield* packSpans(text, parts, limit, count, level + 1);
    return yield* splitSpan(text, span, limit, count, level + 1);
  }
  // One "word" longer than the limit (a URL, base64...): halve by characters, keeping surrogate pairs whole.
  if (span.end - span.start <= 1) return [span];
  let mid = (span.start + span.end) >> 1;
  if (/[\udc00-\udfff]/.test(text[mid] ?? '')) mid++;
  return [
    ...(yield* splitSpan(text, { start: span.start, end: mid }, limit, count, level)),
    ...(yield* splitSpan(text, { start: mid, end: span.end }, limit, count, level)),
  ];
}

/** Greedily joins consecutive spans while the joined source slice stays within `limit` tokens. */
function* packSpans(text: string, spans: Span[], limit: number, count: CountTokens, level: number): Steps<Span[]> {
  const out: Span[] = [];
  let current: Span | null = null;
  for (const span of spans) {
    for (const piece of yield* splitSpan(text, span, limit, count, level)) {
      if (
        current !== null &&
        (yield* spanTokens(text, { start: current.start, end: piece.end }, count, limit)) <= limit
      ) {
        current = { start: current.start, end: piece.end };
      } else {
        if (current !== null) out.push(current);
        current = piece;
      }
    }
  }
  if (current !== null) out.push(current);
  return out;
}

/** Page markers of the text: positions and page numbers, in order. */
export function pageMarkers(text: string): { pos: number; page: number }[] {
  return Array.from(text.matchAll(PAGE_MARKER), (m) => ({ pos: m.index ?? 0, page: Number(m[1]) }));
}

function pageAt(markers: { pos: number; page: number }[], offset: number): number | null {
  let page: number | null = null;
  for (const m of markers) {
    if (m.pos > offset) break;
    page = m.page;
  }
  return page;
}

/**
 * Splits `text` into chunks of at most `maxTokens` tokens (header included), paragraphs kept whole where they fit.
 * Chunks cover every non-blank character of the text, in order, without overlap.
 */
export function chunkText(text: string, opts: ChunkOptions): Chunk[] {
  return runToEnd(chunkTextSteps(text, opts));
}

/** chunkText as bounded steps (each yields after one token count of at most a slice of the text). */
export function* chunkTextSteps(text: string, opts: ChunkOptions): Steps<Chunk[]> {
  const { countTokens, maxTokens } = opts;
  if (!Number.isFinite(maxTokens) || maxTokens < 8) {
    throw new Error(`chunkText: maxTokens must be a number >= 8, got ${maxTokens}`);
  }
  const markers = pageMarkers(text);
  const maxHeader = markers.length > 0 ? countTokens(`[p. ${markers[markers.length - 1].page}]\n`) : 0;
  const limit = maxTokens - maxHeader;
  const paragraphs = paragraphSpans(text);
  // Measuring each candidate join keeps the bound exact whatever the tokenizer does at the seams.
  const spans = yield* packSpans(text, paragraphs, limit, countTokens, 0);
  const chunks: Chunk[] = [];
  for (const [index, span] of spans.entries()) {
    const chunkSource = text.slice(span.start, span.end);
    const firstPage = pageAt(markers, span.start);
    const startsWithMarker = /^\[p\. \d+\]/.test(chunkSource);
    const header = firstPage !== null && !startsWithMarker ? `[p. ${firstPage}]` : '';
    const chunk = { index, start: span.start, end: span.end, text: chunkSource, header, tokens: 0 };
    chunks.push({
      ...chunk,
      tokens: countTokens(chunkPromptText(chunk)),
      firstPage: startsWithMarker ? pageAt(markers, span.start + 1) : firstPage,
      lastPage: pageAt(markers, span.end - 1),
    });
    yield;
  }
  return chunks;
}
