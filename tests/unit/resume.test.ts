// A worker restart mid-answer (issue #12 item 5): the partial answer is saved as it streams at a bounded rate, a
// restarted host shows it as interrupted, and Continue resumes from the stored prompt + the answer so far. The engine
// side (the answer as the reply's start) is checked on the plain-TS reference backend, where greedy decoding is exact.

import { rmSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import type { LocalEngine } from '../../core/engine/engine';
import type {
  Engine,
  GenerateEvent,
  GenerateInput,
  GenerateOptions,
  LoadOptions,
  ModelInfo,
} from '../../core/engine/types';
import type { HostEnv } from '../../core/host/env';
import { EngineHost } from '../../core/host/host';
import { servePort } from '../../core/host/portServer';
import {
  continuationInput,
  PARTIAL_SAVE_INTERVAL_MS,
  RUNNING_JOB_KEY,
  RUNNING_PROMPT_KEY,
  ThrottledSaver,
} from '../../core/host/resume';
import { createNodeEngine } from '../../core/node/nodeEngine';
import { HostClient } from '../../core/protocol/client';
import type { HostEvent, PageContent } from '../../core/protocol/messages';
import { createPortPair, type PortLike } from '../../core/protocol/port';
import { parseRequest } from '../../core/protocol/validate';
import { writeFixtureModelDir } from '../../core/testing/fixtureModelDir';
import { FAKE_GPU, memoryStore } from './hostFakes';

describe('ThrottledSaver: the partial answer is written at a bounded rate', () => {
  afterEach(() => vi.useRealTimers());

  test('tokens every 10 ms for 3 s: writes start >= 500 ms apart, none is more than 500 ms stale, flush writes the rest', async () => {
    vi.useFakeTimers({ now: 0 });
    const writes: { at: number; tokens: number }[] = [];
    let tokens = 0;
    let inFlight = 0;
    let overlapped = false;
    const saver = new ThrottledSaver(
      () => tokens,
      async (n) => {
        if (inFlight++ > 0) overlapped = true;
        writes.push({ at: Date.now(), tokens: n });
        await new Promise((r) => setTimeout(r, 30)); // a storage write takes time
        inFlight--;
      },
      PARTIAL_SAVE_INTERVAL_MS,
    );
    const arrivals: number[] = [];
    for (let i = 0; i < 300; i++) {
      await vi.advanceTimersByTimeAsync(10);
      tokens++;
      arrivals.push(Date.now());
      saver.changed();
    }
    await vi.advanceTimersByTimeAsync(1);
    // 3 s of tokens: the first write at once, then at most one per 500 ms.
    expect(writes.length).toBeGreaterThanOrEqual(6);
    expect(writes.length).toBeLessThanOrEqual(3000 / PARTIAL_SAVE_INTERVAL_MS + 1);
    for (let i = 1; i < writes.length; i++)
      expect(writes[i].at - writes[i - 1].at).toBeGreaterThanOrEqual(PARTIAL_SAVE_INTERVAL_MS);
    expect(overlapped).toBe(false);
    // Every token that arrived more than 500 ms before the end is in a write started at most 500 ms after it.
    for (let i = 0; i < arrivals.length; i++) {
      if (arrivals[i] + PARTIAL_SAVE_INTERVAL_MS > Date.now()) break;
      const holding = writes.find((w) => w.tokens >= i + 1);
      expect(holding, `token ${i + 1}`).toBeDefined();
      expect(holding!.at - arrivals[i]).toBeLessThanOrEqual(PARTIAL_SAVE_INTERVAL_MS);
    }
    const before = writes.length;
    const flushed = saver.flush();
    await vi.advanceTimersByTimeAsync(100); // the write in flight, then the flush's own
    await flushed;
    expect(writes.length).toBe(before + 1);
    expect(writes.at(-1)?.tokens).toBe(300);
    const closed = saver.close();
    await vi.advanceTimersByTimeAsync(100);
    await closed;
    saver.changed();
    await vi.advanceTimersByTimeAsync(2 * PARTIAL_SAVE_INTERVAL_MS);
    expect(writes.length).toBe(before + 1); // closed: nothing more
  });
});

describe('the resume prompt (reference backend)', () => {
  let dir: string;
  let engine: LocalEngine;
  const input = {
    system: 'You answer about the document.',
    document: '<document>\nthe keeper trims the wick and the lamp burns all night\n</document>',
    messages: [{ role: 'user' as const, content: 'what does the keeper trim' }],
  };

  beforeAll(async () => {
    dir = writeFixtureModelDir({ template: 'chatml', seed: 7, contextWindow: 512 }).dir;
    engine = await createNodeEngine({ backend: 'reference' });
    await engine.load({ kind: 'dir', path: dir });
  }, 60_000);
  afterAll(async () => {
    await engine?.unload();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function generate(i: GenerateInput, maxTokens: number) {
    const ids: number[] = [];
    let text = '';
    for await (const ev of engine.generate(i, { maxTokens, temperature: 0, stopTokenIds: [] }))
      if (ev.type === 'token') {
        ids.push(ev.tokenId);
        text += ev.text;
      }
    return { ids, text };
  }

  test('the prompt is the question prompt followed by the answer so far; the continuation is the rest of the answer', async () => {
    const full = await generate(input, 24);
    expect(full.ids.length).toBe(24);
    const cut = 9;
    // The text streamed with the first `cut` ids, as the worker had persisted it.
    let partial = '';
    const first = await generate(input, cut);
    expect(first.ids).toEqual(full.ids.slice(0, cut));
    partial = first.text;
    const resumed = continuationInput(input, partial, first.ids);
    const base = engine.encodeInput(input);
    const withPrefix = engine.encodeInput(resumed);
    expect(withPrefix.ids).toEqual([...base.ids, ...first.ids]);
    expect(withPrefix.prefixLength).toBe(base.prefixLength); // the document prefix (and its snapshot) is unchanged
    // Another generation in between, so the cache does not simply hold the answer (as after a restart).
    await generate({ ...input, messages: [{ role: 'user', content: 'the lamp' }] }, 3);
    const rest = await generate(resumed, 24 - cut);
    expect(rest.ids).toEqual(full.ids.slice(cut));
    expect(partial + rest.text).toBe(full.text);
    // Without ids the answer's text is encoded as data.
    expect(engine.encodeInput(continuationInput(input, 'the wick', [])).ids).toEqual([
      ...base.ids,
      ...engine.encodeText('the wick'),
    ]);
  }, 120_000);
});

/** An Engine that streams scripted tokens (ids 100, 101, …); `gate` holds it between tokens. */
class ScriptedEngine implements Engine {
  generations: { input: GenerateInput; opts?: GenerateOptions }[] = [];
  tokens = Array.from({ length: 12 }, (_, i) => ` w${i}`);
  gate: ((i: number, opts?: GenerateOptions) => Promise<void>) | null = null;

  async load(_s: unknown, _o?: LoadOptions): Promise<ModelInfo> {
    return {
      modelId: 'm',
      architecture: 'llama',
      quantization: 'q4f16_1',
      contextWindow: 4096,
      vocabSize: 200,
      numLayers: 2,
    };
  }

  async *generate(input: GenerateInput, opts?: GenerateOptions): AsyncIterable<GenerateEvent> {
    this.generations.push({ input, opts });
    const start = 'messages' in input ? (input.answerPrefix?.tokenIds?.length ?? 0) : 0;
    let n = 0;
    for (let i = start; i < this.tokens.length && n < (opts?.maxTokens ?? 1e9); i++) {
      if (this.gate) await this.gate(i, opts);
      if (opts?.signal?.aborted) break;
      n++;
      yield { type: 'token', tokenId: 100 + i, text: this.tokens[i] };
    }
    yield {
      type: 'done',
      stats: {
        promptTokens: 50,
        prefillTokens: 50,
        restoredTokens: 0,
        generatedTokens: n,
        prefillMs: 1,
        prefillTokensPerSec: 1,
        decodeMs: 1,
        decodeTokensPerSec: 1,
        msPerStep: 1,
        stopReason: 'stop-token',
      },
    };
  }

  countTokens(text: string): number {
    return Math.ceil(text.length / 4);
  }

  async unload(): Promise<void> {}
}

const PAGE: PageContent = { title: 'Gull Rock', url: 'https://example.org/a', text: 'The keeper trims the wick. ' };

function hostOn(
  session: ReturnType<typeof memoryStore>,
  engine: ScriptedEngine,
  readPage?: () => Promise<PageContent>,
) {
  const env: HostEnv = {
    openGpu: async () => FAKE_GPU,
    createEngine: async () => engine,
    readPage: readPage ?? (async () => PAGE),
    localStore: memoryStore(),
    sessionStore: session,
    modelFiles: { cachedBaseUrls: async () => new Set(), delete: async () => 0 },
    clearSnapshots: async () => 0,
    fetchText: async () => '',
    keepAlive: () => {},
  };
  const host = new EngineHost(env);
  const events: HostEvent[] = [];
  host.subscribe((e) => events.push(e));
  return { host, events };
}

async function until(cond: () => boolean, what: string) {
  for (let i = 0; i < 500; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('worker restart mid-answer in the host', () => {
  test('the partial answer survives the restart as interrupted; Continue resumes from the stored prompt + answer', async () => {
    const session = memoryStore();
    const before = new ScriptedEngine();
    // The first worker writes 5 tokens, then never gets further (the worker is stopped under it).
    let stalled = false;
    before.gate = async (i) => {
      if (i < 5) return;
      stalled = true;
      await new Promise(() => {});
    };
    const first = hostOn(session, before);
    const { jobId } = await first.host.handle({ type: 'ask', tabId: 3, question: 'What does the keeper trim?' });
    await until(() => stalled || first.host.state(3).job?.status !== 'running', 'the fifth token');
    expect(first.host.state(3).job).toMatchObject({ status: 'running', error: null });
    // The saver writes at most every 500 ms: wait until the answer so far is stored.
    await until(
      () => (session.data.get(RUNNING_JOB_KEY) as { answerIds?: number[] })?.answerIds?.length === 5,
      'the partial answer in the session store',
    );
    await new Promise((r) => setTimeout(r, PARTIAL_SAVE_INTERVAL_MS + 50));
    const jobWrites = session.sets.filter((s) => s.key === RUNNING_JOB_KEY);
    // 5 tokens within a few ms: the job at its start, then at most one write per 500 ms.
    expect(jobWrites.length).toBeLessThanOrEqual(3);
    const stored = session.data.get(RUNNING_PROMPT_KEY) as { generation: { input: unknown; maxTokens: number } };
    expect(stored.generation.maxTokens).toBeGreaterThan(0);

    // The restarted worker: a new host on the same session store.
    const after = new ScriptedEngine();
    const second = hostOn(session, after, async () => {
      throw new Error('Continue must not read the page again');
    });
    const state = await second.host.handle({ type: 'getState', tabId: 3 });
    expect(state.runningJobId).toBeNull();
    expect(state.job).toMatchObject({ jobId, status: 'interrupted', answer: ' w0 w1 w2 w3 w4', progress: null });
    await expect(second.host.handle({ type: 'continueAnswer', tabId: 4, jobId })).rejects.toMatchObject({
      code: 'bad-request',
    });

    const resumed = await second.host.handle({ type: 'continueAnswer', tabId: 3, jobId });
    expect(resumed.jobId).toBe(jobId);
    await until(() => second.events.some((e) => e.type === 'done' && e.jobId === jobId), 'the continued answer');
    const gen = after.generations[0];
    // The stored prompt, then the answer so far (text and the ids as generated) as the start of the reply.
    expect(gen.input).toEqual({
      ...(stored.generation.input as object),
      answerPrefix: { text: ' w0 w1 w2 w3 w4', tokenIds: [100, 101, 102, 103, 104] },
    });
    expect(gen.opts?.maxTokens).toBe(stored.generation.maxTokens - 5);
    const done = second.host.state(3);
    expect(done.job).toMatchObject({ jobId, status: 'done' });
    expect(done.job?.answer).toBe(before.tokens.join(''));
    // The finished answer is one turn of the tab's thread; nothing is left for a next restart to resume.
    expect(done.thread?.turns.map((t) => t.answer)).toEqual([before.tokens.join('')]);
    await until(() => session.data.get(RUNNING_JOB_KEY) === null, 'the running records cleared');
    expect(session.data.get(RUNNING_PROMPT_KEY)).toBeNull();
    await expect(second.host.handle({ type: 'continueAnswer', tabId: 3, jobId })).rejects.toMatchObject({
      code: 'bad-request',
    });
    const third = hostOn(session, new ScriptedEngine());
    expect((await third.host.handle({ type: 'getState', tabId: 3 })).job).toMatchObject({ jobId, status: 'done' });
  });

  test('a second restart during the continued answer: Continue goes on from everything written so far', async () => {
    const session = memoryStore();
    const stallAt = (n: number) => {
      const e = new ScriptedEngine();
      e.gate = async (i) => {
        if (i >= n) await new Promise(() => {});
      };
      return e;
    };
    const savedIds = () => (session.data.get(RUNNING_JOB_KEY) as { answerIds?: number[] })?.answerIds?.length;
    const first = hostOn(session, stallAt(3));
    const { jobId } = await first.host.handle({ type: 'ask', tabId: 3, question: 'What does the keeper trim?' });
    await until(() => savedIds() === 3, 'three ids saved');
    const maxTokens = (session.data.get(RUNNING_PROMPT_KEY) as { generation: { maxTokens: number } }).generation
      .maxTokens;
    // Restart 1, Continue, and the continued answer stops at 7 tokens (3 before, 4 after).
    const secondEngine = stallAt(7);
    const second = hostOn(session, secondEngine);
    await second.host.handle({ type: 'continueAnswer', tabId: 3, jobId });
    await until(() => savedIds() === 7, 'seven ids saved');
    // Restart 2: the job is interrupted again with all 7 tokens; Continue starts after them.
    const engine = new ScriptedEngine();
    const third = hostOn(session, engine);
    expect((await third.host.handle({ type: 'getState', tabId: 3 })).job).toMatchObject({
      status: 'interrupted',
      answer: ' w0 w1 w2 w3 w4 w5 w6',
    });
    await third.host.handle({ type: 'continueAnswer', tabId: 3, jobId });
    await until(() => third.events.some((e) => e.type === 'done' && e.jobId === jobId), 'the answer');
    const input = engine.generations[0].input as { answerPrefix?: { tokenIds?: number[] } };
    expect(input.answerPrefix?.tokenIds).toEqual([100, 101, 102, 103, 104, 105, 106]);
    expect(engine.generations[0].opts?.maxTokens).toBe(maxTokens - 7);
    expect(third.host.state(3).job?.answer).toBe(engine.tokens.join(''));
    expect(secondEngine.generations[0].opts?.maxTokens).toBe(maxTokens - 3);
  });

  test('a long page summarized in parts, interrupted in the final summary: Continue writes only the rest of it', async () => {
    const session = memoryStore();
    const paragraphs = Array.from({ length: 300 }, (_, i) => `Paragraph ${i} tells of gulls, rocks and weather.`);
    const long: PageContent = { title: 'Long', url: 'https://example.org/long', text: paragraphs.join('\n\n') };
    const before = new ScriptedEngine();
    // Part summaries get a short budget; the final summary gets the answer's 128 tokens: it stops after 4.
    before.gate = async (i, opts) => {
      if (opts?.maxTokens === 128 && i >= 4) await new Promise(() => {});
    };
    const first = hostOn(session, before, async () => long);
    await first.host.handle({ type: 'setSettings', settings: { contextWindow: 1024, maxAnswerTokens: 128 } });
    const { jobId } = await first.host.handle({ type: 'summarize', tabId: 2 });
    await until(
      () => (session.data.get(RUNNING_JOB_KEY) as { answerIds?: number[] })?.answerIds?.length === 4,
      'four ids of the final summary',
    );
    const parts = before.generations.length - 1;
    expect(parts).toBeGreaterThan(2);
    const stored = session.data.get(RUNNING_PROMPT_KEY) as { generation: { input: GenerateInput; maxTokens: number } };
    // The stored prompt is the final step's (the part summaries are in it), not the page.
    expect(stored.generation.input).toEqual(before.generations[parts].input);
    expect(stored.generation.maxTokens).toBe(128);
    const after = new ScriptedEngine();
    const second = hostOn(session, after, async () => long);
    const state = await second.host.handle({ type: 'getState', tabId: 2 });
    expect(state.job).toMatchObject({ status: 'interrupted', kind: 'summarize', answer: ' w0 w1 w2 w3' });
    await second.host.handle({ type: 'continueAnswer', tabId: 2, jobId });
    await until(() => second.events.some((e) => e.type === 'done' && e.jobId === jobId), 'the summary');
    // One generation: the parts are not summarized again.
    expect(after.generations).toHaveLength(1);
    expect(after.generations[0].opts?.maxTokens).toBe(124);
    expect(second.host.state(2).job?.answer).toBe(after.tokens.join(''));
  });

  test('interrupted before any token: Continue asks the question again', async () => {
    const session = memoryStore();
    let reads = 0;
    const first = hostOn(session, new ScriptedEngine(), () => new Promise(() => reads++));
    const { jobId } = await first.host.handle({ type: 'ask', tabId: 1, question: 'q?' });
    await until(() => reads === 1 && session.data.has(RUNNING_JOB_KEY), 'the job record');
    await new Promise((r) => setTimeout(r, 2)); // job ids are unique per millisecond and worker
    const engine = new ScriptedEngine();
    const second = hostOn(session, engine);
    expect((await second.host.handle({ type: 'getState', tabId: 1 })).job?.status).toBe('interrupted');
    const again = await second.host.handle({ type: 'continueAnswer', tabId: 1, jobId });
    expect(again.jobId).not.toBe(jobId);
    await until(() => second.events.some((e) => e.type === 'done' && e.jobId === again.jobId), 'the new answer');
    expect(engine.generations[0].input).not.toHaveProperty('answerPrefix');
    expect(second.host.state(1).job?.answer).toBe(engine.tokens.join(''));
  });

  test('the continueAnswer request is validated', () => {
    expect(parseRequest({ id: 1, type: 'continueAnswer', tabId: 2, jobId: 'job-1' })).toMatchObject({
      type: 'continueAnswer',
    });
    expect(() => parseRequest({ id: 1, type: 'continueAnswer', tabId: 2 })).toThrow(/jobId/);
  });
});

describe('the UI reconnects by itself', () => {
  test('when the port closes (the worker stopped) the client connects again and tells the UI; requests work', async () => {
    const hostEnds: PortLike[] = [];
    const { host } = hostOn(memoryStore(), new ScriptedEngine());
    const client = new HostClient(
      () => {
        const [ui, end] = createPortPair();
        hostEnds.push(end);
        servePort(host, end);
        return ui;
      },
      (fn) => void setTimeout(fn, 1),
    );
    let reconnected = 0;
    client.onEvent(() => {});
    client.onReconnect(() => reconnected++);
    expect((await client.request({ type: 'getState', tabId: 3 })).tabId).toBe(3);
    expect(hostEnds).toHaveLength(1);
    hostEnds[0].disconnect(); // the worker went away
    await until(() => reconnected === 1, 'the reconnect');
    expect(hostEnds).toHaveLength(2);
    expect((await client.request({ type: 'getState', tabId: 3 })).tabId).toBe(3);
    client.close();
  });

  test('a connect that keeps failing is tried 5 times, then not until the next request', async () => {
    let tries = 0;
    let first = true;
    const client = new HostClient(
      () => {
        tries++;
        if (!first) throw new Error('Extension context invalidated.');
        first = false;
        const [ui, end] = createPortPair();
        queueMicrotask(() => end.disconnect());
        return ui;
      },
      (fn) => void setTimeout(fn, 1),
    );
    client.onEvent(() => {});
    await new Promise((r) => setTimeout(r, 50));
    expect(tries).toBe(1 + 5);
  });
});
