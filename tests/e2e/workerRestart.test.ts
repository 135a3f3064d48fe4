// The service worker stopped mid-answer (MV3 stops it at will; here through CDP ServiceWorker.stopWorker): the popup
// reconnects by itself, shows the partial answer as interrupted with Continue, and Continue finishes it from the
// stored prompt + the answer so far, with the page's KV restored from its snapshot.
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import type { HostState, JobView } from '../../core/protocol/messages';
import { popupWithTinyChat, useTinyChatExtension } from './engineFixtures';
import { hostRequest, RESULTS_DIR, restartServiceWorker } from './harness';

declare const chrome: { storage: { session: { get(key: string): Promise<Record<string, unknown>> } } };

const t = useTinyChatExtension('rr-e2e-restart-');

describe('service worker stopped mid-answer', () => {
  test('the partial answer is shown as interrupted; Continue completes it', async () => {
    const { page, tabId, popup } = await popupWithTinyChat(t, {
      maxAnswerTokens: 1000,
      fastMode: false,
      snapshotBudgetMB: 64,
    });
    await popup.getByTestId('question').fill('Who is the keeper?');
    await popup.getByTestId('ask').click();
    // The answer streams and the worker has saved some of it (at most every 500 ms): stop the worker now.
    const savedIds = () =>
      popup.evaluate(async () => {
        const r = (await chrome.storage.session.get('runningJob')).runningJob as { answerIds?: number[] } | null;
        return r?.answerIds?.length ?? 0;
      });
    await expect.poll(savedIds, { timeout: 180_000, interval: 50 }).toBeGreaterThanOrEqual(3);
    const shownBeforeStop = ((await popup.getByTestId('answer').textContent()) ?? '').length;
    expect(shownBeforeStop).toBeGreaterThan(0);
    // Woken by the popup itself: its port closed, it reconnects, and the new worker shows the interrupted answer.
    await restartServiceWorker(t.ext, popup, () =>
      expect.poll(() => popup.getByTestId('continue').isVisible(), { timeout: 60_000 }).toBe(true),
    );
    const state: HostState = await hostRequest(popup, { type: 'getState', tabId });
    const cut = state.job!;
    expect(cut.status).toBe('interrupted');
    expect(cut.answer.length).toBeGreaterThan(0);
    expect(state.runningJobId).toBeNull();
    await expect.poll(() => popup.getByTestId('status').textContent()).toMatch(/Interrupted/);
    expect(((await popup.getByTestId('answer').textContent()) ?? '').length).toBeGreaterThan(0);
    await popup.screenshot({ path: join(RESULTS_DIR, 'worker-restart-interrupted.png') });

    await popup.getByTestId('continue').click();
    let done: JobView | null = null;
    for (const until = Date.now() + 300_000; Date.now() < until && !done; await popup.waitForTimeout(200)) {
      const s: HostState = await hostRequest(popup, { type: 'getState', tabId });
      if (s.job?.jobId === cut.jobId && s.job.status !== 'running') done = s.job;
    }
    expect(done, 'the continued answer did not end').not.toBeNull();
    expect(done!.error).toBeNull();
    expect(done!.status).toBe('done');
    // The final answer is the interrupted one followed by its continuation.
    expect(done!.answer.startsWith(cut.answer)).toBe(true);
    expect(done!.answer.length).toBeGreaterThan(cut.answer.length);
    // The fresh worker had nothing in memory: the page's KV came back from the snapshot saved before the stop.
    expect(done!.stats?.restoredTokens).toBeGreaterThan(64);
    await expect.poll(() => popup.getByTestId('continue').count()).toBe(0);
    await expect.poll(() => popup.getByTestId('status').textContent()).toMatch(/Done/);
    const thread = (await hostRequest(popup, { type: 'getState', tabId })).thread;
    expect(thread?.turns.map((t) => t.answer)).toEqual([done!.answer]);
    await popup.screenshot({ path: join(RESULTS_DIR, 'worker-restart-continued.png') });
    await popup.close();
    await page.close();
  }, 600_000);
});
