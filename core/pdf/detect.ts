// Is this tab a PDF? URL forms seen in practice: a plain .pdf path (query/hash allowed), Chrome's built-in viewer
// (chrome-extension://mhjfbmdgcfjbbpaeojofohoefgiehjai/index.html?<src>), pdf.js viewers (…/viewer.html?file=<src>),
// file:// paths, and any URL served with Content-Type application/pdf.

const CHROME_PDF_VIEWER_ID = 'mhjfbmdgcfjbbpaeojofohoefgiehjai';
const PDF_CONTENT_TYPES = new Set(['application/pdf', 'application/x-pdf', 'application/acrobat', 'text/pdf']);

function hasPdfPath(url: URL): boolean {
  let path = url.pathname;
  try {
    path = decodeURIComponent(path);
  } catch {
    // Keep the raw path when it is not valid percent-encoding.
  }
  return /\.pdf$/i.test(path.replace(/\/+$/, ''));
}

/** The document URL inside a viewer URL, or null if this is not a known viewer URL. */
export function pdfViewerSource(url: string): string | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return null;
  }
  if (parsed.protocol === 'chrome-extension:' && parsed.hostname === CHROME_PDF_VIEWER_ID) {
    const src = parsed.searchParams.get('src') ?? parsed.search.slice(1);
    return src.length > 0 ? src : null;
  }
  if (/\/viewer\.html$/i.test(parsed.pathname)) return parsed.searchParams.get('file');
  return null;
}

/** True when the URL or the response content type says this is a PDF. */
export function isPdfUrl(url: string, contentType?: string | null): boolean {
  if (contentType) {
    const mime = contentType.split(';')[0].trim().toLowerCase();
    if (PDF_CONTENT_TYPES.has(mime)) return true;
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  if (parsed.protocol === 'chrome-extension:' && parsed.hostname === CHROME_PDF_VIEWER_ID) return true;
  const viewerSource = pdfViewerSource(url);
  if (viewerSource !== null) return viewerSource !== url && isPdfUrl(viewerSource);
  return hasPdfPath(parsed);
}
