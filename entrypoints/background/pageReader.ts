// Gets a tab's text from the content script, injecting it on demand (activeTab) when it is not loaded there yet.

import { pageAccessError, unreadableReason } from '../../core/host/pageAccess';
import { isPdfUrl } from '../../core/pdf/detect';
import { EXTRACT_MESSAGE, parseExtractReply } from '../../core/protocol/content';
import type { PageContent } from '../../core/protocol/messages';
import { ProtocolError } from '../../core/protocol/messages';
import { readPdfTab, servedAsPdf } from './pdfReader';

const CONTENT_SCRIPT_FILE = '/content-scripts/content.js';

async function askContentScript(tabId: number): Promise<unknown> {
  return browser.tabs.sendMessage(tabId, { type: EXTRACT_MESSAGE });
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

export async function readPage(tabId: number): Promise<PageContent> {
  let url: string | undefined;
  try {
    url = (await browser.tabs.get(tabId)).url;
  } catch (e) {
    throw pageAccessError((e as Error).message, undefined);
  }
  const fileAccess = url?.startsWith('file:') ? await browser.extension.isAllowedFileSchemeAccess() : undefined;
  const reason = unreadableReason(url, { fileAccess });
  if (url && isPdfUrl(url)) return readPdfTab(url);
  if (reason) throw new ProtocolError('page-unreadable', reason);
  let raw: unknown;
  try {
    raw = await askContentScript(tabId);
  } catch {
    // No listener: the tab was open before the extension was installed, or content scripts are not allowed there.
    try {
      await injectContentScript(tabId);
      raw = await askContentScript(tabId);
    } catch (e) {
      // The browser's PDF viewer takes no scripts: a PDF served from an address without ".pdf" lands here.
      if (url && (await servedAsPdf(url))) return readPdfTab(url);
      throw pageAccessError((e as Error).message, url);
    }
  }
  const reply = parseExtractReply(raw);
  if (!reply) throw new ProtocolError('page-unreadable', 'The page did not answer (is it still loading?).');
  if (!reply.ok) throw new ProtocolError('page-empty', reply.message);
  if (reply.kind === 'pdf') return readPdfTab(reply.page.url);
  return reply.page;
}
