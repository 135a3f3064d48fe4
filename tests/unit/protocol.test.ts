import * as v from 'valibot';
import { describe, expect, test } from 'vitest';
import { HostClient } from '../../core/protocol/client';
import { parseExtractReply } from '../../core/protocol/content';
import { ProtocolError } from '../../core/protocol/messages';
import { createPortPair, type PortLike } from '../../core/protocol/port';
import { DEFAULT_SETTINGS, settingsFromStorage, settingsPatch } from '../../core/protocol/settings';
import { parseEvent, parseRequest, REQUEST_TYPES, requestIdOf } from '../../core/protocol/validate';

function badRequest(raw: unknown): ProtocolError {
  try {
    parseRequest(raw);
  } catch (e) {
    expect(e).toBeInstanceOf(ProtocolError);
    expect((e as ProtocolError).code).toBe('bad-request');
    return e as ProtocolError;
  }
  throw new Error(`accepted ${JSON.stringify(raw)}`);
}

describe('parseRequest', () => {
  test('accepts every request type in its documented shape', () => {
    const samples = [
      { type: 'ask', tabId: 3, question: 'Who?' },
      { type: 'summarize', tabId: 0 },
      { type: 'stop', jobId: 'job-1' },
      { type: 'continueAnswer', tabId: 3, jobId: 'job-1' },
      { type: 'getState' },
      { type: 'getState', tabId: 12 },
      { type: 'setSettings', settings: { fastMode: false, fastK: { count: 2048 }, contextWindow: 4096 } },
      { type: 'loadModel', modelId: 'Llama-3.2-1B-Instruct-q4f16_1-MLC' },
      { type: 'deleteModel', modelId: 'x' },
      { type: 'cancelLoad' },
      { type: 'listModels' },
      { type: 'clearSnapshots' },
      { type: 'addCustomModel', baseUrl: 'http://127.0.0.1:8080/m/' },
      { type: 'debugGpuSelfTest' },
      { type: 'debugLoseGpu' },
      { type: 'ask', tabId: 3, question: 'Again?', replaceLast: true },
      { type: 'newThread', tabId: 3 },
      { type: 'listHistory' },
      { type: 'listHistory', tabId: 3 },
      { type: 'openThread', tabId: 3, threadId: 'thread-1' },
      { type: 'deleteThread', threadId: 'thread-1' },
      { type: 'clearHistory' },
      { type: 'exportThread', threadId: 'thread-1' },
      {
        type: 'showCitation',
        tabId: 3,
        pageUrl: 'https://x.org/',
        citation: { quote: 'the lamp', kind: 'quote', start: 4, end: 12, match: 'exact', page: null },
      },
      { type: 'suggestQuestions', tabId: 3 },
      { type: 'preRead', tabId: 3 },
      { type: 'preRead', tabId: 3, userAction: true },
      { type: 'cancelPreRead' },
    ];
    expect(new Set(samples.map((s) => s.type))).toEqual(new Set(REQUEST_TYPES));
    samples.forEach((s, i) => {
      expect(parseRequest({ ...s, id: i })).toEqual({ ...s, id: i });
    });
  });

  test('drops unknown fields instead of forwarding them', () => {
    expect(parseRequest({ id: 1, type: 'stop', jobId: 'j', extra: { evil: true } })).toEqual({
      id: 1,
      type: 'stop',
      jobId: 'j',
    });
    expect(() => parseRequest({ id: 1, type: 'stop' })).toThrow(/stop\.jobId/);
    expect(parseRequest({ id: 2, type: 'setSettings', settings: { fastMode: true, bogus: 1 } })).toEqual({
      id: 2,
      type: 'setSettings',
      settings: { fastMode: true },
    });
  });

  test('malformed messages become bad-request errors that name the field', () => {
    expect(badRequest(null).message).toMatch(/message: expected an object, got null/);
    expect(badRequest('ask').message).toMatch(/expected an object/);
    expect(badRequest({ type: 'stop' }).message).toMatch(/message\.id/);
    expect(badRequest({ id: 1, type: 'launchMissiles' }).message).toMatch(/message\.type: expected one of ask/);
    expect(badRequest({ id: 1, type: 'ask', tabId: '3', question: 'q' }).message).toMatch(
      /ask\.tabId: expected an integer/,
    );
    expect(badRequest({ id: 1, type: 'ask', tabId: -1, question: 'q' }).message).toMatch(/ask\.tabId/);
    expect(badRequest({ id: 1, type: 'ask', tabId: 1.5, question: 'q' }).message).toMatch(/ask\.tabId/);
    expect(badRequest({ id: 1, type: 'ask', tabId: 1, question: '' }).message).toMatch(/ask\.question/);
    expect(badRequest({ id: 1, type: 'ask', tabId: 1 }).message).toMatch(/ask\.question.*undefined/);
    expect(badRequest({ id: 1, type: 'setSettings', settings: { contextWindow: 10 } }).message).toMatch(
      /setSettings\.settings\.contextWindow: expected an integer >= 512/,
    );
    expect(badRequest({ id: 1, type: 'setSettings', settings: { fastK: { fraction: 2 } } }).message).toMatch(
      /fastK\.fraction/,
    );
    expect(badRequest({ id: 1, type: 'setSettings', settings: { fastMode: 'yes' } }).message).toMatch(
      /fastMode: expected a boolean/,
    );
    expect(badRequest({ id: 1, type: 'getState', tabId: Number.NaN }).message).toMatch(/getState\.tabId/);
  });

  test('valibot schemas: nested paths, missing keys and arrays are named precisely', () => {
    // A missing required key says what the key expects (valibot reports it on the object).
    expect(badRequest({ id: 1, type: 'stop' }).message).toBe(
      'Malformed message: stop.jobId: expected a string of 1..200 characters, got undefined',
    );
    // valibot's object() accepts arrays; ours refuses them.
    expect(badRequest([]).message).toMatch(/message: expected an object, got an array/);
    expect(badRequest({ id: 1, type: 'setSettings', settings: [] }).message).toMatch(
      /setSettings\.settings: expected an object, got an array/,
    );
    expect(
      badRequest({
        id: 1,
        type: 'setSettings',
        settings: { customModels: [{ modelId: 'custom:x', baseUrl: 'https://x.org/m/', label: 'x' }, { modelId: 3 }] },
      }).message,
    ).toMatch(/setSettings\.settings\.customModels\[1\]\.modelId: expected a string of 1\.\.2048 characters, got 3/);
    expect(
      badRequest({ id: 1, type: 'setSettings', settings: { customModels: new Array(101).fill({}) } }).message,
    ).toMatch(/customModels: expected an array of at most 100, got an array/);
    expect(
      badRequest({
        id: 1,
        type: 'showCitation',
        tabId: 1,
        pageUrl: 'https://x.org/',
        citation: { quote: 'q', kind: 'quote', start: 0, end: 1, match: 'maybe', page: null },
      }).message,
    ).toMatch(/showCitation\.citation\.match: expected one of exact, tolerant, none, got "maybe"/);
    expect(badRequest({ id: 1, type: 'setSettings', settings: { fastK: {} } }).message).toMatch(
      /fastK: expected \{count\} or \{fraction\}/,
    );
    expect(
      badRequest({ id: 1, type: 'ask', tabId: 1, question: 'q', document: { title: 't', url: 'u', text: '' } }).message,
    ).toMatch(/ask\.document\.text: expected a string of 1\.\.20000000 characters, got ""/);
    expect(badRequest({ id: Number.POSITIVE_INFINITY, type: 'stop', jobId: 'j' }).message).toMatch(/message\.id/);
  });

  test('the settings schema is a valibot schema, and stored settings fall back per field', () => {
    expect(v.safeParse(settingsPatch, { fastStride: 4 }).success).toBe(true);
    expect(v.safeParse(settingsPatch, { fastStride: 0 }).success).toBe(false);
    expect(settingsFromStorage({ fastStride: 'x', fastQc: 3, theme: 'dark', fastK: { fraction: 7 } })).toEqual({
      ...DEFAULT_SETTINGS,
      fastQc: 3,
      theme: 'dark',
    });
    expect(settingsFromStorage(null)).toEqual(DEFAULT_SETTINGS);
  });

  test('requestIdOf lets the host answer a malformed request by id', () => {
    expect(requestIdOf({ id: 9, type: 'nope' })).toBe(9);
    expect(requestIdOf({ id: 'nine' })).toBeNull();
    expect(requestIdOf(42)).toBeNull();
  });
});

