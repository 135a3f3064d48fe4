// The built extension in headless Chromium: WebGPU in the service worker, the popup ↔ background protocol, page
// reading through the content script, custom models, and the UI's look (screenshots under test-results/).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { HostState } from '../../core/protocol/messages';
import { ARTICLE_HTML, ARTICLE_TITLE, TINY_MODEL_CONFIG } from './fixtures';
import {
  buildExtension,
  hostRequest,
  type LaunchedExtension,
  launchWithExtension,
  openPopup,
  openTab,
  RESULTS_DIR,
  rawHostRequest,
  readLocalStorage,
  restartServiceWorker,
  type StaticServer,
  startStaticServer,
} from './harness';

let ext: LaunchedExtension;
let server: StaticServer;

beforeAll(async () => {
  buildExtension();
  mkdirSync(RESULTS_DIR, { recursive: true });
  server = await startStaticServer({
    routes: {
      '/article.html': ARTICLE_HTML,
      '/models/tiny/mlc-chat-config.json': TINY_MODEL_CONFIG,
    },
  });
  ext = await launchWithExtension();
});

afterAll(async () => {
  await ext?.close();
  await server?.close();
});

async function waitForJobEnd(page: Page, tabId: number): Promise<HostState> {
  for (let i = 0; i < 200; i++) {
    const state = await hostRequest(page, { type: 'getState', tabId });
    if (state.job && state.job.status !== 'running') return state;
    await page.waitForTimeout(100);
  }
  throw new Error('the job did not finish in 20 s');
}

