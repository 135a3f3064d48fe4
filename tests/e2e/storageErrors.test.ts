// Storage errors reach the user in the extension (issue #12 item 7). The disk cannot be filled for real here, so the
// worker's storage calls fail as a full disk makes them fail: Cache.put rejects and IndexedDB put throws a
// QuotaExceededError DOMException (patched in the service worker's global scope); everything after that is the
// product's own path (model loader / snapshot store → host → port → popup).
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import type { HostState, JobView } from '../../core/protocol/messages';
import { popupWithTinyChat, useTinyChatExtension } from './engineFixtures';
import { hostRequest, RESULTS_DIR } from './harness';

const t = useTinyChatExtension('rr-e2e-quota-');

/** The service worker's storage writes fail as on a full disk ('cache': Cache API; 'snapshots': the KV snapshot DB). */
async function fillTheDisk(what: 'cache' | 'snapshots' | 'none'): Promise<void> {
  await t.ext.serviceWorker.evaluate((what) => {
    const g = globalThis as unknown as {
      __realPut?: { cache: Cache['put']; idb: IDBObjectStore['put'] };
    };
    g.__realPut ??= { cache: Cache.prototype.put, idb: IDBObjectStore.prototype.put };
    const real = g.__realPut;
    const full = () => new DOMException('The quota has been exceeded.', 'QuotaExceededError');
    Cache.prototype.put =
      what === 'cache'
        ? () => Promise.reject(full())
        : function (this: Cache, ...a: Parameters<Cache['put']>) {
            return real.cache.apply(this, a);
          };
    IDBObjectStore.prototype.put = function (this: IDBObjectStore, ...a: Parameters<IDBObjectStore['put']>) {
      if (what === 'snapshots' && this.transaction.db.name === 'recycled-reader-snapshots') throw full();
      return real.idb.apply(this, a);
    };
  }, what);
}

async function ended(popup: import('playwright-core').Page, tabId: number, notJobId?: string): Promise<JobView> {
  for (const until = Date.now() + 240_000; Date.now() < until; await popup.waitForTimeout(200)) {
    const s: HostState = await hostRequest(popup, { type: 'getState', tabId });
    if (s.job && s.job.status !== 'running' && s.job.jobId !== notJobId) return s.job;
  }
  throw new Error('the job did not end');
}

describe('storage errors in the extension', () => {
  test('a full disk while keeping the model, then while saving a snapshot: each says what to do', async () => {
    const { page, tabId, popup } = await popupWithTinyChat(t, {
      maxAnswerTokens: 8,
      fastMode: false,
      snapshotBudgetMB: 64,
    });

    // The model cache (Cache API) is full: the job ends with storage-failed and the popup says what to do.
    await fillTheDisk('cache');
    await popup.getByTestId('question').fill('Who is the keeper?');
    await popup.getByTestId('ask').click();
    const cacheFull = await ended(popup, tabId);
    expect(cacheFull.status).toBe('error');
    expect(cacheFull.error?.code).toBe('storage-failed');
    expect(cacheFull.error?.message).toMatch(/Not enough storage to keep the model/);
    await expect
      .poll(() => popup.getByTestId('status').textContent())
      .toMatch(/Error: Not enough storage.*Free disk space, or delete models you do not use in Settings/);
    await popup.screenshot({ path: join(RESULTS_DIR, 'storage-cache-full.png') });

    // Room for the model, none for snapshots: the answer comes, and the popup says the snapshot was not kept.
    await fillTheDisk('snapshots');
    await popup.getByTestId('question').fill('Who is the keeper?');
    await popup.getByTestId('ask').click();
    const answered = await ended(popup, tabId, cacheFull.jobId);
    expect(answered.status).toBe('done');
    await expect
      .poll(() => popup.getByTestId('storage-warning').textContent(), { timeout: 60_000 })
      .toMatch(/The disk is full\. .*Free disk space, or lower the snapshot budget in Settings \(now 64 MB/);
    expect(await popup.getByTestId('storage-warning').getAttribute('data-code')).toBe('storage-failed');
    await popup.screenshot({ path: join(RESULTS_DIR, 'storage-snapshot-full.png') });
    // Lowering the budget (what the message asks) clears it.
    await fillTheDisk('none');
    await hostRequest(popup, { type: 'setSettings', settings: { snapshotBudgetMB: 32 } });
    await expect.poll(() => popup.getByTestId('storage-warning').count()).toBe(0);
    await popup.close();
    await page.close();
  }, 600_000);
});
