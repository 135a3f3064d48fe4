// A model with a 512-token context (the trained stories260k fixture) answers about a page far longer than its window
// with the default 512-token answer setting: the answer budget shrinks and the page is chunked, instead of the
// "too small for the question and a 512-token answer" error.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { HostState, JobView } from '../../core/protocol/messages';
import { longArticleHtml } from './engineFixtures';
import {
  buildExtension,
  hostRequest,
  type LaunchedExtension,
  launchWithExtension,
  openPopup,
  openTab,
  ROOT,
  type StaticServer,
  startStaticServer,
} from './harness';

let ext: LaunchedExtension;
let server: StaticServer;

beforeAll(async () => {
  buildExtension();
  server = await startStaticServer({
    root: join(ROOT, 'tests/fixtures'),
    routes: { '/long.html': longArticleHtml(900) },
  });
  ext = await launchWithExtension();
}, 400_000);

afterAll(async () => {
  await ext?.close();
  await server?.close();
});

describe('small context windows in the extension', () => {
  test('stories260k (512-token window): a question about a 900-word page gets an answer, not an error', async () => {
    const { page, tabId } = await openTab(ext, server.url('/long.html'));
    const popup = await openPopup(ext, tabId);
    const entry = await hostRequest(popup, { type: 'addCustomModel', baseUrl: server.url('/stories260k/') });
    await hostRequest(popup, {
      type: 'setSettings',
      settings: { modelId: entry.modelId, maxAnswerTokens: 512, contextWindow: 8192, snapshotBudgetMB: 0 },
    });
    const { jobId } = await hostRequest(popup, { type: 'ask', tabId, question: 'Who is Sir Walter Elliot?' });
    let job: JobView | null = null;
    const until = Date.now() + 240_000;
    while (Date.now() < until) {
      const state: HostState = await hostRequest(popup, { type: 'getState', tabId });
      if (state.job?.jobId === jobId && state.job.status !== 'running') {
        job = state.job;
        break;
      }
      await popup.waitForTimeout(200);
    }
    expect(job).not.toBeNull();
    expect(job?.error).toBeNull();
    expect(job?.status).toBe('done');
    expect(job?.coverage?.strategy).toBe('retrieval');
    expect(job?.coverage?.fraction).toBeLessThan(1);
    const stats = job?.stats;
    expect(stats?.generatedTokens).toBeGreaterThan(0);
    // Question, document and answer all fit the model's 512 positions.
    expect((stats?.promptTokens ?? 0) + (stats?.generatedTokens ?? 0)).toBeLessThanOrEqual(512);
    await popup.close();
    await page.close();
  }, 300_000);
});
