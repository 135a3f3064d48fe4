import { parseHTML } from 'linkedom';
import { render } from 'preact';
import { act } from 'preact/test-utils';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { App } from '../../components/App';
import { Markdown, parseBlocks } from '../../components/markdown';
import { statsLine } from '../../components/Thread';
import {
  applyEvent,
  coverageLine,
  formatBytes,
  INITIAL_UI_STATE,
  promptSource,
  statusLine,
} from '../../components/uiState';
import type { HostApi } from '../../core/protocol/client';
import type { HostEvent, HostState, JobView, Request } from '../../core/protocol/messages';
import { ProtocolError } from '../../core/protocol/messages';
import { DEFAULT_SETTINGS } from '../../core/protocol/settings';

let container: HTMLElement;
beforeEach(() => {
  const { window } = parseHTML('<!doctype html><html><body><div id="root"></div></body></html>');
  Object.assign(globalThis, { window, document: window.document, navigator: window.navigator });
  container = window.document.getElementById('root') as unknown as HTMLElement;
});
afterEach(() => {
  render(null, container);
});

function html(text: string): string {
  render(<Markdown text={text} />, container);
  return container.innerHTML;
}

describe('safe Markdown', () => {
  test('renders the common constructs', () => {
    expect(html('# Title\n\nSome **bold** and *it* and `x<y`.')).toBe(
      '<h3>Title</h3><p>Some <strong>bold</strong> and <em>it</em> and <code>x&lt;y</code>.</p>',
    );
    expect(html('- a\n- b\n\n3. c\n4. d')).toBe('<ul><li>a</li><li>b</li></ul><ol start="3"><li>c</li><li>d</li></ol>');
    expect(html('```js\nif (a < b) {}\n```')).toBe('<pre data-lang="js"><code>if (a &lt; b) {}</code></pre>');
    expect(html('> quoted\n> more')).toBe('<blockquote>quoted<br>more</blockquote>');
    html('see [docs](https://example.org/a?b=1)');
    const a = container.querySelector('p > a')!;
    expect([a.textContent, a.getAttribute('href'), a.getAttribute('rel'), a.getAttribute('target')]).toEqual([
      'docs',
      'https://example.org/a?b=1',
      'noopener noreferrer',
      '_blank',
    ]);
  });

  test('model or page text can never become HTML', () => {
    const out = html('<script>alert(1)</script>\n\n<img src=x onerror=alert(1)> **<b>x</b>**');
    expect(out).not.toMatch(/<script|<img|<b>/);
    expect(out).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(container.querySelectorAll('script, img').length).toBe(0);
    const links = html('[click](javascript:alert(1)) [x](data:text/html,hi)');
    expect(links).not.toMatch(/href/);
    expect(links).toContain('click');
  });

  test('each code block gets its own Copy button when asked for', async () => {
    const copied: string[] = [];
    render(
      <Markdown text={'a\n\n```js\nlet x = 1;\n```\n\n```\ny\n```'} onCopyCode={(t) => copied.push(t)} />,
      container,
    );
    const buttons = container.querySelectorAll('[data-testid="copy-code"]');
    expect(buttons.length).toBe(2);
    await act(() => void buttons[1].dispatchEvent(new window.Event('click', { bubbles: true })));
    await act(() => void buttons[0].dispatchEvent(new window.Event('click', { bubbles: true })));
    expect(copied).toEqual(['y', 'let x = 1;']);
  });

  test('an unclosed fence while streaming renders as code to the end', () => {
    expect(parseBlocks('text\n```\ncode line')).toEqual([
      { kind: 'paragraph', text: 'text' },
      { kind: 'code', lang: '', text: 'code line' },
    ]);
  });
});

function job(over: Partial<JobView> = {}): JobView {
  return {
    jobId: 'j1',
    tabId: 7,
    kind: 'ask',
    question: 'Who?',
    status: 'running',
    stage: 'generating',
    answer: '',
    pageTitle: '',
    pageUrl: '',
    modelId: 'm',
    coverage: null,
    progress: null,
    stats: null,
    error: null,
    startedAt: 0,
    finishedAt: null,
    threadId: null,
    citations: [],
    droppedTurns: 0,
    ...over,
  };
}

