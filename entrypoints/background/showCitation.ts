// Shows a citation in its tab: a web page scrolls to the passage and highlights it (the content script does that
// through its offset map); a PDF opens at the page (the viewer's #page=N).
import { isPdfUrl } from '../../core/pdf/detect';
import { HIGHLIGHT_MESSAGE, type HighlightReply, type HighlightRequest } from '../../core/protocol/content';
import type { Citation } from '../../core/protocol/messages';

export async function showCitation(
  tabId: number,
  pageUrl: string,
  citation: Citation,
): Promise<{ shown: boolean; reason?: string }> {
  if (citation.match === 'none') return { shown: false, reason: 'This quote was not found in the page.' };
  const pdf = citation.page !== null && (citation.kind === 'page' || isPdfUrl(pageUrl));
  if (pdf) {
    // A PDF the user picked from disk has no address a tab can open.
    if (!/^(https?:|file:\/\/)/.test(pageUrl)) return { shown: false, reason: `See page ${citation.page} of the PDF.` };
    const base = pageUrl.split('#')[0];
    await browser.tabs.update(tabId, { url: `${base}#page=${citation.page}` });
    return { shown: true };
  }
  if (citation.start === null || citation.end === null) return { shown: false, reason: 'No passage to show.' };
  const request: HighlightRequest = {
    type: HIGHLIGHT_MESSAGE,
    start: citation.start,
    end: citation.end,
    quote: citation.quote,
  };
  try {
    const reply = (await browser.tabs.sendMessage(tabId, request)) as HighlightReply | undefined;
    if (!reply) return { shown: false, reason: 'The page did not answer; reload it and try again.' };
    return reply.ok ? { shown: true } : { shown: false, reason: reply.reason };
  } catch (e) {
    return { shown: false, reason: `The page cannot be reached: ${(e as Error).message}` };
  }
}
