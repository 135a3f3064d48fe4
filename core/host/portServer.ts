// The host side of one UI port: checks each request, answers it with one reply or error, forwards host events.
import type { HostEvent } from '../protocol/messages';
import { toErrorInfo } from '../protocol/messages';
import type { PortLike } from '../protocol/port';
import { parseRequest, requestIdOf } from '../protocol/validate';
import type { EngineHost } from './host';

export function servePort(host: EngineHost, port: PortLike): void {
  let open = true;
  const send = (event: HostEvent) => {
    if (!open) return;
    try {
      port.postMessage(event);
    } catch {
      close(); // the UI went away between our check and the send
    }
  };
  const unsubscribe = host.subscribe(send);
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
      send({ type: 'error', requestId: requestIdOf(raw), jobId: null, error: toErrorInfo(e, 'bad-request') });
      return;
    }
    host.handle(request).then(
      (result) => send({ type: 'reply', requestId: request.id, requestType: request.type, result }),
      (e: unknown) => send({ type: 'error', requestId: request.id, jobId: null, error: toErrorInfo(e) }),
    );
  });
}