function hostState(over: Partial<HostState> = {}): HostState {
  return {
    protocolVersion: 1,
    settings: DEFAULT_SETTINGS,
    defaultModelId: 'Llama-3.2-1B-Instruct-q4f16_1-MLC',
    gpu: { state: 'ok', adapter: 'test', f16: false },
    engine: { state: 'empty', modelId: null, contextWindow: null, error: null },
    job: null,
    runningJobId: null,
    lastFastModeSpeedup: null,
    tabId: null,
    thread: null,
    preRead: null,
    ...over,
  };
}

describe('progress that tells the truth', () => {
  test('download: MB done of total, percent and the measured rate; prefill: tokens and tok/s; restored: no 0 tok/s', () => {
    let s = applyEvent(INITIAL_UI_STATE, { type: 'state', state: hostState({ job: job(), runningJobId: 'j1' }) }, 7);
    const download = (loadedBytes: number) => ({
      type: 'progress' as const,
      jobId: 'j1',
      tabId: 7,
      progress: {
        stage: 'loading-model' as const,
        download: { fraction: loadedBytes / 800e6, loadedBytes, totalBytes: 800e6 },
      },
    });
    s = applyEvent(s, download(50e6), 7, 1000);
    expect(statusLine(s)).toBe('Loading model… 50 MB of 800 MB (6.3%)');
    s = applyEvent(s, download(100e6), 7, 2000);
    expect(statusLine(s)).toBe('Loading model… 100 MB of 800 MB (13%) · 50 MB/s');
    const prefill = (done: number) => ({
      type: 'progress' as const,
      jobId: 'j1',
      tabId: 7,
      progress: { stage: 'prefill' as const, prefill: { fraction: done / 4000, done, total: 4000 } },
    });
    // The prefill stage starts the clock: the first chunk's report already has a rate.
    s = applyEvent(s, { type: 'progress', jobId: 'j1', tabId: 7, progress: { stage: 'prefill' } }, 7, 2500);
    s = applyEvent(s, prefill(512), 7, 3000);
    expect(statusLine(s)).toBe('Reading into the model… 13% (512 of 4,000 tokens) · 1,024 tok/s');
    s = applyEvent(s, prefill(1536), 7, 3500);
    expect(statusLine(s)).toBe('Reading into the model… 38% (1,536 of 4,000 tokens) · 1,536 tok/s');
    const stats = {
      promptTokens: 900,
      prefillTokens: 1,
      restoredTokens: 0,
      reusedTokens: 899,
      generatedTokens: 12,
      prefillMs: 0,
      decodeMs: 1000,
      prefillTokensPerSec: 0,
      decodeTokensPerSec: 12,
      stopReason: 'stop-token' as const,
      fastMode: false,
      fastModeSpeedup: null,
      positionsReadFraction: null,
      attentionPolicy: 'full',
      fullSteps: null,
      partSummaries: 0,
    };
    s = applyEvent(s, { type: 'done', jobId: 'j1', tabId: 7, status: 'done', stats }, 7);
    // KV still in memory is "reused"; only a snapshot read back from IndexedDB is "restored".
    expect(statusLine(s)).toBe('Done · 899 tokens reused from memory, nothing to prefill · 12 tokens at 12.0 tokens/s');
    expect(promptSource({ ...stats, reusedTokens: 0, restoredTokens: 899 })).toBe(
      '899 restored from a snapshot, nothing to prefill',
    );
    expect(
      promptSource({ ...stats, reusedTokens: 700, restoredTokens: 0, prefillTokens: 200, prefillTokensPerSec: 812 }),
    ).toBe('700 tokens reused from memory, prefilled 200 at 812 tok/s');
    expect(promptSource({ ...stats, reusedTokens: 0, prefillTokens: 900, prefillTokensPerSec: 812.4 })).toBe(
      'prefilled 900 tokens at 812 tok/s',
    );
    // The answer's stats: prefill tokens/s and the time from Ask to the first token (#10).
    const line = statsLine({
      ...stats,
      reusedTokens: 0,
      prefillTokens: 900,
      prefillTokensPerSec: 812.4,
      timeToFirstTokenMs: 1234,
    });
    expect(line).toBe('900 prompt tokens · prefill 812 tok/s · first token 1.2 s after Ask · decode 12.0 tok/s');
    expect(statsLine({ ...stats, timeToFirstTokenMs: 95 })).toBe(
      '900 prompt tokens · prefilled 1 · 899 reused from memory · first token 0.10 s after Ask · decode 12.0 tok/s',
    );
  });

  test('a small model downloads in tenths of MB; a cancelled load says so', () => {
    expect(formatBytes(1_546_752)).toBe('1.5 MB');
    expect(formatBytes(12_600_000)).toBe('13 MB');
    expect(formatBytes(150_000)).toBe('150 kB');
    const cancelled = hostState({
      engine: {
        state: 'empty',
        modelId: null,
        contextWindow: null,
        error: { code: 'model-load-failed', message: 'Loading the model was cancelled: no model is loaded.' },
      },
    });
    const s = applyEvent(INITIAL_UI_STATE, { type: 'state', state: cancelled }, 7);
    expect(statusLine(s)).toBe('Loading the model was cancelled: no model is loaded.');
    // Cancel on an answer that was loading its model stops the answer; the status says why.
    const stopped = { ...cancelled, tabId: 7, job: job({ status: 'stopped', stage: 'finished' }) };
    expect(statusLine(applyEvent(s, { type: 'state', state: stopped }, 7))).toBe(
      'Stopped · Loading the model was cancelled: no model is loaded.',
    );
  });

  test('pre-read: its progress shows in its own tab only, then how much is in memory', () => {
    const ready = { state: 'ready' as const, modelId: 'm', contextWindow: 2048, error: null };
    const running = { tabId: 7, status: 'running' as const, cachedTokens: 0, prefilledTokens: 0, reason: null };
    let s = applyEvent(INITIAL_UI_STATE, { type: 'state', state: hostState({ engine: ready, preRead: running }) }, 7);
    expect(statusLine(s)).toBe('Pre-reading the page…');
    const progress = (tabId: number, done: number) => ({
      type: 'progress' as const,
      jobId: null,
      tabId,
      progress: {
        stage: 'prefill' as const,
        label: 'Pre-reading the page',
        prefill: { fraction: done / 800, done, total: 800 },
      },
    });
    s = applyEvent(s, progress(7, 200), 7, 1000);
    s = applyEvent(s, progress(7, 400), 7, 2000);
    expect(statusLine(s)).toBe('Pre-reading the page… 50% (400 of 800 tokens) · 200 tok/s');
    // Another tab's pre-read (the side panel moved on) does not show here.
    s = applyEvent(s, progress(9, 10), 7, 2500);
    expect(statusLine(s)).toBe('Pre-reading the page… 50% (400 of 800 tokens) · 200 tok/s');
    const done = { ...running, status: 'done' as const, cachedTokens: 799, prefilledTokens: 799 };
    s = applyEvent(s, { type: 'state', state: hostState({ engine: ready, preRead: done }) }, 7);
    expect(statusLine(s)).toBe('Ready · page pre-read: 799 tokens in memory, Ask prefills only the question');
    // Seen from tab 9, tab 7's pre-read is not news.
    expect(statusLine(applyEvent(s, { type: 'state', state: hostState({ engine: ready, preRead: done }) }, 9))).toBe(
      'Ready',
    );
  });
});

