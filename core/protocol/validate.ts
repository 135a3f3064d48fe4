// Incoming messages are untrusted shapes until checked: a bad one becomes a `bad-request` error, never a crash.
// The schemas are valibot's (core/protocol/schema.ts); the message types stay hand-written in messages.ts, with their
// documentation, and the type-level checks at the end of this file fail the build if a schema and its type disagree.

import type * as v from 'valibot';
import type { HostEvent, HostEventType, PageContent, RequestMessage, RequestOf, RequestType } from './messages';
import { ProtocolError } from './messages';
import {
  bool,
  isRecord,
  literal,
  nullable,
  num,
  obj,
  optional,
  parseWith,
  type Same,
  SchemaError,
  str,
} from './schema';
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

const requestBodies = {
  ask: obj({
    tabId,
    question: str({ min: 1, max: 20_000 }),
    document: optional(documentText),
    replaceLast: optional(bool),
  }),
  summarize: obj({ tabId, document: optional(documentText) }),
  continueAnswer: obj({ tabId, jobId: str({ min: 1, max: 200 }) }),
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
} satisfies Record<RequestType, v.GenericSchema>;

export const REQUEST_TYPES = Object.keys(requestBodies) as RequestType[];
const requestEnvelope = obj({
  id: num({ min: 0, integer: true }),
  type: literal(...(REQUEST_TYPES as [RequestType, ...RequestType[]])),
});

function schemaToProtocol(e: unknown): never {
  if (e instanceof SchemaError) throw new ProtocolError('bad-request', `Malformed message: ${e.message}`);
  throw e;
}

/** The request id, if the raw message has a usable one: lets the host answer even a malformed request. */
export function requestIdOf(raw: unknown): number | null {
  return isRecord(raw) && Number.isSafeInteger(raw.id) ? (raw.id as number) : null;
}

/** Checks a UI → host message; throws ProtocolError('bad-request') naming the bad field. Unknown fields are dropped. */
export function parseRequest(raw: unknown): RequestMessage {
  try {
    const { id, type } = parseWith(requestEnvelope, raw, 'message');
    const body = parseWith(requestBodies[type], raw, type);
    return { ...body, type, id } as RequestMessage;
  } catch (e) {
    return schemaToProtocol(e);
  }
}

const errorInfo = obj({ code: str({ min: 1, max: 100 }), message: str({ max: 100_000 }) });
// Host → UI events: the envelope of each (the host is trusted code; this guards against version skew).
const eventEnvelopes = {
  reply: obj({ requestId: num({ integer: true }), requestType: literal(...(REQUEST_TYPES as [string, ...string[]])) }),
  error: obj({ requestId: nullable(num({ integer: true })), jobId: nullable(str()), error: errorInfo }),
  state: obj({ state: obj({ protocolVersion: num({ integer: true }) }) }),
  delta: obj({ jobId: str({ min: 1 }), tabId, text: str() }),
  progress: obj({ jobId: nullable(str()), progress: obj({ stage: str({ min: 1 }) }) }),
  coverage: obj({ jobId: str({ min: 1 }), tabId }),
  done: obj({ jobId: str({ min: 1 }), tabId, status: literal('running', 'done', 'stopped', 'error') }),
} satisfies Record<HostEventType, v.GenericSchema>;
const eventType = literal(...(Object.keys(eventEnvelopes) as [HostEventType, ...HostEventType[]]));

/** Checks a host → UI message's envelope and returns the message as it came. */
export function parseEvent(raw: unknown): HostEvent {
  try {
    const { type } = parseWith(obj({ type: eventType }), raw, 'event');
    parseWith(eventEnvelopes[type], raw, type);
    return raw as HostEvent;
  } catch (e) {
    return schemaToProtocol(e);
  }
}

// Type-level agreement: each request body's schema output is exactly the hand-written request without `type`, and the
// document schema is exactly PageContent. A field added to one side only fails `tsc`.
type BodiesAgree = {
  [T in RequestType]: Same<v.InferOutput<(typeof requestBodies)[T]>, Omit<RequestOf<T>, 'type'>>;
};
type AllTrue<R> = R[keyof R] extends true ? true : false;
const requestSchemasAgree: AllTrue<BodiesAgree> = true;
const documentSchemaAgrees: Same<v.InferOutput<typeof documentText>, PageContent> = true;
void requestSchemasAgree;
void documentSchemaAgrees;
