// PDF tabs: the browser's PDF viewer runs no content script, so the background fetches the file itself and extracts
// its text with pdf.js ("[p. N]" markers keep page numbers citable). A fetch the browser refuses for want of a host
// permission becomes a typed `permission-needed` error naming the origin, which the popup can ask the user for.

import type { ReadPageOptions } from '../../core/host/env';
import {
  extractPdfText,
  MAX_PDF_BYTES,
  MAX_PDF_PAGES,
  PDF_DEADLINE_MS,
  PdfError,
  PdfFetchError,
  pdfSourceFor,
  pdfTruncation,
  readBodyCapped,
} from '../../core/pdf';
import { pdfjsInline } from '../../core/pdf/pdfjsWorkerInline';
import type { PageContent } from '../../core/protocol/messages';
import { ProtocolError } from '../../core/protocol/messages';

/** The origin pattern `permissions.request` takes for a URL's site. */
export function originPattern(url: string): string {
  return `${new URL(url).origin}/*`;
}

function fileName(url: string): string {
  const path = new URL(url).pathname;
  const name = path.slice(path.lastIndexOf('/') + 1);
  try {
    return decodeURIComponent(name) || url;
  } catch {
    return name || url;
  }
}

async function fetchPdf(url: string, signal?: AbortSignal): Promise<Uint8Array> {
  const parsed = new URL(url);
  if (parsed.protocol === 'file:')
    throw new ProtocolError(
      'page-unreadable',
      'The browser does not let extensions fetch local PDF files: use “Open a PDF file…” in the popup instead.',
    );
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    throw new ProtocolError('page-unreadable', `PDFs can be read from http(s) addresses only, not ${parsed.protocol}`);
  let response: Response;
  try {
    response = await fetch(url, { credentials: 'include', signal });
  } catch (e) {
    const origins = [originPattern(url)];
    const granted = await browser.permissions.contains({ origins }).catch(() => false);
    if (!granted)
      throw new ProtocolError(
        'permission-needed',
        `To read this PDF, Recycled Reader needs permission to download files from ${parsed.origin}.`,
        origins,
      );
    throw new ProtocolError('page-unreadable', `The PDF could not be downloaded: ${(e as Error).message}`);
  }
  if (!response.ok)
    throw new ProtocolError('page-unreadable', `The PDF could not be downloaded: HTTP ${response.status}.`);
  return readBodyCapped(response, MAX_PDF_BYTES, signal);
}

/** The text of the PDF shown at `tabUrl` (a .pdf address or a PDF viewer's address). */
export async function readPdfTab(tabUrl: string, opts: ReadPageOptions = {}): Promise<PageContent> {
  try {
    const url = pdfSourceFor(tabUrl, { userAction: opts.userAction === true });
    const bytes = await fetchPdf(url, opts.signal);
    const pdf = await extractPdfText(pdfjsInline, bytes, {
      maxPages: MAX_PDF_PAGES,
      deadlineMs: PDF_DEADLINE_MS,
      signal: opts.signal,
    });
    return { title: pdf.title ?? fileName(url), url, text: pdf.text, truncated: pdfTruncation(pdf.truncated) };
  } catch (e) {
    if (e instanceof PdfError)
      throw new ProtocolError(e.code === 'no-text-layer' ? 'page-empty' : 'page-unreadable', e.message);
    if (e instanceof PdfFetchError) throw new ProtocolError('page-unreadable', e.message);
    throw e;
  }
}

/** True when the server says `url` is a PDF (a PDF served from an address without .pdf). */
export async function servedAsPdf(url: string): Promise<boolean> {
  if (!/^https?:/.test(url)) return false;
  try {
    const response = await fetch(url, { method: 'HEAD', credentials: 'include' });
    return /^application\/(x-)?pdf\b/i.test(response.headers.get('content-type') ?? '');
  } catch {
    return false;
  }
}
