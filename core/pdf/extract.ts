// PDF → text with page markers, on pdf.js. The pdf.js module is a parameter because Node and the service worker load
// different builds (see pdfjsLegacy.ts and pdfjsWorkerInline.ts); this file imports neither.

import { cleanText } from '../document/text.ts';
import { assemblePageText, type PdfTextItemLike, pageMarker } from './assemble.ts';

/** The slice of the pdf.js API used here; both the legacy and the modern build satisfy it. */
export interface PdfjsLib {
  getDocument(params: Record<string, unknown>): PdfLoadingTaskLike;
}
interface PdfLoadingTaskLike {
  promise: Promise<PdfDocumentLike>;
  destroy(): Promise<void>;
}
interface PdfDocumentLike {
  numPages: number;
  getPage(pageNumber: number): Promise<PdfPageLike>;
  getMetadata(): Promise<{ info?: unknown }>;
}
interface PdfPageLike {
  getTextContent(): Promise<{ items: ReadonlyArray<PdfTextItemLike | { type: string }> }>;
  cleanup(): unknown;
}

export type PdfErrorCode = 'encrypted' | 'wrong-password' | 'invalid' | 'no-text-layer' | 'empty-input';

export class PdfError extends Error {
  constructor(
    readonly code: PdfErrorCode,
    message: string,
    override readonly cause?: unknown,
  ) {
    super(message);
    this.name = 'PdfError';
  }
}

export interface PdfPageText {
  pageNumber: number;
  /** [start, end) of this page in PdfText.text, marker included. */
  start: number;
  end: number;
  /** Characters of text on the page, marker excluded. */
  chars: number;
}

export interface PdfText {
  /** Pages joined by blank lines, each starting with its "[p. N]" marker. */
  text: string;
  title: string | null;
  pageCount: number;
  pages: PdfPageText[];
  /** Page numbers with no text (figures, scans) in an otherwise text PDF. */
  emptyPages: number[];
  /** Set when not every page was read (page limit or deadline); never silent. */
  truncated: null | { reason: 'max-pages' | 'deadline' | 'aborted'; pagesRead: number; pageCount: number };
  ms: number;
}

export interface PdfExtractOptions {
  password?: string;
  /** Read at most this many pages (default: all). */
  maxPages?: number;
  /** Stop reading pages after this many milliseconds (default: none). */
  deadlineMs?: number;
  signal?: AbortSignal;
  /** Below this many characters per page on average, the PDF is treated as having no text layer. */
  minCharsPerPage?: number;
  now?: () => number;
}

const PDFJS_PARAMS = {
  // MV3 forbids eval; a service worker has no FontFace; text extraction needs neither.
  isEvalSupported: false,
  disableFontFace: true,
  useSystemFonts: false,
  useWorkerFetch: false,
  stopAtErrors: false,
  verbosity: 0,
};

function errorName(error: unknown): string {
  return typeof error === 'object' && error !== null && 'name' in error ? String(error.name) : '';
}

function translateError(error: unknown, password: string | undefined): PdfError {
  const name = errorName(error);
  if (name === 'PasswordException') {
    const code = (error as { code?: number }).code;
    // pdf.js: code 1 = a password is needed, 2 = the one given is wrong.
    return password !== undefined && code === 2
      ? new PdfError('wrong-password', 'The password for this PDF is incorrect.', error)
      : new PdfError('encrypted', 'This PDF is password-protected; open it with its password first.', error);
  }
  if (name === 'InvalidPDFException') {
    return new PdfError('invalid', 'This file is not a valid PDF (it may be damaged or incomplete).', error);
  }
  const message = error instanceof Error ? error.message : String(error);
  return new PdfError('invalid', `Could not read this PDF: ${message}`, error);
}

function readTitle(info: unknown): string | null {
  if (typeof info !== 'object' || info === null || !('Title' in info)) return null;
  const title = cleanText(String(info.Title)).trim();
  return title.length > 0 ? title : null;
}

/** Extracts the text of a PDF. Throws PdfError for encrypted, damaged, empty and image-only PDFs. */
export async function extractPdfText(
  pdfjs: PdfjsLib,
  data: Uint8Array,
  opts: PdfExtractOptions = {},
): Promise<PdfText> {
  const now = opts.now ?? (() => performance.now());
  const started = now();
  if (data.byteLength === 0) throw new PdfError('empty-input', 'The PDF file is empty (0 bytes).');
  // pdf.js takes ownership of (detaches) the buffer it is given: pass a copy so the caller's bytes stay usable.
  const task = pdfjs.getDocument({ ...PDFJS_PARAMS, data: data.slice(), password: opts.password });
  let doc: PdfDocumentLike;
  try {
    doc = await task.promise;
  } catch (error) {
    await task.destroy().catch(() => {});
    throw translateError(error, opts.password);
  }
  try {
    const title = readTitle((await doc.getMetadata().catch(() => ({ info: undefined }))).info);
    const pageCount = doc.numPages;
    const lastPage = Math.min(pageCount, opts.maxPages ?? pageCount);
    const parts: string[] = [];
    const pages: PdfPageText[] = [];
    const emptyPages: number[] = [];
    let offset = 0;
    let totalChars = 0;
    let truncated: PdfText['truncated'] = null;
    for (let pageNumber = 1; pageNumber <= lastPage; pageNumber++) {
      if (opts.signal?.aborted) {
        truncated = { reason: 'aborted', pagesRead: pageNumber - 1, pageCount };
        break;
      }
      if (opts.deadlineMs !== undefined && now() - started > opts.deadlineMs) {
        truncated = { reason: 'deadline', pagesRead: pageNumber - 1, pageCount };
        break;
      }
      const page = await doc.getPage(pageNumber);
      const content = await page.getTextContent();
      page.cleanup();
      const items = content.items.filter((item): item is PdfTextItemLike => 'str' in item);
      const pageText = assemblePageText(items);
      if (pageText.trim().length === 0) emptyPages.push(pageNumber);
      const part = pageText.length > 0 ? `${pageMarker(pageNumber)}\n${pageText}` : pageMarker(pageNumber);
      if (parts.length > 0) offset += 2; // the "\n\n" joining pages
      pages.push({ pageNumber, start: offset, end: offset + part.length, chars: pageText.length });
      parts.push(part);
      offset += part.length;
      totalChars += pageText.trim().length;
    }
    if (truncated === null && lastPage < pageCount) truncated = { reason: 'max-pages', pagesRead: lastPage, pageCount };
    const minChars = opts.minCharsPerPage ?? 20;
    if (pages.length > 0 && totalChars / pages.length < minChars) {
      throw new PdfError(
        'no-text-layer',
        `This PDF has no text layer (scanned?): ${totalChars} characters of text on ${pages.length} page(s).`,
      );
    }
    return { text: parts.join('\n\n'), title, pageCount, pages, emptyPages, truncated, ms: now() - started };
  } catch (error) {
    // A damaged page tree or content stream fails only when its page is read (pdf.js UnknownErrorException, …).
    throw error instanceof PdfError ? error : translateError(error, opts.password);
  } finally {
    await task.destroy().catch(() => {});
  }
}
