// Reads the page when the background asks, and shows a cited passage. Never declared in the manifest: the background
// injects it on demand (activeTab + scripting) into the tab the user asked about.
import {
  type ExtractReply,
  type HighlightReply,
  isExtractRequest,
  isHighlightRequest,
} from '../../core/protocol/content';
import { type ExtractedPage, ExtractionError, extractPage } from './extract';
import { showPassage } from './highlight';

declare global {
  interface Window {
    __recycledReaderContent?: boolean;
  }
}

const PDF_TYPES = new Set(['application/pdf', 'application/x-pdf']);
/** The last extraction: its offset map takes a cited span back to the DOM. */
let lastPage: ExtractedPage | null = null;

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
    lastPage = page;
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
    browser.runtime.onMessage.addListener(
      (message: unknown, sender, sendResponse: (r: ExtractReply | HighlightReply) => void) => {
        // Only our own background asks (another extension cannot reach this listener, but check all the same).
        if (sender.id !== browser.runtime.id) return undefined;
        if (isExtractRequest(message)) sendResponse(extract());
        else if (isHighlightRequest(message)) {
          // Injected afresh (the extension reloaded): read the page again for its offset map.
          if (!lastPage) extract();
          sendResponse(showPassage(document, lastPage, message));
        }
        return undefined;
      },
    );
  },
});
