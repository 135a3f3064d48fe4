// Which PDF URL the background may download for a tab, and reading its body under a size cap. Pure over fetch's
// Response, so Node tests run it.
import type { PageTruncation } from '../protocol/messages';
import { pdfViewerSource } from './detect.ts';
import type { PdfText } from './extract.ts';

/** Largest PDF the background downloads (a 2,000-page text PDF is far below this). */
export const MAX_PDF_BYTES = 64 * 1024 * 1024;
/** Pages read from one PDF, and how long reading may take: beyond either the text is cut and the coverage says so. */
export const MAX_PDF_PAGES = 2000;
export const PDF_DEADLINE_MS = 60_000;

export type PdfFetchErrorCode = 'needs-user-action' | 'bad-url' | 'too-large' | 'aborted';

export class PdfFetchError extends Error {
  constructor(
    readonly code: PdfFetchErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'PdfFetchError';
  }
}

/**
 * The URL to download for a PDF tab. A viewer's `?file=` is supplied by the page (a site's pdf.js viewer can point
 * anywhere, an intranet address included): it is resolved against the tab and used only when the user asked for this
 * read. Chrome's own viewer and plain .pdf tabs are the tab's address.
 */
export function pdfSourceFor(tabUrl: string, opts: { userAction: boolean }): string {
  const source = pdfViewerSource(tabUrl);
  let url: URL;
  try {
    url = new URL(source ?? tabUrl, tabUrl);
  } catch {
    throw new PdfFetchError('bad-url', `The PDF address “${source ?? tabUrl}” is not a URL.`);
  }
  const pageSupplied = source !== null && !tabUrl.startsWith('chrome-extension://');
  if (pageSupplied && !opts.userAction)
    throw new PdfFetchError(
      'needs-user-action',
      'This page names a PDF to download; it is read only when you click Ask or Summarize.',
    );
  return url.href;
}

/** The response body, refusing one larger than `maxBytes` (by Content-Length, then while reading). */
export async function readBodyCapped(
  response: Response,
  maxBytes = MAX_PDF_BYTES,
  signal?: AbortSignal,
): Promise<Uint8Array> {
  const tooLarge = (n: string) =>
    new PdfFetchError('too-large', `This PDF is larger than ${Math.round(maxBytes / 2 ** 20)} MB (${n}); not read.`);
  const declared = Number(response.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) {
    await response.body?.cancel().catch(() => {});
    throw tooLarge(`${Math.round(declared / 2 ** 20)} MB`);
  }
  if (!response.body) return new Uint8Array(await response.arrayBuffer());
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      if (signal?.aborted) throw new PdfFetchError('aborted', 'Reading the PDF was stopped.');
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) throw tooLarge('more than that so far');
      chunks.push(value);
    }
  } catch (e) {
    await reader.cancel().catch(() => {});
    throw e;
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/** What the coverage says about a PDF cut by the page cap, the deadline or Stop: the share of pages not read. */
export function pdfTruncation(t: PdfText['truncated']): PageTruncation | null {
  if (!t || t.pageCount === 0) return null;
  const why = {
    'max-pages': `the first ${t.pagesRead} pages`,
    deadline: 'the pages read in time',
    aborted: 'the pages read before Stop',
  };
  return {
    fraction: 1 - t.pagesRead / t.pageCount,
    reason: `Only ${why[t.reason]} of ${t.pageCount} were read.`,
  };
}