describe('extension in Chromium', () => {
  test('the service worker gets a WebGPU device and runs a checked compute kernel', async () => {
    const hasGpu = await ext.serviceWorker.evaluate(() => typeof navigator.gpu?.requestAdapter === 'function');
    expect(hasGpu).toBe(true);
    const popup = await openPopup(ext);
    const result = await hostRequest(popup, { type: 'debugGpuSelfTest' });
    expect(result.elements).toBe(1000);
    expect(result.mismatches).toBe(0);
    // y[i] = x[i]² + i/2 with x[i] = ((37 i) mod 101)/10 − 5: worked by hand for i = 0..3.
    expect(result.sample[0]).toBeCloseTo(25, 5);
    expect(result.sample[1]).toBeCloseTo(2.19, 5);
    expect(result.sample[2]).toBeCloseTo(6.76, 5);
    expect(result.sample[3]).toBeCloseTo(17.5, 5);
    expect(result.adapter).toMatch(/swiftshader|\w/i);
    await popup.close();
  });

  test('the popup opens and round-trips a typed getState with the background', async () => {
    const popup = await openPopup(ext);
    const state = await hostRequest(popup, { type: 'getState' });
    expect(state.protocolVersion).toBe(1);
    expect(state.gpu.state).toBe('ok');
    expect(state.settings.contextWindow).toBeGreaterThanOrEqual(512);
    // The UI itself got the state: status left "Connecting…" and the model list is filled from the catalog.
    await expect.poll(() => popup.getByTestId('status').textContent()).not.toMatch(/Connecting/);
    const options = await popup.getByTestId('model-select').locator('option').allTextContents();
    expect(options.some((o) => o.startsWith('Llama-3.2-1B-Instruct-q4f16_1'))).toBe(true);
    expect(options.some((o) => /Phi|gemma|Mistral/i.test(o))).toBe(false);
    expect(state.defaultModelId).toBe('Llama-3.2-1B-Instruct-q4f16_1-MLC');
    expect(await popup.getByTestId('model-select').inputValue()).toBe(state.defaultModelId);
    for (const id of ['question', 'ask', 'summarize', 'answer', 'stop', 'fast-mode', 'coverage'])
      expect(await popup.getByTestId(id).count(), id).toBe(1);
    await popup.close();
    // The side panel is the same UI.
    const panel = await openPopup(ext, undefined, 'sidepanel.html');
    await expect.poll(() => panel.getByTestId('status').textContent()).not.toMatch(/Connecting/);
    expect(await panel.locator('main.app.sidepanel').count()).toBe(1);
    expect(await panel.getByTestId('model-select').locator('option').count()).toBe(options.length);
    await panel.close();
  });

  test('malformed messages get typed errors and the background keeps working', async () => {
    const popup = await openPopup(ext);
    const badField = await rawHostRequest(popup, { id: 7, type: 'ask', tabId: 'nine', question: 'x' });
    expect(badField).toMatchObject({ type: 'error', requestId: 7, error: { code: 'bad-request' } });
    expect(String((badField.error as { message: string }).message)).toMatch(/tabId/);
    const badType = await rawHostRequest(popup, { id: 8, type: 'formatDisk' });
    expect(badType).toMatchObject({ type: 'error', requestId: 8, error: { code: 'bad-request' } });
    const state = await hostRequest(popup, { type: 'getState' });
    expect(state.gpu.state).toBe('ok');
    await popup.close();
  });

  test('fast mode and settings persist in storage.local', async () => {
    const popup = await openPopup(ext);
    const toggle = popup.getByTestId('fast-mode');
    await expect.poll(() => popup.getByTestId('status').textContent()).not.toMatch(/Connecting/);
    const before = await toggle.isChecked();
    await toggle.click();
    await expect.poll(() => toggle.isChecked()).toBe(!before);
    const stored = await readLocalStorage(ext, 'settings');
    expect((stored as { fastMode: boolean }).fastMode).toBe(!before);
    await toggle.click();
    await expect.poll(() => toggle.isChecked()).toBe(before);
    await popup.close();
  });

  test('Summarize reads the local article through the content script; a reopened popup shows the job', async () => {
    const { page: article, tabId } = await openTab(ext, server.url('/article.html'));
    let popup = await openPopup(ext, tabId);
    await popup.getByTestId('summarize').click();
    const state = await waitForJobEnd(popup, tabId);
    expect(state.job?.tabId).toBe(tabId);
    expect(state.job?.pageTitle).toBe(ARTICLE_TITLE);
    expect(state.job?.pageUrl).toBe(server.url('/article.html'));
    // Past the page: whatever happens next is about the model, not about reading the page.
    if (state.job?.status === 'error') expect(state.job.error?.code).not.toMatch(/^page-/);
    await popup.screenshot({ path: join(RESULTS_DIR, 'popup-after-summarize.png') });
    await popup.close();
    popup = await openPopup(ext, tabId);
    await expect.poll(() => popup.getByTestId('status').textContent()).not.toMatch(/Connecting/);
    const reopened = await hostRequest(popup, { type: 'getState', tabId });
    expect(reopened.job?.jobId).toBe(state.job?.jobId);
    // A restarted worker still shows the finished job (kept in chrome.storage.session).
    const restarted = await restartServiceWorker(ext, popup, () => hostRequest(popup, { type: 'getState', tabId }));
    expect(restarted.job).toMatchObject({
      jobId: state.job?.jobId,
      pageTitle: ARTICLE_TITLE,
      status: state.job?.status,
    });
    await popup.close();
    await article.close();
  });

  test('a chrome:// page gives a clear page-unreadable error', async () => {
    const { page: internal, tabId } = await openTab(ext, 'chrome://version');
    const popup = await openPopup(ext, tabId);
    await popup.getByTestId('question').fill('What version is this?');
    await popup.getByTestId('ask').click();
    const state = await waitForJobEnd(popup, tabId);
    expect(state.job?.status).toBe('error');
    expect(state.job?.error?.code).toBe('page-unreadable');
    await expect.poll(() => popup.getByTestId('status').textContent()).toMatch(/cannot be read|not allow/);
    await popup.close();
    await internal.close();
  });

  test('a custom model is added by base URL from 127.0.0.1; a bad URL is refused with a reason', async () => {
    const popup = await openPopup(ext);
    await expect.poll(() => popup.getByTestId('status').textContent()).not.toMatch(/Connecting/);
    await popup.locator('details.settings > summary').click();
    await popup.getByTestId('custom-model-url').fill(server.url('/models/missing/'));
    await popup.getByTestId('custom-model-add').click();
    await expect.poll(() => popup.locator('.notice').getAttribute('data-code')).toBe('bad-url');
    const baseUrl = server.url('/models/tiny/');
    await popup.getByTestId('custom-model-url').fill(baseUrl);
    await popup.getByTestId('custom-model-add').click();
    await expect.poll(() => popup.getByTestId('model-select').inputValue()).toBe(`custom:${baseUrl}`);
    const { models } = await hostRequest(popup, { type: 'listModels' });
    expect(models.find((m) => m.modelId === `custom:${baseUrl}`)).toMatchObject({ custom: true, baseUrl });
    await popup.screenshot({ path: join(RESULTS_DIR, 'popup-settings.png'), fullPage: true });
    await popup.close();
  });

  test('screenshot of the popup at rest', async () => {
    const popup = await openPopup(ext);
    await popup.setViewportSize({ width: 444, height: 560 });
    await expect.poll(() => popup.getByTestId('status').textContent()).not.toMatch(/Connecting|Checking/);
    const path = join(RESULTS_DIR, 'popup.png');
    await popup.screenshot({ path });
    const { statSync } = await import('node:fs');
    expect(statSync(path).size).toBeGreaterThan(5_000);
    await popup.close();
  });
});

