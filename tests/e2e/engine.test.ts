// The real engine in the built extension (Chromium, WebGPU on SwiftShader): a custom model added through the UI,
// answers streaming into the popup, fast mode, a popup closed and reopened mid-answer, a PDF summarized part by part,
// and a document prefix restored from an IndexedDB snapshot after the service worker restarted.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { HostState, JobView } from '../../core/protocol/messages';
import { makeImageOnlyPdf, makeTruncatedPdf } from '../fixtures/pdf/makePdfs';
import { LONG_TITLE, longArticleHtml, makeBookPdf, writeTinyChatModel } from './engineFixtures';
import {
  buildExtension,
  hostRequest,
  type LaunchedExtension,
  launchWithExtension,
  openPopup,
  openTab,
  RESULTS_DIR,
  restartServiceWorker,
  type StaticServer,
  startStaticServer,
} from './harness';

let ext: LaunchedExtension;
let server: StaticServer;
let modelDir: string;
let pdfBytes: Uint8Array;
const MODEL_PATH = '/models/tiny-chat/';

beforeAll(async () => {
  buildExtension();
  mkdirSync(RESULTS_DIR, { recursive: true });
  modelDir = mkdtempSync(join(tmpdir(), 'rr-e2e-model-'));
  writeTinyChatModel(join(modelDir, 'models/tiny-chat'));
  pdfBytes = await makeBookPdf(2600);
  const shortPdf = await makeBookPdf(300);
  server = await startStaticServer({
    root: modelDir,
    routes: {
      '/long.html': longArticleHtml(900),
      '/book.pdf': pdfBytes,
      '/short.pdf': shortPdf,
      '/broken.pdf': makeTruncatedPdf(shortPdf),
      '/scan.pdf': await makeImageOnlyPdf(2),
    },
  });
  ext = await launchWithExtension();
});

afterAll(async () => {
  await ext?.close();
  await server?.close();
  if (modelDir) rmSync(modelDir, { recursive: true, force: true });
});

async function waitForJob(page: Page, tabId: number, jobId?: string, timeoutMs = 240_000): Promise<JobView> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const state: HostState = await hostRequest(page, { type: 'getState', tabId });
    if (state.job && state.job.status !== 'running' && (jobId === undefined || state.job.jobId === jobId))
      return state.job;
    await page.waitForTimeout(200);
  }
  throw new Error(`the job did not finish in ${timeoutMs} ms`);
}

/** Clicks Ask and samples the answer's length until the job ends: the samples show whether tokens streamed. */
async function askAndWatch(popup: Page, tabId: number, question: string): Promise<{ job: JobView; lengths: number[] }> {
  await popup.getByTestId('question').fill(question);
  await popup.getByTestId('ask').click();
  const lengths: number[] = [];
  const until = Date.now() + 240_000;
  while (Date.now() < until) {
    lengths.push(((await popup.getByTestId('answer').textContent()) ?? '').length);
    const state = await hostRequest(popup, { type: 'getState', tabId });
    if (state.job && state.job.question === question && state.job.status !== 'running') {
      lengths.push(((await popup.getByTestId('answer').textContent()) ?? '').length);
      return { job: state.job, lengths };
    }
    await popup.waitForTimeout(30);
  }
  throw new Error('the answer did not finish');
}

/** Snapshot records in the extension's IndexedDB (written in the background after a prefill). */
async function snapshotCount(): Promise<number> {
  return ext.serviceWorker.evaluate(
    () =>
      new Promise<number>((resolve, reject) => {
        const open = indexedDB.open('recycled-reader-snapshots');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const db = open.result;
          if (!db.objectStoreNames.contains('meta')) return resolve(0);
          const count = db.transaction('meta').objectStore('meta').count();
          count.onsuccess = () => {
            resolve(count.result);
            db.close();
          };
          count.onerror = () => reject(count.error);
        };
      }),
  );
}

/** Selects the tiny model (what the first test does through the UI), so a test can also run alone (-t). */
async function useTinyModel(page: Page): Promise<void> {
  const entry = await hostRequest(page, { type: 'addCustomModel', baseUrl: server.url(MODEL_PATH) });
  await hostRequest(page, { type: 'setSettings', settings: { modelId: entry.modelId, snapshotBudgetMB: 64 } });
}