describe('fast mode in the stats line', () => {
  const stats = {
    promptTokens: 900,
    prefillTokens: 900,
    restoredTokens: 0,
    reusedTokens: 0,
    generatedTokens: 12,
    prefillMs: 100,
    decodeMs: 1000,
    prefillTokensPerSec: 9000,
    decodeTokensPerSec: 12,
    stopReason: 'stop-token' as const,
    fastMode: true,
    fastModeSpeedup: null,
    positionsReadFraction: null,
    attentionPolicy: 'full',
    fullSteps: null,
    partSummaries: 0,
  };
  test('below the break-even: says full attention ran and why, never a slowdown figure', () => {
    const line = statsLine({ ...stats, fastModeActive: false, fastModePredicted: 0.97 });
    expect(line).toContain('full attention: fast mode would not be faster here (predicted 0.97× of its time)');
    expect(line).not.toMatch(/fast mode \d/);
  });
  test('fast mode that ran shows its measured speed-up', () => {
    const line = statsLine({ ...stats, fastModeActive: true, fastModeSpeedup: 1.8, attentionPolicy: 'recycled' });
    expect(line).toContain('fast mode 1.80×');
    expect(line).not.toContain('would not be faster');
  });
});

describe('UI state', () => {
  test('follows its own tab’s job and ignores others', () => {
    let s = applyEvent(INITIAL_UI_STATE, { type: 'state', state: hostState({ job: job(), runningJobId: 'j1' }) }, 7);
    s = applyEvent(s, { type: 'delta', jobId: 'j1', tabId: 7, text: 'Ada' }, 7);
    s = applyEvent(s, { type: 'delta', jobId: 'other', tabId: 8, text: 'XX' }, 7);
    s = applyEvent(s, { type: 'delta', jobId: 'j1', tabId: 7, text: ' Lovelace' }, 7);
    expect(s.job?.answer).toBe('Ada Lovelace');
    s = applyEvent(s, { type: 'state', state: hostState({ job: job({ jobId: 'j9', tabId: 8 }) }) }, 7);
    expect(s.job?.jobId).toBe('j1');
    s = applyEvent(
      s,
      { type: 'progress', jobId: 'j1', tabId: 7, progress: { stage: 'generating', tokensPerSec: 12.34 } },
      7,
    );
    expect(statusLine(s)).toBe('Writing… 12.3 tokens/s');
    s = applyEvent(s, { type: 'done', jobId: 'j1', tabId: 7, status: 'stopped', stats: null }, 7);
    expect(s.job?.status).toBe('stopped');
  });

  test('a long document summarized in parts: the status names the step, the coverage says how it was read', () => {
    let s = applyEvent(INITIAL_UI_STATE, { type: 'state', state: hostState({ job: job(), runningJobId: 'j1' }) }, 7);
    const progress = { stage: 'prefill' as const, label: 'Summarizing part 3 of 12', steps: { done: 2, total: 14 } };
    s = applyEvent(s, { type: 'progress', jobId: 'j1', tabId: 7, progress }, 7);
    expect(statusLine(s)).toBe('Summarizing part 3 of 12… (step 3 of 14)');
    const base = {
      includedChars: 900,
      totalChars: 900,
      includedTokens: 300,
      totalTokens: 300,
      fraction: 1,
      truncated: null,
    };
    expect(coverageLine({ ...base, strategy: 'map-reduce', partsUsed: 12, partsTotal: 12 })).toBe(
      'Read the whole page in 12 parts, summarized part by part (300 tokens)',
    );
    expect(coverageLine({ ...base, strategy: 'whole', partsUsed: 1, partsTotal: 1 })).toBe(
      'Read the whole page (300 tokens)',
    );
    const partial = { ...base, includedTokens: 75, fraction: 0.25, strategy: 'retrieval' as const };
    expect(coverageLine({ ...partial, partsUsed: 3, partsTotal: 12 })).toBe(
      'Read 25% of the page (75 of 300 tokens): the 3 of 12 parts most relevant to the question',
    );
    // A page cut at extraction is never "the whole page", even when everything extracted fit.
    const cut = { fraction: 0.4, reason: 'The page is very long: only its first part was extracted.' };
    expect(
      coverageLine({ ...base, fraction: 0.6, truncated: cut, strategy: 'whole', partsUsed: 1, partsTotal: 1 }),
    ).toBe('The page is very long: only its first part was extracted. Read 60% of the page.');
  });
});