describe('popup rendering with a stubbed host (no engine needed)', () => {
  test('a finished Markdown answer, coverage and fast-mode speed-up render with the real stylesheet', async () => {
    const answer = [
      '## Summary',
      'The keeper of **Gull Rock** tends the light every night; the secret word is `marmalade`.',
      '',
      '- climbs the *ninety-nine* steps at dusk',
      '- trims the wick and winds the clockwork',
      '- ships count **three flashes** every fifteen seconds',
      '',
      '> Three every fifteen seconds.',
      '',
      'Source: [the article](https://example.org/gull-rock) <script>alert(1)</script>',
    ].join('\n');
    const page = await ext.context.newPage();
    await page.addInitScript(
      ({ answer }) => {
        const state = {
          protocolVersion: 1,
          defaultModelId: 'Llama-3.2-1B-Instruct-q4f16_1-MLC',
          settings: {
            modelId: '',
            contextWindow: 8192,
            fastMode: true,
            fastK: { fraction: 0.125 },
            fastSchedule: 'fixed',
            fastStride: 16,
            fastQc: 1,
            snapshotBudgetMB: 1024,
            maxAnswerTokens: 512,
            theme: 'auto',
            customModels: [],
          },
          gpu: { state: 'ok', adapter: 'stub adapter', f16: true },
          engine: { state: 'ready', modelId: 'Llama-3.2-1B-Instruct-q4f16_1-MLC', contextWindow: 8192, error: null },
          job: {
            jobId: 'j1',
            tabId: 5,
            kind: 'ask',
            question: 'What does the keeper do?',
            status: 'done',
            stage: 'finished',
            answer,
            pageTitle: 'The Keeper of Gull Rock',
            pageUrl: 'http://127.0.0.1/article.html',
            modelId: 'Llama-3.2-1B-Instruct-q4f16_1-MLC',
            coverage: {
              strategy: 'retrieval',
              includedChars: 6200,
              totalChars: 10000,
              includedTokens: 7600,
              totalTokens: 12258,
              fraction: 0.62,
              partsUsed: 19,
              partsTotal: 31,
            },
            progress: null,
            error: null,
            startedAt: 0,
            finishedAt: 1,
            threadId: 'thread-1',
            citations: [
              { quote: 'trims the wick at dusk', kind: 'quote', start: 120, end: 142, match: 'exact', page: null },
              { quote: 'painted the lamp red', kind: 'quote', start: null, end: null, match: 'none', page: null },
            ],
            droppedTurns: 0,
            stats: {
              promptTokens: 7680,
              prefillTokens: 7680,
              reusedTokens: 0,
              generatedTokens: 64,
              prefillMs: 3000,
              decodeMs: 2000,
              prefillTokensPerSec: 2560,
              decodeTokensPerSec: 32,
              stopReason: 'stop-token',
              restoredTokens: 0,
              fastMode: true,
              fastModeSpeedup: 1.84,
              positionsReadFraction: 0.19,
              attentionPolicy: 'recycled',
              fullSteps: 4,
              partSummaries: 0,
            },
          },
          runningJobId: null,
          lastFastModeSpeedup: 1.84,
        };
        const models = [
          {
            modelId: 'Llama-3.2-1B-Instruct-q4f16_1-MLC',
            label: 'Llama-3.2-1B-Instruct-q4f16_1',
            baseUrl: 'x',
            family: 'llama',
            quantization: 'q4f16_1',
            vramRequiredMB: 879,
            downloadBytesEstimate: 7e8,
            custom: false,
            cached: true,
          },
        ];
        const chromeApi = (globalThis as unknown as { chrome: { runtime: Record<string, unknown> } }).chrome;
        chromeApi.runtime.connect = () => {
          const listeners: ((m: unknown) => void)[] = [];
          return {
            name: 'stub',
            onMessage: { addListener: (l: (m: unknown) => void) => listeners.push(l) },
            onDisconnect: { addListener: () => {} },
            disconnect: () => {},
            postMessage: (m: { id: number; type: string }) => {
              const result = m.type === 'getState' ? state : m.type === 'listModels' ? { models } : {};
              setTimeout(() => {
                for (const l of listeners) l({ type: 'reply', requestId: m.id, requestType: m.type, result });
              }, 0);
            },
          };
        };
      },
      { answer },
    );
    await page.goto(`chrome-extension://${ext.extensionId}/popup.html?tab=5`);
    await page.setViewportSize({ width: 760, height: 720 });
    await expect
      .poll(() => page.getByTestId('status').textContent())
      .toMatch(/Done · prefilled 7,680 tokens at 2560 tok\/s · 64 tokens at 32\.0 tokens\/s/);
    const rendered = page.getByTestId('answer');
    expect(await rendered.locator('h4').textContent()).toBe('Summary');
    expect(await rendered.locator('ul > li').count()).toBe(3);
    expect(await rendered.locator('a').getAttribute('href')).toBe('https://example.org/gull-rock');
    expect(await rendered.locator('script').count()).toBe(0);
    expect(await rendered.textContent()).toContain('<script>alert(1)</script>');
    expect(await page.getByTestId('coverage').getAttribute('data-fraction')).toBe('0.6200');
    expect(await page.getByTestId('coverage').textContent()).toMatch(
      /Read 62% of the page \(7,600 of 12,258 tokens\): the 19 of 31 parts most relevant to the question/,
    );
    expect(await page.getByTestId('stats').textContent()).toMatch(/4 full \/ 60 recycled steps · read 19% of the KV/);
    expect(await page.locator('.speedup').textContent()).toBe('1.84× last');
    // Citation chips: a found quote is a button, a made-up one is marked.
    expect(await page.getByTestId('citation').count()).toBe(2);
    expect(await page.locator('[data-testid="citation"][data-found="false"]').textContent()).toMatch(
      /not found in the page/,
    );
    await page.screenshot({ path: join(RESULTS_DIR, 'popup-answer.png') });
    await page.close();
  });
});
