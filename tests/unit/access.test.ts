// Asking only for what is used: who may open a UI port, which tab hears a job's events, which PDF URL the background
// may download and how much of it, and how a cut page reaches the coverage.

import { describe, expect, test } from 'vitest';
import type { Engine, GenerateEvent } from '../../core/engine/types';
import type { HostEnv } from '../../core/host/env';
import { EngineHost } from '../../core/host/host';
import { isUiSender, servePort } from '../../core/host/portServer';
import { planJobPrompt } from '../../core/host/prompt';
import { PdfFetchError, pdfSourceFor, pdfTruncation, readBodyCapped } from '../../core/pdf/fetch';
import { pageTruncation } from '../../core/protocol/content';
import type { HostEvent } from '../../core/protocol/messages';
import { createPortPair } from '../../core/protocol/port';
import { openFakeGpu } from './hostFakes';

const ID = 'abcdefghijklmnopabcdefghijklmnop';
const ORIGIN = `chrome-extension://${ID}/`;

describe('UI port senders', () => {
  test('only this extension’s own pages may open a UI port', () => {
    expect(isUiSender({ id: ID, url: `${ORIGIN}popup.html?tab=3` }, ID, ORIGIN)).toBe(true);
    expect(isUiSender({ id: ID, url: `${ORIGIN}sidepanel.html` }, ID, ORIGIN)).toBe(true);
    // A content script of ours runs in the web page: its sender URL is the page's.
    expect(isUiSender({ id: ID, url: 'https://evil.example/' }, ID, ORIGIN)).toBe(false);
    expect(isUiSender({ id: 'other', url: `chrome-extension://other/popup.html` }, ID, ORIGIN)).toBe(false);
    expect(isUiSender({ id: ID }, ID, ORIGIN)).toBe(false);
    expect(isUiSender(undefined, ID, ORIGIN)).toBe(false);
  });
});

/** An engine whose generation waits for `release` between tokens. */
function gatedEngine() {
  let release: (() => void) | null = null;
  const engine: Engine = {
    load: async () => ({
      modelId: 'm',
      architecture: 'llama',
      quantization: 'q4f16_1',
      contextWindow: 4096,
      vocabSize: 10,
      numLayers: 1,
    }),
    async *generate(_input, opts): AsyncIterable<GenerateEvent> {
      for (const text of ['a', 'b']) {
        await new Promise<void>((r) => (release = r));
        if (opts?.signal?.aborted) break;
        yield { type: 'token', tokenId: 1, text };
      }
    },
    countTokens: (t) => Math.ceil(t.length / 4),
    unload: async () => {},
  };
  return { engine, step: () => release?.() };
}

function hostWith(engine: Engine): EngineHost {
  const store = () => {
    const m = new Map<string, unknown>();
    return { get: async (k: string) => m.get(k), set: async (k: string, v: unknown) => void m.set(k, v) };
  };
  const env: HostEnv = {
    openGpu: openFakeGpu,
    createEngine: async () => engine,
    readPage: async (tabId) => ({
      title: `Tab ${tabId}`,
      url: `https://example.org/${tabId}`,
      text: 'Text. '.repeat(20),
    }),
    localStore: store(),
    sessionStore: store(),
    modelFiles: { cachedBaseUrls: async () => new Set(), delete: async () => 0 },
    clearSnapshots: async () => 0,
    fetchText: async () => '',
    keepAlive: () => {},
  };
  return new EngineHost(env);
}

async function until(check: () => boolean) {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 2));
  if (!check()) throw new Error('timed out');
}

