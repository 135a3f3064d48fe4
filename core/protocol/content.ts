// Background ↔ content script: "extract this page" and its answer (over tabs.sendMessage).
import * as v from 'valibot';
import type { PageContent, PageTruncation } from './messages';
import { isRecord, type Same } from './schema';

export const EXTRACT_MESSAGE = 'recycled-reader/extract';

export interface ExtractRequest {
  type: typeof EXTRACT_MESSAGE;
}

export type ExtractReply =
  | {
      ok: true;
      page: PageContent;
      /** 'pdf': the tab shows a PDF (the browser's viewer has no text to read): the background fetches page.url. */
      kind: 'article' | 'visible-text' | 'selection' | 'fallback' | 'pdf';
      /** Share of the page's text taken when extraction stopped early; null when it read everything. */
      truncatedFraction: number | null;
    }
  | { ok: false; code: string; message: string };

export function isExtractRequest(m: unknown): m is ExtractRequest {
  return isRecord(m) && m.type === EXTRACT_MESSAGE;
}

// The content script's answer. Lenient where the background has a safe reading of an odd value (an unknown kind is
// read as 'fallback', a missing fraction as "read everything"); strict on the page's strings.
const extractFailure = v.object({
  ok: v.literal(false),
  code: v.pipe(v.unknown(), v.transform(String)),
  message: v.string(),
});
const extractSuccess = v.object({
  ok: v.literal(true),
  page: v.object({ title: v.string(), url: v.string(), text: v.string() }),
  kind: v.fallback(v.picklist(['article', 'visible-text', 'selection', 'fallback', 'pdf']), 'fallback'),
  truncatedFraction: v.fallback(v.nullable(v.pipe(v.number(), v.finite())), null),
});
const extractReply = v.variant('ok', [extractSuccess, extractFailure]);
const extractReplyAgrees: Same<v.InferOutput<typeof extractReply>, ExtractReply> = true;
void extractReplyAgrees;

/** Checks the content script's answer; returns null when it does not look like one. */
export function parseExtractReply(m: unknown): ExtractReply | null {
  if (!isRecord(m)) return null;
  const result = v.safeParse(extractReply, m);
  return result.success ? result.output : null;
}

/**
 * The coverage's account of a page the content script cut (it stops at a character cap or a deadline).
 * `takenFraction`: the reply's `truncatedFraction`, the share of the page's text it took.
 */
export function pageTruncation(takenFraction: number | null): PageTruncation | null {
  if (takenFraction === null || !(takenFraction < 1)) return null;
  return {
    fraction: 1 - Math.max(0, takenFraction),
    reason: 'The page is very long: only its first part was extracted.',
  };
}

export const HIGHLIGHT_MESSAGE = 'recycled-reader/highlight';

/** Background → content script: scroll to [start, end) of the extracted text and highlight it (`quote`: its text,
 * to search for when the page changed since it was read). */
export interface HighlightRequest {
  type: typeof HIGHLIGHT_MESSAGE;
  start: number;
  end: number;
  quote: string;
}

export type HighlightReply = { ok: true; method: 'highlight-api' | 'selection' } | { ok: false; reason: string };

export function isHighlightRequest(m: unknown): m is HighlightRequest {
  return (
    isRecord(m) &&
    m.type === HIGHLIGHT_MESSAGE &&
    Number.isSafeInteger(m.start) &&
    Number.isSafeInteger(m.end) &&
    typeof m.quote === 'string'
  );
}
