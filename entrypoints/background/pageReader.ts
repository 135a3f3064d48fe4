// Gets a tab's text from the content script, injecting it on demand (activeTab) when it is not loaded there yet.

import type { ReadPageOptions } from '../../core/host/env';
import { pageAccessError, unreadableReason } from '../../core/host/pageAccess';
import { isPdfUrl } from '../../core/pdf/detect';
import { EXTRACT_MESSAGE, pageTruncation, parseExtractReply } from '../../core/protocol/content';
import type { PageContent } from '../../core/protocol/messages';
import { ProtocolError } from '../../core/protocol/messages';
import { readPdfTab, servedAsPdf } from './pdfReader';

const CONTENT_SCRIPT_FILE = '/content-scripts/content.js';

/** Only the tab's top frame answers: the reply comes from the tab asked, not from an iframe inside it. */
async function askContentScript(tabId: number): Promise<unknown> {
  return browser.tabs.sendMessage(tabId, { type: EXTRACT_MESSAGE }, { frameId: 0 });
}

async function injectContentScript(tabId: number): Promise<void> {
  if (browser.scripting?.executeScript) {
    await browser.scripting.executeScript({ target: { tabId }, files: [CONTENT_SCRIPT_FILE] });
  } else {
    // Firefox MV2 without the scripting API.
    await (
      browser.tabs as unknown as { executeScript(id: number, d: { file: string }): Promise<unknown> }
    ).executeScript(tabId, { file: CONTENT_SCRIPT_FILE });
  }
}

export async function readPage(tabId: number, opts: ReadPageOptions = {}): Promise<PageContent> {
  let url: string | undefined;
  try {
    url = (await browser.tabs.get(tabId)).url;
  } catch (e) {
    throw pageAccessError((e as Error).message, undefined);
  }
  const fileAccess = url?.startsWith('file:') ? await browser.extension.isAllowedFileSchemeAccess() : undefined;
  const reason = unreadableReason(url, { fileAccess });
  if (url && isPdfUrl(url)) return readPdfTab(url, opts);
  if (reason) throw new ProtocolError('page-unreadable', reason);
  let raw: unknown;
  try {
    // The content script is never declared in the manifest: inject it each time (it registers its listener once).
    await injectContentScript(tabId);
    raw = await askContentScript(tabId);
  } catch (e) {
    // The browser's PDF viewer takes no scripts: a PDF served from an address without ".pdf" lands here.
    if (url && (await servedAsPdf(url))) return readPdfTab(url, opts);
    throw pageAccessError((e as Error).message, url);
  }
  const reply = parseExtractReply(raw);
  if (!reply) throw new ProtocolError('page-unreadable', 'The page did not answer (is it still loading?).');
  if (!reply.ok) throw new ProtocolError('page-empty', reply.message);
  if (reply.kind === 'pdf') return readPdfTab(reply.page.url, opts);
  return { ...reply.page, truncated: pageTruncation(reply.truncatedFraction) };
}
