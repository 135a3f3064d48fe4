// "Open a PDF file…": the popup extracts the text itself (an extension page may hold the file's bytes; sending them
// to the background would double the memory). pdf.js is loaded on first use so the popup opens fast.
import type { PageContent } from '../core/protocol/messages';

/** The text of a PDF the user picked, with [p. N] page markers. Throws PdfError with a user-readable message. */
export async function readPdfFile(file: File): Promise<PageContent> {
  const [{ extractPdfText }, { pdfjsInline }] = await Promise.all([
    import('../core/pdf/extract'),
    import('../core/pdf/pdfjsWorkerInline'),
  ]);
  const bytes = new Uint8Array(await file.arrayBuffer());
  const pdf = await extractPdfText(pdfjsInline, bytes);
  return { title: pdf.title ?? file.name, url: `file:${file.name}`, text: pdf.text };
}
