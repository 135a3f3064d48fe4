// Incoming messages are untrusted shapes until checked: a bad one becomes a `bad-request` error, never a crash.

import type { HostEvent, HostEventType, Request, RequestMessage, RequestType } from './messages';
import { ProtocolError } from './messages';
import { bool, type Check, isRecord, literal, nullable, num, obj, optional, SchemaError, str } from './schema';
import { settingsPatch } from './settings';

const tabId = num({ min: 0, max: 2 ** 31, integer: true });
const modelId = str({ min: 1, max: 2048 });
const threadId = str({ min: 1, max: 200 });
const offset = nullable(num({ min: 0, max: 2 ** 31, integer: true }));
const citation = obj({
  quote: str({ min: 1, max: 20_000 }),
  kind: literal('quote', 'page'),
  start: offset,
  end: offset,
  match: literal('exact', 'tolerant', 'none'),
  page: nullable(num({ min: 1, max: 100_000, integer: true })),
});
// A PDF's text: a few hundred pages of dense text stay far below this.
const documentText = obj({
  title: str({ max: 2000 }),
  url: str({ max: 4096 }),
  text: str({ min: 1, max: 20_000_000 }),
  truncated: optional(nullable(obj({ fraction: num({ min: 0, max: 1 }), reason: str({ max: 500 }) }))),
});

const requestBodies: { [T in RequestType]: Check<Omit<Extract<Request, { type: T }>, 'type'>> } = {
  ask: obj({
    tabId,
    question: str({ min: 1, max: 20_000 }),
    document: optional(documentText),
    replaceLast: optional(bool),
  }),
  summarize: obj({ tabId, document: optional(documentText) }),
  stop: obj({ jobId: str({ min: 1, max: 200 }) }),
  getState: obj({ tabId: optional(tabId) }),
  setSettings: obj({ settings: settingsPatch }),
  loadModel: obj({ modelId }),
  cancelLoad: obj({}),
  deleteModel: obj({ modelId }),
  listModels: obj({}),
  clearSnapshots: obj({}),
  addCustomModel: obj({ baseUrl: str({ min: 1, max: 2048 }) }),
  debugGpuSelfTest: obj({}),
  debugLoseGpu: obj({}),
  newThread: obj({ tabId }),
  listHistory: obj({ tabId: optional(tabId) }),
  openThread: obj({ tabId, threadId }),
  deleteThread: obj({ threadId }),
  clearHistory: obj({}),
  exportThread: obj({ threadId }),
  showCitation: obj({ tabId, pageUrl: str({ max: 4096 }), citation }),
  suggestQuestions: obj({ tabId }),
  preRead: obj({ tabId, userAction: optional(bool) }),
  cancelPreRead: obj({}),
};

export const REQUEST_TYPES = Object.keys(requestBodies) as RequestType[];

function schemaToProtocol(e: unknown): never {
  if (e instanceof SchemaError) throw new ProtocolError('bad-request', `Malformed message: ${e.message}`);
  throw e;
}

/** The request id, if the raw message has a usable one: lets the host answer even a malformed request. */
export function requestIdOf(raw: unknown): number | null {
  return isRecord(raw) && Number.isSafeInteger(raw.id) ? (raw.id as number) : null;
}

/** Checks a UI → host message; throws ProtocolError('bad-request') naming the bad field. */
export function parseRequest(raw: unknown): RequestMessage {
  try {
    if (!isRecord(raw)) throw new SchemaError('message', 'an object', raw);
    const id = num({ min: 0, integer: true })(raw.id, 'message.id');
    const type = literal(...REQUEST_TYPES)(raw.type, 'message.type');
    const body = requestBodies[type](raw, type);
    return { ...body, type, id } as RequestMessage;
  } catch (e) {
    return schemaToProtocol(e);
  }
}

const errorInfo = obj({ code: str({ min: 1, max: 100 }), message: str({ max: 100_000 }) });
const eventChecks: { [T in HostEventType]: Check<unknown> } = {
  reply: obj({ requestId: num({ integer: true }), requestType: literal(...REQUEST_TYPES) }),
  error: obj({ requestId: nullable(num({ integer: true })), jobId: nullable(str()), error: errorInfo }),
  state: (v, p) => {
    const s = obj({ state: (x) => x })(v, p) as { state: unknown };
    obj({ protocolVersion: num({ integer: true }) })(s.state, `${p}.state`);
    return v;
  },
  delta: obj({ jobId: str({ min: 1 }), tabId, text: str() }),
  progress: obj({ jobId: nullable(str()), progress: (x, q) => obj({ stage: str({ min: 1 }) })(x, q) }),
  coverage: obj({ jobId: str({ min: 1 }), tabId }),
  done: obj({ jobId: str({ min: 1 }), tabId, status: literal('running', 'done', 'stopped', 'error') }),
};

/** Checks a host → UI message's envelope (the host is trusted code; this guards against version skew). */
export function parseEvent(raw: unknown): HostEvent {
  try {
    if (!isRecord(raw)) throw new SchemaError('event', 'an object', raw);
    const type = literal(...(Object.keys(eventChecks) as HostEventType[]))(raw.type, 'event.type');
    eventChecks[type](raw, type);
    return raw as unknown as HostEvent;
  } catch (e) {
    return schemaToProtocol(e);
  }
}
