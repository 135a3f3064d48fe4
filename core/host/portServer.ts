// The host side of one UI port: checks who connected and each request, answers it with one reply or error, and
// forwards the host events that concern this UI: a job's events go only to the ports that asked about its tab.
import type { HostEvent } from '../protocol/messages';
import { toErrorInfo } from '../protocol/messages';
import type { PortLike } from '../protocol/port';
import { parseRequest, requestIdOf } from '../protocol/validate';
import type { EngineHost } from './host';

/** The part of `runtime.Port.sender` the check reads. */
export interface PortSender {
  id?: string;
  url?: string;
}

/**
 * A UI port must come from one of this extension's own pages (popup, side panel, popup.html in a tab): never from a
 * content script (its sender URL is the web page's) nor from another extension.
 */
export function isUiSender(sender: PortSender | undefined, extensionId: string, extensionOrigin: string): boolean {
  if (!sender || sender.id !== extensionId || !sender.url) return false;
  try {
    return new URL(sender.url).origin === new URL(extensionOrigin).origin;
  } catch {
    return false;
  }
}

/** The tab an event is about; null for events every UI needs (engine and GPU status, model loading). */
function tabOf(event: HostEvent, host: EngineHost): number | null {
  switch (event.type) {
    case 'delta':
    case 'coverage':
    case 'done':
    case 'progress':
      return event.tabId;
    case 'error':
      return event.jobId === null ? null : host.tabOfJob(event.jobId);
    case 'state':
      return event.state.job?.tabId ?? null;
    case 'reply':
      return null;
  }
}

export function servePort(host: EngineHost, port: PortLike): void {
  let open = true;
  /** The tabs this UI asked about (getState, ask, summarize): it hears those tabs' jobs. */
  const tabs = new Set<number>();
  const post = (event: HostEvent) => {
    if (!open) return;
    try {
      port.postMessage(event);
    } catch {
      close(); // the UI went away between our check and the send
    }
  };
  const forward = (event: HostEvent) => {
    const tab = tabOf(event, host);
    if (tab === null || tabs.has(tab)) post(event);
    // The state of another tab's job: the UI still needs the rest (engine, GPU, settings), not that job.
    else if (event.type === 'state') post({ type: 'state', state: { ...event.state, job: null } });
  };
  const unsubscribe = host.subscribe(forward);
  const close = () => {
    open = false;
    unsubscribe();
  };
  port.onDisconnect.addListener(close);
  port.onMessage.addListener((raw) => {
    let request: ReturnType<typeof parseRequest>;
    try {
      request = parseRequest(raw);
    } catch (e) {
      post({ type: 'error', requestId: requestIdOf(raw), jobId: null, error: toErrorInfo(e, 'bad-request') });
      return;
    }
    if ('tabId' in request && typeof request.tabId === 'number') tabs.add(request.tabId);
    host.handle(request).then(
      (result) => post({ type: 'reply', requestId: request.id, requestType: request.type, result }),
      (e: unknown) => post({ type: 'error', requestId: request.id, jobId: null, error: toErrorInfo(e) }),
    );
  });
}
