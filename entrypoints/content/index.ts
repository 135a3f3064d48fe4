// Reads the page when the background asks. Never declared in the manifest: the background injects it on demand
// (activeTab + scripting) into the tab the user asked about, so the extension asks for no access to every site.
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
  registration: 'runtime',
  main() {
    // Injected again on every read: listen once.
    if (window.__recycledReaderContent) return;
    window.__recycledReaderContent = true;
    browser.runtime.onMessage.addListener((message: unknown, sender, sendResponse: (r: ExtractReply) => void) => {
      // Only our own background asks (another extension cannot reach this listener, but check all the same).
      if (sender.id !== browser.runtime.id || !isExtractRequest(message)) return undefined;
      sendResponse(extract());
      return undefined;
    });
  },
});