/** A HostApi stand-in that records requests and lets the test push events. */
function fakeApi(state: HostState, stateFor?: (tabId: number | undefined) => HostState) {
  const requests: Request[] = [];
  const listeners = new Set<(e: HostEvent) => void>();
  const api: HostApi = {
    async request(r) {
      requests.push(r as Request);
      if (r.type === 'getState') return (stateFor ? stateFor((r as { tabId?: number }).tabId) : state) as never;
      if (r.type === 'listModels')
        return {
          models: [
            {
              modelId: 'Llama-3.2-1B-Instruct-q4f16_1-MLC',
              label: 'Llama-3.2-1B-Instruct-q4f16_1',
              baseUrl: 'u',
              family: 'llama',
              quantization: 'q4f16_1',
              vramRequiredMB: 879,
              downloadBytesEstimate: 7e8,
              custom: false,
              cached: true,
            },
          ],
        } as never;
      if (r.type === 'ask') return { jobId: 'j1' } as never;
      if (r.type === 'suggestQuestions') return { questions: ['What does it say about “The lamp”?'] } as never;
      if (r.type === 'summarize') throw new ProtocolError('busy', 'An answer is still being written');
      return {} as never;
    },
    onEvent(l) {
      listeners.add(l);
      return () => listeners.delete(l);
    },
  };
  return {
    api,
    requests,
    emit: (e: HostEvent) => {
      for (const l of listeners) l(e);
    },
  };
}

