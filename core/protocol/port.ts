// The slice of `chrome.runtime.Port` the protocol needs; tests pass an in-memory pair.

export interface PortLike {
  name?: string;
  postMessage(message: unknown): void;
  onMessage: { addListener(listener: (message: unknown) => void): void };
  onDisconnect: { addListener(listener: () => void): void };
  disconnect(): void;
}

/** Two connected in-memory ports (messages are structured-cloned, delivered asynchronously, like the real thing). */
export function createPortPair(name = 'test'): [PortLike, PortLike] {
  type End = { messageListeners: ((m: unknown) => void)[]; disconnectListeners: (() => void)[]; closed: boolean };
  const ends: [End, End] = [
    { messageListeners: [], disconnectListeners: [], closed: false },
    { messageListeners: [], disconnectListeners: [], closed: false },
  ];
  const make = (self: End, peer: End): PortLike => ({
    name,
    postMessage(message) {
      if (self.closed) throw new Error('Attempting to use a disconnected port object');
      const copy = structuredClone(message);
      queueMicrotask(() => {
        if (!peer.closed) for (const l of peer.messageListeners) l(copy);
      });
    },
    onMessage: { addListener: (l) => self.messageListeners.push(l) },
    onDisconnect: { addListener: (l) => self.disconnectListeners.push(l) },
    disconnect() {
      if (self.closed) return;
      self.closed = true;
      peer.closed = true;
      // Like Chrome: only the other end hears about it.
      queueMicrotask(() => {
        for (const l of peer.disconnectListeners) l();
      });
    },
  });
  return [make(ends[0], ends[1]), make(ends[1], ends[0])];
}