describe('the engine in the extension', () => {
  let tabId: number;

  test('a custom model added in the UI answers: tokens stream into the popup; fast mode reports recycled steps', async () => {
    const article = await openTab(ext, server.url('/long.html'));
    tabId = article.tabId;
    const popup = await openPopup(ext, tabId);
    await expect.poll(() => popup.getByTestId('status').textContent()).not.toMatch(/Connecting/);
    await hostRequest(popup, {
      type: 'setSettings',
      // fastModeAlways: this tiny model is below fast mode's break-even; the test checks recycled attention itself.
      settings: {
        contextWindow: 2048,
        maxAnswerTokens: 40,
        fastMode: false,
        fastModeAlways: true,
        fastStride: 8,
        snapshotBudgetMB: 64,
      },
    });
    await popup.locator('details.settings > summary').click();
    await popup.getByTestId('custom-model-url').fill(server.url(MODEL_PATH));
    await popup.getByTestId('custom-model-add').click();
    const modelId = `custom:${server.url(MODEL_PATH)}`;
    await expect.poll(() => popup.getByTestId('model-select').inputValue()).toBe(modelId);

    // Fast mode off: full attention on every step.
    expect(await popup.getByTestId('fast-mode').isChecked()).toBe(false);
    const full = await askAndWatch(popup, tabId, 'Who is Sir Walter Elliot?');
    expect(full.job.error).toBeNull();
    expect(full.job.status).toBe('done');
    expect(full.job.modelId).toBe(modelId);
    expect(full.job.pageTitle).toBe(LONG_TITLE);
    expect(full.job.coverage).toMatchObject({ strategy: 'whole', fraction: 1 });
    expect(full.job.coverage!.totalTokens).toBeGreaterThan(800);
    expect(full.job.answer).toMatch(/\bw\d+/); // the fixture vocabulary: w0, w1, ...
    expect(full.job.stats).toMatchObject({ attentionPolicy: 'full', fastModeSpeedup: null });
    expect(full.job.stats!.generatedTokens).toBeGreaterThan(3);
    // The text grew over time: at least two different non-empty lengths were seen before the end.
    const seen = new Set(full.lengths.filter((n) => n > 0));
    expect(seen.size, `answer lengths sampled: ${full.lengths.join(',')}`).toBeGreaterThanOrEqual(2);
    // The same page again: the document prefix is still in the KV cache (no second prefill of the page).
    await popup.getByTestId('fast-mode').click();
    await expect.poll(() => popup.getByTestId('fast-mode').isChecked()).toBe(true);
    const fast = await askAndWatch(popup, tabId, 'What did he read?');
    expect(fast.job.status).toBe('done');
    // A follow-up in the same thread: the page and the first turn are still in memory.
    expect(fast.job.stats!.reusedTokens).toBeGreaterThan(800);
    expect(fast.job.stats!.attentionPolicy).toBe('recycled');
    const { fullSteps, generatedTokens, positionsReadFraction, fastModeSpeedup } = fast.job.stats!;
    expect(generatedTokens).toBeGreaterThan(8);
    expect(fullSteps).not.toBeNull();
    expect(fullSteps!).toBeGreaterThanOrEqual(1);
    expect(fullSteps!).toBeLessThan(generatedTokens);
    expect(positionsReadFraction!).toBeLessThan(0.5);
    // Measured against the answer with fast mode off: the ratio of the two decode speeds.
    const ratio = fast.job.stats!.decodeTokensPerSec / full.job.stats!.decodeTokensPerSec;
    expect(fastModeSpeedup!).toBeCloseTo(ratio, 6);
    await expect.poll(() => popup.getByTestId('stats').textContent()).toMatch(/full \/ \d+ recycled steps/);
    console.log(
      `[e2e] fast mode: ${fast.job.stats!.decodeTokensPerSec.toFixed(1)} tok/s vs full ${full.job.stats!.decodeTokensPerSec.toFixed(1)} tok/s;`,
      `[e2e] fast mode: ${generatedTokens} tokens, ${fullSteps} full steps, read ${(positionsReadFraction! * 100).toFixed(1)}% of KV/step, measured speed-up ${fastModeSpeedup!.toFixed(2)}x; full: ${full.job.stats!.decodeTokensPerSec.toFixed(1)} tok/s, prefill ${full.job.stats!.prefillTokensPerSec.toFixed(0)} tok/s`,
    );
    await popup.screenshot({ path: join(RESULTS_DIR, 'engine-fast-mode.png') });
    await popup.close();
  });

  test('closing and reopening the popup mid-answer: the answer keeps going and the new popup shows it', async () => {
    const popup = await openPopup(ext, tabId);
    await expect.poll(() => popup.getByTestId('status').textContent()).not.toMatch(/Connecting/);
    await hostRequest(popup, { type: 'setSettings', settings: { maxAnswerTokens: 400 } });
    await popup.getByTestId('question').fill('Tell me everything about Kellynch Hall.');
    await popup.getByTestId('ask').click();
    await expect.poll(() => popup.getByTestId('answer').textContent(), { timeout: 60_000 }).toMatch(/\S/);
    const atClose = ((await popup.getByTestId('answer').textContent()) ?? '').length;
    await popup.close();
    const reopened = await openPopup(ext, tabId);
    const job = await waitForJob(reopened, tabId);
    expect(job.status).toBe('done');
    expect(job.answer.length).toBeGreaterThan(atClose);
    // The reopened popup shows the whole answer, past what the closed one had.
    await expect
      .poll(async () => ((await reopened.getByTestId('answer').textContent()) ?? '').length)
      .toBeGreaterThan(atClose);
    await hostRequest(reopened, { type: 'setSettings', settings: { maxAnswerTokens: 40 } });
    await reopened.close();
  });

  test('after a service-worker restart the page is not prefilled again: its KV comes from the snapshot', async () => {
    const popup = await openPopup(ext, tabId);
    await expect.poll(() => popup.getByTestId('status').textContent()).not.toMatch(/Connecting/);
    await expect.poll(snapshotCount, { timeout: 30_000 }).toBeGreaterThan(0);
    const state = await restartServiceWorker(ext, popup, () => hostRequest(popup, { type: 'getState', tabId }));
    expect(state.engine.state).toBe('empty'); // a fresh worker: nothing in memory
    // A new thread, so the prompt is the page and the question (the page's earlier thread is in the history).
    await hostRequest(popup, { type: 'newThread', tabId });
    const after = await askAndWatch(popup, tabId, 'Who is Sir Walter Elliot?');
    expect(after.job.status).toBe('done');
    const promptTokens = after.job.stats!.promptTokens;
    // Everything up to the question came from the snapshot; only the question and reply header were prefilled.
    expect(after.job.stats!.restoredTokens).toBeGreaterThan(800);
    expect(promptTokens - after.job.stats!.restoredTokens).toBeLessThan(40);
    await expect.poll(() => popup.getByTestId('stats').textContent()).toMatch(/restored from a snapshot/);
    await popup.screenshot({ path: join(RESULTS_DIR, 'engine-after-restart.png') });
    await popup.close();
  });

  test('a PDF file longer than the context is summarized part by part', async () => {
    const popup = await openPopup(ext, tabId);
    await expect.poll(() => popup.getByTestId('status').textContent()).not.toMatch(/Connecting/);
    await useTinyModel(popup);
    await hostRequest(popup, { type: 'setSettings', settings: { contextWindow: 1024, maxAnswerTokens: 24 } });
    await popup
      .getByTestId('pdf-file')
      .setInputFiles({ name: 'book.pdf', mimeType: 'application/pdf', buffer: Buffer.from(pdfBytes) });
    await expect.poll(() => popup.getByTestId('pdf-name').textContent(), { timeout: 60_000 }).toMatch(/Persuasion/);
    await popup.getByTestId('summarize').click();
    const labels = new Set<string>();
    let job: JobView | null = null;
    for (const until = Date.now() + 300_000; Date.now() < until; ) {
      const status = (await popup.getByTestId('status').textContent()) ?? '';
      if (/Summarizing part|final summary/.test(status)) labels.add(status.replace(/\s*\(step.*$/, ''));
      const s = await hostRequest(popup, { type: 'getState', tabId });
      if (s.job?.kind === 'summarize' && s.job.status !== 'running') {
        job = s.job;
        break;
      }
      await popup.waitForTimeout(50);
    }
    if (!job) throw new Error('the summary did not finish');
    expect(job.error).toBeNull();
    expect(job.status).toBe('done');
    expect(job.pageTitle).toBe('Persuasion (test PDF)');
    expect(job.coverage).toMatchObject({ strategy: 'map-reduce', fraction: 1 });
    expect(job.coverage!.partsTotal).toBeGreaterThan(2);
    expect(job.stats!.partSummaries).toBeGreaterThanOrEqual(3);
    expect(job.answer.length).toBeGreaterThan(0);
    expect(
      [...labels].some((l) => /Summarizing part \d+ of \d+/.test(l)),
      [...labels].join(' | '),
    ).toBe(true);
    expect(await popup.getByTestId('coverage').textContent()).toMatch(/Read the whole page in \d+ parts/);
    await popup.screenshot({ path: join(RESULTS_DIR, 'engine-pdf-summary.png') });
    await popup.close();
  });

  test('a PDF tab is fetched and read by the background; broken and image-only PDFs say why', async () => {
    const { page, tabId: pdfTab } = await openTab(ext, server.url('/short.pdf'));
    const popup = await openPopup(ext, pdfTab);
    await expect.poll(() => popup.getByTestId('status').textContent()).not.toMatch(/Connecting/);
    await useTinyModel(popup);
    await hostRequest(popup, { type: 'setSettings', settings: { contextWindow: 2048, maxAnswerTokens: 16 } });
    const { job } = await askAndWatch(popup, pdfTab, 'What is on the first page?');
    expect(job.error).toBeNull();
    expect(job.pageUrl).toBe(server.url('/short.pdf'));
    expect(job.pageTitle).toBe('Persuasion (test PDF)');
    expect(job.coverage).toMatchObject({ strategy: 'whole', fraction: 1 });
    await popup.close();
    await page.close();
    for (const [path, pattern] of [
      ['/broken.pdf', /not a valid PDF|Could not read this PDF/],
      ['/scan.pdf', /no text layer/],
    ] as const) {
      const tab = await openTab(ext, server.url(path));
      const p = await openPopup(ext, tab.tabId);
      const { jobId } = await hostRequest(p, { type: 'summarize', tabId: tab.tabId });
      const failed = await waitForJob(p, tab.tabId, jobId, 60_000);
      expect(failed.status).toBe('error');
      expect(failed.error?.message).toMatch(pattern);
      await p.close();
      await tab.page.close();
    }
  });
});