async function settle() {
  for (let i = 0; i < 5; i++) await act(async () => await new Promise((r) => setTimeout(r, 0)));
}

const byTestId = (id: string) =>
  container.querySelector(`[data-testid="${id}"]`) as unknown as HTMLElement & {
    value: string;
    checked: boolean;
    disabled: boolean;
  };

describe('App', () => {
  test('renders every control, sends ask for its tab, streams the answer, shows errors', async () => {
    const { api, requests, emit } = fakeApi(hostState());
    await act(() => render(<App api={api} resolveTab={async () => 7} surface="popup" />, container));
    await settle();
    for (const id of [
      'question',
      'ask',
      'summarize',
      'answer',
      'stop',
      'fast-mode',
      'model-select',
      'coverage',
      'status',
    ])
      expect(byTestId(id), id).not.toBeNull();
    expect(requests.map((r) => r.type)).toEqual(['getState', 'listModels', 'suggestQuestions']);
    expect(requests[0]).toEqual({ type: 'getState', tabId: 7 });
    expect(byTestId('suggestion').textContent).toBe('What does it say about “The lamp”?');
    for (const id of ['new-thread', 'history-toggle', 'thread']) expect(byTestId(id), id).not.toBeNull();
    expect(byTestId('model-select').textContent).toContain('≈700 MB · 0.9 GB VRAM · downloaded');
    expect(byTestId('ask').disabled).toBe(true); // empty question

    const question = byTestId('question');
    question.value = 'Who wrote it?';
    await act(() => void question.dispatchEvent(new window.Event('input', { bubbles: true })));
    await act(() => void byTestId('ask').dispatchEvent(new window.Event('click', { bubbles: true })));
    await settle();
    expect(requests.at(-1)).toEqual({ type: 'ask', tabId: 7, question: 'Who wrote it?' });

    await act(() => {
      emit({ type: 'state', state: hostState({ job: job(), runningJobId: 'j1' }) });
      emit({ type: 'delta', jobId: 'j1', tabId: 7, text: 'It was **Ada**' });
      emit({
        type: 'coverage',
        jobId: 'j1',
        tabId: 7,
        coverage: {
          strategy: 'retrieval',
          includedChars: 50,
          totalChars: 200,
          includedTokens: 12,
          totalTokens: 48,
          fraction: 0.25,
          partsUsed: 1,
          partsTotal: 4,
          truncated: null,
        },
      });
    });
    expect(byTestId('answer').innerHTML).toBe('<p>It was <strong>Ada</strong></p>');
    expect(byTestId('stop').disabled).toBe(false);
    expect(byTestId('coverage').textContent).toMatch(/Read 25% of the page \(12 of 48 tokens\)/);

    await act(() => void byTestId('summarize').dispatchEvent(new window.Event('click', { bubbles: true })));
    await settle();
    expect(container.querySelector('.notice')?.textContent).toBe('An answer is still being written');
  });

  test('pre-read on open is the user’s action; after a side-panel tab switch it is not; Cancel stops it', async () => {
    const ready = { state: 'ready' as const, modelId: 'm', contextWindow: 2048, error: null };
    let preRead: HostState['preRead'] = null;
    const stateFor = (tabId: number | undefined) => hostState({ tabId: tabId ?? null, engine: ready, preRead });
    const { api, requests, emit } = fakeApi(hostState(), stateFor);
    let active = 7;
    let onTabChange: () => void = () => {};
    const watchTab = (cb: () => void) => {
      onTabChange = cb;
      return () => {};
    };
    await act(() =>
      render(<App api={api} resolveTab={async () => active} surface="sidepanel" watchTab={watchTab} />, container),
    );
    await settle();
    active = 9;
    await act(() => onTabChange());
    await settle();
    expect(requests.filter((r) => r.type === 'preRead')).toEqual([
      { type: 'preRead', tabId: 7, userAction: true },
      { type: 'preRead', tabId: 9, userAction: false },
    ]);
    expect(byTestId('cancel-preread')).toBeNull();
    preRead = { tabId: 9, status: 'running', cachedTokens: 0, prefilledTokens: 0, reason: null };
    await act(() => emit({ type: 'state', state: stateFor(undefined) }));
    expect(byTestId('status').textContent).toBe('Pre-reading the page…');
    await act(() => void byTestId('cancel-preread').dispatchEvent(new window.Event('click', { bubbles: true })));
    await settle();
    expect(requests.at(-1)).toEqual({ type: 'cancelPreRead' });
  });

  test('a model download shows Cancel, which cancels the load', async () => {
    const loading = { state: 'loading' as const, modelId: 'm', contextWindow: 2048, error: null };
    const { api, requests } = fakeApi(hostState({ engine: loading }));
    await act(() => render(<App api={api} resolveTab={async () => 7} surface="popup" />, container));
    await settle();
    await act(() => void byTestId('cancel-load').dispatchEvent(new window.Event('click', { bubbles: true })));
    await settle();
    expect(requests.at(-1)).toEqual({ type: 'cancelLoad' });
  });

  test('a clear screen with the reason when WebGPU is unavailable', async () => {
    const { api } = fakeApi(hostState({ gpu: { state: 'unavailable', reason: 'No WebGPU adapter was found.' } }));
    await act(() => render(<App api={api} resolveTab={async () => 7} surface="popup" />, container));
    await settle();
    expect(byTestId('status').textContent).toContain('WebGPU is not available');
    expect(byTestId('status').textContent).toContain('No WebGPU adapter was found.');
    expect(byTestId('ask')).toBeNull();
  });

  test('the side panel follows the active tab: a tab switch shows that tab’s thread and job; turns and chips', async () => {
    const thread = (tabId: number) => ({
      threadId: `t${tabId}`,
      pageKey: `https://x.org/${tabId}`,
      pageUrl: `https://x.org/${tabId}`,
      pageTitle: `Page ${tabId}`,
      createdAt: 1,
      updatedAt: 2,
      turns: [
        {
          jobId: `old${tabId}`,
          kind: 'ask' as const,
          question: `earlier on ${tabId}`,
          answer: 'It says "the lamp turns".',
          status: 'done' as const,
          citations: [
            { quote: 'the lamp turns', kind: 'quote' as const, start: 3, end: 17, match: 'exact' as const, page: null },
          ],
          stats: null,
          error: null,
          startedAt: 1,
          finishedAt: 2,
          droppedTurns: 0,
        },
      ],
    });
    const stateFor = (tabId: number | undefined) =>
      hostState({
        tabId: tabId ?? null,
        thread: tabId === undefined ? null : thread(tabId),
        job: tabId === undefined ? null : job({ jobId: `j${tabId}`, tabId, status: 'done', answer: `answer ${tabId}` }),
      });
    const { api, requests } = fakeApi(hostState(), stateFor);
    let active = 7;
    let onTabChange: () => void = () => {};
    const watchTab = (cb: () => void) => {
      onTabChange = cb;
      return () => {};
    };
    await act(() =>
      render(<App api={api} resolveTab={async () => active} surface="sidepanel" watchTab={watchTab} />, container),
    );
    await settle();
    expect(byTestId('answer').textContent).toBe('answer 7');
    expect(container.querySelectorAll('[data-testid="turn"]').length).toBe(2);
    expect(container.querySelector('[data-testid="turn"] .question-echo')?.textContent).toBe('earlier on 7');
    expect(byTestId('citation').textContent).toContain('the lamp turns');
    // The user switches to tab 9: the panel asks for tab 9's state and shows its thread and job.
    active = 9;
    await act(() => onTabChange());
    await settle();
    expect(requests.filter((r) => r.type === 'getState').map((r) => (r as { tabId?: number }).tabId)).toEqual([7, 9]);
    expect(byTestId('answer').textContent).toBe('answer 9');
    expect(container.querySelector('[data-testid="turn"] .question-echo')?.textContent).toBe('earlier on 9');
    // Clicking a chip asks the host to show the passage in that tab.
    await act(() => void byTestId('citation').dispatchEvent(new window.Event('click', { bubbles: true })));
    await settle();
    expect(requests.find((r) => r.type === 'showCitation')).toEqual({
      type: 'showCitation',
      tabId: 9,
      pageUrl: 'https://x.org/9',
      citation: { quote: 'the lamp turns', kind: 'quote', start: 3, end: 17, match: 'exact', page: null },
    });
  });
});
