// Which pages an extension may not read, and how to say so. Pure logic: the background passes URLs and error texts.
import { ProtocolError } from '../protocol/messages';

const WEB_STORE_HOSTS = [
  'chromewebstore.google.com',
  'chrome.google.com',
  'addons.mozilla.org',
  'microsoftedge.microsoft.com',
];
const BROWSER_SCHEMES = [
  'chrome:',
  'chrome-extension:',
  'chrome-untrusted:',
  'devtools:',
  'edge:',
  'about:',
  'moz-extension:',
  'view-source:',
  'chrome-search:',
];

/** A reason the page at `url` cannot be read, or null when nothing in the URL forbids it. */
export function unreadableReason(url: string | undefined, opts: { fileAccess?: boolean } = {}): string | null {
  if (!url) return null;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return null;
  }
  if (BROWSER_SCHEMES.includes(parsed.protocol))
    return `Browser pages (${parsed.protocol}//) cannot be read by extensions.`;
  if (parsed.protocol === 'https:' && WEB_STORE_HOSTS.includes(parsed.hostname) && /webstore|addons|detail/.test(url))
    return 'The browser’s extension store does not allow extensions to read its pages.';
  if (parsed.protocol === 'file:' && opts.fileAccess === false)
    return 'Local files can be read only after you turn on “Allow access to file URLs” for Recycled Reader in the extensions page.';
  return null;
}

/** Turns the browser's error from injecting/messaging a tab into a typed, user-readable error. */
export function pageAccessError(message: string, url: string | undefined): ProtocolError {
  const byUrl = unreadableReason(url);
  if (byUrl) return new ProtocolError('page-unreadable', byUrl);
  if (/No tab with id|tab was closed/i.test(message)) return new ProtocolError('page-unreadable', 'That tab is gone.');
  if (/cannot be scripted|Cannot access a chrome|chrome:\/\/ URL|extensions gallery/i.test(message))
    return new ProtocolError('page-unreadable', 'The browser does not allow extensions to read this page.');
  if (/file:|file URL/i.test(message))
    return new ProtocolError(
      'page-unreadable',
      'Local files can be read only after you turn on “Allow access to file URLs” for Recycled Reader in the extensions page.',
    );
  if (/permission|Cannot access contents/i.test(message))
    return new ProtocolError(
      'page-unreadable',
      'Recycled Reader has no permission to read this page: open it from the toolbar button on that page.',
    );
  return new ProtocolError('page-unreadable', `The page could not be read: ${message}`);
}
