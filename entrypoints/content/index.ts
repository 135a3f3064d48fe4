// Reads the page when the background asks (the background injects this file on demand when it is not there yet).
import { type ExtractReply, isExtractRequest } from '../../core/protocol/content';
import { ExtractionError, extractPage } from './extract';

declare global {
  interface Window {
    __recycledReaderContent?: boolean;
  }
}

const PDF_TYPES = new Set(['application/pdf', 'application/x-pdf']);

function extract(): ExtractReply {
  // The browser's PDF viewer: the text is not in this document; the background downloads and reads the file.
  if (PDF_TYPES.has(document.contentType))
    return {
      ok: true,
      page: { title: document.title, url: location.href, text: '' },
      kind: 'pdf',
      truncatedFraction: null,
    };
  try {
    const page = extractPage(document);
    return {
      ok: true,
      page: { title: page.title, url: page.url, text: page.text },
      kind: page.kind,
      truncatedFraction: page.truncated?.fraction ?? null,
    };
  } catch (e) {
    if (e instanceof ExtractionError) return { ok: false, code: e.code, message: e.message };
    // The extractor failed unexpectedly: the visible text is still better than nothing.
    // biome-ignore lint/performance/useDomNodeTextContent: innerText is the rendered text, what the user sees
    const text = document.body?.innerText ?? '';
    return {
      ok: true,
      page: { title: document.title, url: location.href, text },
      kind: 'fallback',
      truncatedFraction: null,
    };
  }
}

export default defineContentScript({
  matches: ['<all_urls>'],
  runAt: 'document_idle',
  main() {
    // Manifest injection and on-demand injection may both run: listen once.
    if (window.__recycledReaderContent) return;
    window.__recycledReaderContent = true;
    browser.runtime.onMessage.addListener((message: unknown, _sender, sendResponse: (r: ExtractReply) => void) => {
      if (!isExtractRequest(message)) return undefined;
      sendResponse(extract());
      return undefined;
    });
  },
});
