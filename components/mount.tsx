// Mounts the UI in the popup, the side panel, or a tab opened on popup.html?tab=ID.
import { render } from 'preact';
import { HostClient } from '../core/protocol/client';
import { UI_PORT_NAME } from '../core/protocol/messages';
import type { PortLike } from '../core/protocol/port';
import { App } from './App';
import './style.css';

export function mount(surface: 'popup' | 'sidepanel'): void {
  const client = new HostClient(() => browser.runtime.connect({ name: UI_PORT_NAME }) as unknown as PortLike);
  const tabParam = new URLSearchParams(location.search).get('tab');
  const fixedTab = tabParam !== null && /^\d+$/.test(tabParam) ? Number(tabParam) : null;
  const actualSurface = fixedTab !== null ? 'tab' : surface;
  // The popup belongs to the tab it was opened on; the side panel follows the active tab.
  let popupTab: Promise<number | null> | null = null;
  const activeTab = async () => (await browser.tabs.query({ active: true, currentWindow: true }))[0]?.id ?? null;
  const resolveTab = async (): Promise<number | null> => {
    if (fixedTab !== null) return fixedTab;
    if (surface === 'sidepanel') return activeTab();
    popupTab ??= activeTab();
    return popupTab;
  };
  const sidePanel = (browser as unknown as { sidePanel?: { open(o: { windowId: number }): Promise<void> } }).sidePanel;
  // sidePanel.open needs the click's user gesture: know the window before the click.
  let windowId: number | undefined;
  if (sidePanel) void browser.windows.getCurrent().then((w) => (windowId = w.id));
  const openSidePanel =
    sidePanel && surface === 'popup'
      ? () => {
          if (windowId !== undefined) void sidePanel.open({ windowId }).then(() => window.close());
        }
      : undefined;
  // The side panel follows the active tab: switching tabs, or the tab loading another page, shows that tab's thread.
  const watchTab =
    surface === 'sidepanel' && fixedTab === null
      ? (onChange: () => void) => {
          const activated = () => onChange();
          const updated = (_id: number, info: { status?: string }) => {
            if (info.status === 'complete') onChange();
          };
          browser.tabs.onActivated.addListener(activated);
          browser.tabs.onUpdated.addListener(updated);
          return () => {
            browser.tabs.onActivated.removeListener(activated);
            browser.tabs.onUpdated.removeListener(updated);
          };
        }
      : undefined;
  render(
    <App
      api={client}
      resolveTab={resolveTab}
      surface={actualSurface}
      openSidePanel={openSidePanel}
      watchTab={watchTab}
    />,
    document.getElementById('app')!,
  );
}
