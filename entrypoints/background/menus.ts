// Keyboard commands and context menus. Commands (changeable at chrome://extensions/shortcuts): the popup opens with
// the question focused (`_execute_action`), and "open-side-panel" opens the side panel. Menus: on a selection "Ask
// about the selection", "Explain", "Summarize the selection"; on a page "Summarize this page/PDF". A menu action
// opens the side panel (Chrome) and starts the job there, where the answer streams.
import type { EngineHost } from '../../core/host/host';
import type { Request } from '../../core/protocol/messages';

export const MENU_ITEMS = [
  { id: 'rr-ask-selection', title: 'Ask about the selection', contexts: ['selection'] },
  { id: 'rr-explain-selection', title: 'Explain “%s”', contexts: ['selection'] },
  { id: 'rr-summarize-selection', title: 'Summarize the selection', contexts: ['selection'] },
  { id: 'rr-summarize-page', title: 'Summarize this page/PDF', contexts: ['page'] },
] as const;

export type MenuItemId = (typeof MENU_ITEMS)[number]['id'];

/** The job a menu item starts; null for an unknown item or a missing selection. */
export function menuRequest(
  id: string,
  tab: { id: number; title: string; url: string },
  selection: string | undefined,
): Request | null {
  const text = selection?.trim() ?? '';
  const quoted = text.length > 300 ? `${text.slice(0, 300)}…` : text;
  switch (id) {
    case 'rr-ask-selection':
      return text ? { type: 'ask', tabId: tab.id, question: `What does the page say about “${quoted}”?` } : null;
    case 'rr-explain-selection':
      return text ? { type: 'ask', tabId: tab.id, question: `Explain this passage: “${quoted}”` } : null;
    case 'rr-summarize-selection':
      return text
        ? {
            type: 'summarize',
            tabId: tab.id,
            document: { title: `Selection from ${tab.title}`, url: tab.url, text },
          }
        : null;
    case 'rr-summarize-page':
      return { type: 'summarize', tabId: tab.id };
    default:
      return null;
  }
}

interface SidePanelApi {
  open(o: { tabId?: number; windowId?: number }): Promise<void>;
}

export function setupMenusAndCommands(host: EngineHost): void {
  const sidePanel = (browser as unknown as { sidePanel?: SidePanelApi }).sidePanel;
  const menus = (browser as unknown as { contextMenus?: typeof browser.contextMenus }).contextMenus;
  if (menus) {
    browser.runtime.onInstalled.addListener(() => {
      void menus.removeAll().then(() => {
        for (const item of MENU_ITEMS) menus.create({ id: item.id, title: item.title, contexts: [...item.contexts] });
      });
    });
    menus.onClicked.addListener((info, tab) => {
      if (tab?.id === undefined) return;
      // Open first: sidePanel.open must run inside the click's user gesture.
      if (sidePanel) void sidePanel.open({ tabId: tab.id }).catch(() => {});
      void runMenuItem(host, String(info.menuItemId), {
        tab: { id: tab.id, title: tab.title ?? '', url: tab.url ?? '' },
        selection: info.selectionText,
      });
    });
  }
  browser.commands?.onCommand.addListener((command, tab) => {
    if (command === 'open-side-panel' && sidePanel && tab?.windowId !== undefined)
      void sidePanel.open({ windowId: tab.windowId }).catch(() => {});
  });
}

/** Runs a menu item's job; also what e2e tests call (a headless browser has no context menu to click). */
export async function runMenuItem(
  host: EngineHost,
  id: string,
  o: { tab: { id: number; title: string; url: string }; selection?: string },
): Promise<string | null> {
  const request = menuRequest(id, o.tab, o.selection);
  if (!request) return null;
  try {
    const reply = (await host.handle(request as Extract<Request, { type: 'ask' }>)) as { jobId: string };
    return reply.jobId;
  } catch {
    return null; // busy or no GPU: the side panel shows the state
  }
}
