// The GPU device lost mid-answer in the extension's service worker: the job ends with a clear gpu-lost error, the
// popup offers Retry, and Retry gets a new device, reloads the model and answers.
import { describe, expect, test } from 'vitest';
import type { HostState, JobView } from '../../core/protocol/messages';
import { popupWithTinyChat, useTinyChatExtension } from './engineFixtures';
import { hostRequest } from './harness';

const t = useTinyChatExtension('rr-e2e-lost-');

describe('GPU device lost in the extension', () => {
  test('mid-answer: gpu-lost error with Retry; Retry reloads on a new device and answers', async () => {
    const { page, tabId, popup } = await popupWithTinyChat(t, {
      maxAnswerTokens: 300,
      fastMode: false,
      snapshotBudgetMB: 0,
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