describe('event routing', () => {
  test('a job’s events reach only the ports that asked about its tab; other ports get state without the job', async () => {
    const { engine, step } = gatedEngine();
    const host = hostWith(engine);
    const ports = [1, 2].map((tab) => {
      const [ui, end] = createPortPair();
      servePort(host, end);
      const got: HostEvent[] = [];
      ui.onMessage.addListener((m) => got.push(m as HostEvent));
      ui.postMessage({ id: 1, type: 'getState', tabId: tab });
      return { ui, got };
    });
    await until(() => ports.every((p) => p.got.some((e) => e.type === 'reply')));
    ports[0].ui.postMessage({ id: 2, type: 'ask', tabId: 1, question: 'q' });
    await until(() => ports[0].got.some((e) => e.type === 'reply' && e.requestId === 2));
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 20));
      step();
    }
    await until(() => ports[0].got.some((e) => e.type === 'done'));
    const kinds = (got: HostEvent[]) => new Set(got.map((e) => e.type));
    expect(kinds(ports[0].got)).toEqual(new Set(['reply', 'state', 'progress', 'coverage', 'delta', 'done']));
    const other = ports[1].got;
    expect(other.filter((e) => e.type === 'delta' || e.type === 'done' || e.type === 'coverage')).toEqual([]);
    expect(other.filter((e) => e.type === 'progress' && e.tabId === 1)).toEqual([]);
    const states = other.filter((e): e is Extract<HostEvent, { type: 'state' }> => e.type === 'state');
    expect(states.length).toBeGreaterThan(0);
    expect(states.every((e) => e.state.job === null || e.state.job.tabId !== 1)).toBe(true);
  });
});

describe('PDF downloads', () => {
  test('a viewer’s page-supplied ?file= is fetched only after the user’s action; plain PDF tabs always', () => {
    const viewer = 'https://site.example/pdfjs/web/viewer.html?file=http%3A%2F%2Fintranet%2Fsecret.pdf';
    expect(() => pdfSourceFor(viewer, { userAction: false })).toThrow(PdfFetchError);
    expect(pdfSourceFor(viewer, { userAction: true })).toBe('http://intranet/secret.pdf');
    // Relative to the viewer page.
    expect(pdfSourceFor('https://site.example/web/viewer.html?file=../docs/a.pdf', { userAction: true })).toBe(
      'https://site.example/docs/a.pdf',
    );
    expect(pdfSourceFor('https://site.example/a.pdf', { userAction: false })).toBe('https://site.example/a.pdf');
  });

  test('the body is refused above the cap, by Content-Length and while streaming', async () => {
    const big = new Response(new Uint8Array(2000), { headers: { 'content-length': '2000' } });
    await expect(readBodyCapped(big, 1000)).rejects.toMatchObject({ code: 'too-large' });
    // No Content-Length (chunked): counted while reading.
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        c.enqueue(new Uint8Array(300));
      },
    });
    await expect(readBodyCapped(new Response(stream), 1000)).rejects.toMatchObject({ code: 'too-large' });
    const small = await readBodyCapped(new Response(new Uint8Array([1, 2, 3])), 1000);
    expect(Array.from(small)).toEqual([1, 2, 3]);
    const stopped = new AbortController();
    stopped.abort();
    await expect(readBodyCapped(new Response(new Uint8Array(10)), 1000, stopped.signal)).rejects.toMatchObject({
      code: 'aborted',
    });
  });
});

describe('truncation reaches the coverage', () => {
  test('a page the content script cut, and a PDF cut at its page cap, never read as the whole page', () => {
    const cut = pageTruncation(0.25);
    expect(cut?.fraction).toBeCloseTo(0.75, 10);
    expect(pageTruncation(null)).toBeNull();
    expect(pageTruncation(1)).toBeNull();
    const page = { title: 'T', url: 'u', text: 'word '.repeat(200), truncated: cut };
    const p = planJobPrompt('ask', page, 'q', 8192, 256, (t) => Math.ceil(t.length / 4));
    expect(p.coverage.truncated).toEqual(cut);
    expect(p.coverage.fraction).toBeCloseTo(0.25, 10);
    const pdf = pdfTruncation({ reason: 'max-pages', pagesRead: 2000, pageCount: 2500 });
    expect(pdf?.fraction).toBeCloseTo(0.2, 10);
    expect(pdf?.reason).toMatch(/first 2000 pages of 2500/);
    expect(pdfTruncation(null)).toBeNull();
  });
});
