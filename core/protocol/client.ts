// The UI side of the protocol: typed requests with promised replies, and a stream of host events.
import type { ErrorInfo, HostEvent, RequestMessage, RequestOf, RequestType, ResponseMap } from './messages';
import { ProtocolError } from './messages';
import type { PortLike } from './port';
import { parseEvent } from './validate';

type Pending = { resolve: (v: unknown) => void; reject: (e: ProtocolError) => void; type: RequestType };
type Listener = (event: HostEvent) => void;

/** Waits before each reconnect attempt after the port closed; the count of attempts before giving up. */
const RECONNECT_DELAYS_MS = [50, 250, 1000, 2000, 4000];

/** What UI code depends on (the popup's tests substitute their own). */
export interface HostApi {
  request<T extends RequestType>(request: RequestOf<T>): Promise<ResponseMap[T]>;
  onEvent(listener: Listener): () => void;
  /** Called when the connection came back by itself after the host went away (a restarted worker): events missed
   * meanwhile are lost, so the UI asks for the state again. */
  onReconnect?(listener: () => void): () => void;
}

export class HostClient implements HostApi {
  private port: PortLike | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Set<Listener>();
  private readonly reconnectListeners = new Set<() => void>();
  private closed = false;
  /** Reconnects tried since the last message from the host. */
  private reconnects = 0;
  /** Malformed events seen (kept for debugging; they are otherwise ignored). */
  readonly protocolErrors: ErrorInfo[] = [];

  /**
   * `connect` opens a fresh port; it is called lazily, and after a disconnect (a restarted worker) again by itself
   * while anyone listens to events (a worker that keeps failing: 5 tries over about 7 s, then on the next request).
   */
  constructor(
    private readonly connect: () => PortLike,
    private readonly delay: (fn: () => void, ms: number) => void = (fn, ms) => void setTimeout(fn, ms),
  ) {}

  request<T extends RequestType>(request: RequestOf<T>): Promise<ResponseMap[T]> {
    const port = this.ensurePort();
    const id = this.nextId++;
    const message = { ...request, id } as RequestMessage;
    return new Promise<ResponseMap[T]>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, type: request.type });
      try {
        port.postMessage(message);
      } catch (e) {
        this.pending.delete(id);
        this.port = null;
        reject(new ProtocolError('disconnected', `Could not reach the background: ${(e as Error).message}`));
      }
    });
  }

  onEvent(listener: Listener): () => void {
    this.listeners.add(listener);
    this.ensurePort();
    return () => this.listeners.delete(listener);
  }

  onReconnect(listener: () => void): () => void {
    this.reconnectListeners.add(listener);
    return () => this.reconnectListeners.delete(listener);
  }

  close(): void {
    this.closed = true;
    this.port?.disconnect();
    this.dropPort('The UI closed the connection.');
  }

  private ensurePort(): PortLike {
    if (this.port) return this.port;
    const port = this.connect();
    this.port = port;
    port.onMessage.addListener((raw) => {
      if (this.port !== port) return;
      this.reconnects = 0;
      this.receive(raw);
    });
    port.onDisconnect.addListener(() => {
      if (this.port !== port) return;
      this.dropPort('The background restarted or closed the connection.');
      this.reconnectLater();
    });
    return port;
  }

  /** The host went away (MV3 stops its worker at will): connect again, which starts a new one. */
  private reconnectLater(): void {
    if (this.closed || this.listeners.size === 0 || this.reconnects >= RECONNECT_DELAYS_MS.length) return;
    this.delay(() => {
      if (this.closed || this.port) return;
      this.reconnects++;
      try {
        this.ensurePort();
      } catch {
        this.reconnectLater(); // the extension context may be gone for good: a few tries, then none
        return;
      }
      for (const l of this.reconnectListeners) l();
    }, RECONNECT_DELAYS_MS[this.reconnects]);
  }

  private dropPort(reason: string): void {
    this.port = null;
    for (const p of this.pending.values()) p.reject(new ProtocolError('disconnected', `${reason} (request ${p.type})`));
    this.pending.clear();
  }

  private receive(raw: unknown): void {
    let event: HostEvent;
    try {
      event = parseEvent(raw);
    } catch (e) {
      this.protocolErrors.push((e as ProtocolError).toInfo());
      return;
    }
    if (event.type === 'reply') {
      const p = this.pending.get(event.requestId);
      if (p) {
        this.pending.delete(event.requestId);
        p.resolve(event.result);
      }
      return;
    }
    if (event.type === 'error' && event.requestId !== null) {
      const p = this.pending.get(event.requestId);
      if (p) {
        this.pending.delete(event.requestId);
        p.reject(new ProtocolError(event.error.code, event.error.message, event.error.origins));
        return;
      }
    }
    for (const l of this.listeners) l(event);
  }
}
