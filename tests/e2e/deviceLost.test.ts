// The GPU device lost mid-answer in the extension's service worker: the job ends with a clear gpu-lost error, the
// popup offers Retry, and Retry gets a new device, reloads the model and answers.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { HostState, JobView } from '../../core/protocol/messages';
import { longArticleHtml, writeTinyChatModel } from './engineFixtures';
import {
  buildExtension,
  hostRequest,
  type LaunchedExtension,
  launchWithExtension,
  openPopup,
  openTab,
  type StaticServer,
  startStaticServer,
} from './harness';

let ext: LaunchedExtension;
let server: StaticServer;
let modelDir: string;

beforeAll(async () => {
  buildExtension();
  modelDir = mkdtempSync(join(tmpdir(), 'rr-e2e-lost-'));
  writeTinyChatModel(join(modelDir, 'models/tiny-chat'));
  server = await startStaticServer({ root: modelDir, routes: { '/article.html': longArticleHtml(200) } });
  ext = await launchWithExtension();
}, 400_000);

afterAll(async () => {
  await ext?.close();
  await server?.close();
  if (modelDir) rmSync(modelDir, { recursive: true, force: true });
});

describe('GPU device lost in the extension', () => {
  test('mid-answer: gpu-lost error with Retry; Retry reloads on a new device and answers', async () => {
    const { page, tabId } = await openTab(ext, server.url('/article.html'));
    const popup = await openPopup(ext, tabId);
    await expect.poll(() => popup.getByTestId('status').textContent()).not.toMatch(/Connecting/);
    const entry = await hostRequest(popup, { type: 'addCustomModel', baseUrl: server.url('/models/tiny-chat/') });
    await hostRequest(popup, {
      type: 'setSettings',
      settings: { modelId: entry.modelId, maxAnswerTokens: 300, fastMode: false, snapshotBudgetMB: 0 },
    });
    await popup.getByTestId('question').fill('Who is the keeper?');
    await popup.getByTestId('ask').click();
    // Tokens are streaming: the model is on the device. Destroy the device under it.
    await expect
      .poll(async () => ((await popup.getByTestId('answer').textContent()) ?? '').length, { timeout: 180_000 })
      .toBeGreaterThan(0);
    expect(await hostRequest(popup, { type: 'debugLoseGpu' })).toEqual({ destroyed: true });
    const ended = async (notJobId?: string): Promise<JobView> => {
      const until = Date.now() + 240_000;
      while (Date.now() < until) {
        const state: HostState = await hostRequest(popup, { type: 'getState', tabId });
        if (state.job && state.job.status !== 'running' && state.job.jobId !== notJobId) return state.job;
        await popup.waitForTimeout(200);
      }
      throw new Error('the job did not end');
    };
    const lost = await ended();
    expect(lost.status).toBe('error');
    expect(lost.error?.code).toBe('gpu-lost');
    await expect.poll(() => popup.getByTestId('retry').isVisible()).toBe(true);
    await popup.getByTestId('retry').click();
    const retried = await ended(lost.jobId);
    expect(retried.error).toBeNull();
    expect(retried.status).toBe('done');
    expect(retried.answer.length).toBeGreaterThan(0);
    await popup.close();
    await page.close();
  }, 400_000);
});
