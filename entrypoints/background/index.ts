// The background owns the engine host. Side effects stay inside defineBackground: WXT imports this file in Node at
// build time. Chrome runs it as the MV3 service worker (WebGPU works there); Firefox as the background page.
import { EngineHost } from '../../core/host/host';
import { isUiSender, servePort } from '../../core/host/portServer';
import { UI_PORT_NAME } from '../../core/protocol/messages';
import { createBrowserHostEnv } from './hostEnv';
import { runMenuItem, setupMenusAndCommands } from './menus';

export default defineBackground(() => {
  const host = new EngineHost(createBrowserHostEnv());
  void host.init();
  browser.runtime.onConnect.addListener((port) => {
    // UI ports only from our own extension pages; anything else is disconnected unanswered.
    if (port.name === UI_PORT_NAME && isUiSender(port.sender, browser.runtime.id, browser.runtime.getURL('/')))
      servePort(host, port);
    else port.disconnect();
  });
  setupMenusAndCommands(host);
  // For e2e tests: a headless browser has no context menu to click.
  (globalThis as { __recycledReaderMenu?: unknown }).__recycledReaderMenu = (
    id: string,
    o: Parameters<typeof runMenuItem>[2],
  ) => runMenuItem(host, id, o);
});