describe('parseExtractReply', () => {
  test('keeps the page strings, drops extra keys, reads odd kinds and fractions safely', () => {
    const page = { title: 'T', url: 'https://x.org/', text: 'body', script: '<x>' };
    expect(parseExtractReply({ ok: true, page, kind: 'article', truncatedFraction: 0.5 })).toEqual({
      ok: true,
      page: { title: 'T', url: 'https://x.org/', text: 'body' },
      kind: 'article',
      truncatedFraction: 0.5,
    });
    expect(parseExtractReply({ ok: true, page, kind: 'weird', truncatedFraction: Number.NaN })).toMatchObject({
      kind: 'fallback',
      truncatedFraction: null,
    });
    expect(parseExtractReply({ ok: false, code: 7, message: 'no' })).toEqual({ ok: false, code: '7', message: 'no' });
    expect(parseExtractReply({ ok: true, page: { title: 'T', url: 'u', text: 5 } })).toBeNull();
    expect(parseExtractReply({ ok: 'yes' })).toBeNull();
    expect(parseExtractReply([])).toBeNull();
  });
});

describe('parseEvent', () => {
  test('accepts host events and rejects malformed ones', () => {
    expect(parseEvent({ type: 'delta', jobId: 'j', tabId: 1, text: 'hi' }).type).toBe('delta');
    expect(parseEvent({ type: 'reply', requestId: 1, requestType: 'stop', result: { stopped: true } }).type).toBe(
      'reply',
    );
    expect(() => parseEvent({ type: 'delta', jobId: 'j', tabId: 1 })).toThrow(/delta\.text/);
    expect(() => parseEvent({ type: 'state', state: {} })).toThrow(/protocolVersion/);
    expect(() => parseEvent({ type: 'mystery' })).toThrow(ProtocolError);
  });
});

/** A host stand-in: answers getState, fails `stop`, sends one stray event, ignores `ask` (never answers). */
function fakeHost(port: PortLike) {
  port.onMessage.addListener((raw) => {
    const m = raw as { id: number; type: string };
    if (m.type === 'getState')
      port.postMessage({
        type: 'reply',
        requestId: m.id,
        requestType: 'getState',
        result: { protocolVersion: 1, echo: m.id },
      });
    if (m.type === 'stop')
      port.postMessage({ type: 'error', requestId: m.id, jobId: null, error: { code: 'busy', message: 'nope' } });
    if (m.type === 'listModels') {
      port.postMessage({ type: 'delta', jobId: 'j1', tabId: 4, text: 'tok' });
      port.postMessage({ type: 'garbage' });
      port.postMessage({ type: 'reply', requestId: m.id, requestType: 'listModels', result: { models: [] } });
    }
  });
}

describe('HostClient', () => {
  test('correlates replies and errors with requests, and forwards events', async () => {
    const connections: PortLike[] = [];
    const client = new HostClient(() => {
      const [ui, host] = createPortPair();
      fakeHost(host);
      connections.push(host);
      return ui;
    });
    const events: unknown[] = [];
    client.onEvent((e) => events.push(e));
    const [a, b] = await Promise.all([
      client.request({ type: 'getState' }),
      client.request({ type: 'getState', tabId: 2 }),
    ]);
    expect((a as unknown as { echo: number }).echo).not.toBe((b as unknown as { echo: number }).echo);
    await expect(client.request({ type: 'stop', jobId: 'j1' })).rejects.toMatchObject({
      code: 'busy',
      message: 'nope',
    });
    await client.request({ type: 'listModels' });
    expect(events).toEqual([{ type: 'delta', jobId: 'j1', tabId: 4, text: 'tok' }]);
    expect(client.protocolErrors).toHaveLength(1);
    expect(connections).toHaveLength(1);
  });

  test('a disconnect rejects pending requests with `disconnected`, and the next request reconnects', async () => {
    const hosts: PortLike[] = [];
    const client = new HostClient(() => {
      const [ui, host] = createPortPair();
      fakeHost(host);
      hosts.push(host);
      return ui;
    });
    const pending = client.request({ type: 'ask', tabId: 1, question: 'q' });
    await Promise.resolve();
    hosts[0].disconnect(); // the worker went away
    await expect(pending).rejects.toMatchObject({ code: 'disconnected' });
    const state = await client.request({ type: 'getState' });
    expect(state.protocolVersion).toBe(1);
    expect(hosts).toHaveLength(2);
  });
});
