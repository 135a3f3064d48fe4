// Storage errors surface (issue #12 item 7): a full disk while saving a KV snapshot in IndexedDB reaches the user with
// what to do, through the real store (fake-indexeddb whose puts throw QuotaExceededError), the engine's snapshot
// coordinator and the host's state; it is never only logged. The same for a thread the history cannot save. (The model cache's quota error: loader-http and host
// tests, StorageFullError.)
import { memoryStore, openFakeGpu } from './hostFakes';
import 'fake-indexeddb/auto';
import { afterEach, describe, expect, test } from 'vitest';
import type { ModelRunner } from '../../core/engine/runner';
import { SnapshotCoordinator, type SnapshotEvent } from '../../core/engine/snapshots';
import type { Engine } from '../../core/engine/types';
import { HistoryStore } from '../../core/history/historyStore';
import type { EngineOptions, HostEnv } from '../../core/host/env';
import { EngineHost } from '../../core/host/host';
import { historyStorageError, snapshotStorageError } from '../../core/host/storageErrors';
import type { LoadedModel } from '../../core/model/load';
import type { HostEvent } from '../../core/protocol/messages';
import { openIdbSnapshotStore } from '../../core/snapshot';

const realPut = IDBObjectStore.prototype.put;
afterEach(() => {
  IDBObjectStore.prototype.put = realPut;
});

/** Every put into the snapshot database fails as a full disk does. */
function fillTheDisk(dbName: string): void {
  IDBObjectStore.prototype.put = function (this: IDBObjectStore, ...args: Parameters<IDBObjectStore['put']>) {
    if (this.transaction.db.name === dbName)
      throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
    return realPut.apply(this, args);
  };
}

const runner = {
  kvInfo: { dtype: 'f32', numLayers: 2, kvHeads: 1, headDim: 4 },
  readKvLayer: async (_layer: number, n: number) => ({ k: new Uint8Array(n * 16), v: new Uint8Array(n * 16) }),
} as unknown as ModelRunner;
const model = { manifest: { records: [] } } as unknown as LoadedModel;
const ids = Array.from({ length: 80 }, (_, i) => i + 1);

/** A host whose engine factory builds a snapshot coordinator on the IndexedDB store, as the background's does. */
function hostWithSnapshots(dbName: string, historyName?: string) {
  let coordinator: SnapshotCoordinator | null = null;
  const env: HostEnv = {
    openGpu: openFakeGpu,
    createEngine: async (_gpu, o: EngineOptions) => {
      coordinator = new SnapshotCoordinator(await openIdbSnapshotStore(dbName, { maxBytes: o.snapshotBudgetMB << 20 }));
      if (o.onSnapshotEvent) coordinator.onEvent(o.onSnapshotEvent);
      return {
        load: async () => ({
          modelId: 'm',
          architecture: 'llama',
          quantization: 'q4f16_1',
          contextWindow: 4096,
          vocabSize: 200,
          numLayers: 2,
        }),
        generate: async function* () {},
        countTokens: (t: string) => t.length,
        unload: async () => {},
      } satisfies Engine;
    },
    readPage: async () => ({ title: 't', url: 'https://x.org/', text: 'x' }),
    localStore: memoryStore(),
    sessionStore: memoryStore(),
    modelFiles: { cachedBaseUrls: async () => new Set(), delete: async () => 0 },
    clearSnapshots: async () => 0,
    fetchText: async () => '',
    keepAlive: () => {},
    openHistory: historyName ? () => HistoryStore.open({ name: historyName }) : undefined,
  };
  const host = new EngineHost(env);
  const events: HostEvent[] = [];
  host.subscribe((e) => events.push(e));
  return { host, events, coordinator: () => coordinator! };
}

describe('a full disk while saving a snapshot reaches the user', () => {
  test('QuotaExceededError from IndexedDB: the state of every UI carries the message and what to do', async () => {
    const { host, coordinator } = hostWithSnapshots('quota-test-1');
    await host.handle({ type: 'loadModel', modelId: 'Qwen3-0.6B-q4f16_1-MLC' });
    expect(host.state().storageWarning).toBeNull();
    const states: (string | null)[] = [];
    host.subscribe((e) => {
      if (e.type === 'state') states.push(e.state.storageWarning?.message ?? null);
    });
    fillTheDisk('quota-test-1');
    coordinator().save(runner, model, 'm', ids);
    await coordinator().flush();
    expect(coordinator().events.at(-1)).toMatchObject({ kind: 'save-failed', reason: 'quota' });
    const warning = host.state(1).storageWarning;
    expect(warning?.code).toBe('storage-failed');
    expect(warning?.message).toMatch(/disk is full/);
    expect(warning?.message).toMatch(/Free disk space, or lower the snapshot budget in Settings \(now 1024 MB/);
    // Broadcast at once (not only to a UI that asks later).
    expect(states.at(-1)).toBe(warning?.message);
    // Lowering the budget is what the message asks: the warning goes.
    await host.handle({ type: 'setSettings', settings: { snapshotBudgetMB: 128 } });
    expect(host.state().storageWarning).toBeNull();
  });

  test('the disk has room again: the next save that works clears the warning', async () => {
    const { host, coordinator } = hostWithSnapshots('quota-test-2');
    await host.handle({ type: 'loadModel', modelId: 'Qwen3-0.6B-q4f16_1-MLC' });
    fillTheDisk('quota-test-2');
    coordinator().save(runner, model, 'm', ids);
    await coordinator().flush();
    expect(host.state().storageWarning?.code).toBe('storage-failed');
    IDBObjectStore.prototype.put = realPut;
    coordinator().save(runner, model, 'm', ids);
    await coordinator().flush();
    expect(coordinator().events.at(-1)).toMatchObject({ kind: 'saved' });
    expect(host.state().storageWarning).toBeNull();
  });

  test('which save failures are told, and how', () => {
    const failed = (reason: SnapshotEvent['reason'], detail = 'x') =>
      snapshotStorageError({ kind: 'save-failed', tokens: 1200, reason, detail }, 256);
    expect(failed('quota')?.message).toBe(
      "The disk is full. This page's reading (1,200 tokens of KV snapshot) could not be saved, so the page will be " +
        'read again next time. Free disk space, or lower the snapshot budget in Settings (now 256 MB; 0 keeps no snapshots).',
    );
    expect(failed('storage-error', 'UnknownError: disk I/O')?.message).toMatch(/\(UnknownError: disk I\/O\)/);
    // Over the budget by itself, cancelled by Clear or by Stop: nothing for the user to do.
    expect(failed('too-large')).toBeNull();
    expect(failed('cleared')).toBeNull();
    expect(failed('aborted')).toBeNull();
    expect(snapshotStorageError({ kind: 'saved', tokens: 10 }, 256)).toBeNull();
  });
});

describe('a full disk while saving a thread in the history reaches the user', () => {
  test('QuotaExceededError from the history database: the message says what to do; the next save that works clears it', async () => {
    const { host, events } = hostWithSnapshots('quota-test-3', 'history-quota-test');
    fillTheDisk('history-quota-test');
    const a = await host.handle({ type: 'ask', tabId: 1, question: 'q?' });
    await until(() => events.some((e) => e.type === 'done' && e.jobId === a.jobId), 'the first answer');
    await until(() => host.state(1).storageWarning != null, 'the warning');
    expect(host.state(1).storageWarning).toEqual({
      code: 'storage-failed',
      message:
        'The disk is full: this conversation could not be saved in the history (it stays here until the browser ' +
        'restarts). Free disk space, or delete old threads in History.',
    });
    // Room again: the next thread saved clears it.
    IDBObjectStore.prototype.put = realPut;
    const b = await host.handle({ type: 'ask', tabId: 1, question: 'again?' });
    await until(() => events.some((e) => e.type === 'done' && e.jobId === b.jobId), 'the second answer');
    await until(() => host.state(1).storageWarning === null, 'the warning cleared');
    expect(host.state(1).thread?.turns).toHaveLength(2);
    // Another error than a full disk still says what failed.
    expect(historyStorageError(new DOMException('disk I/O', 'UnknownError')).message).toMatch(
      /could not be saved in the history \(UnknownError: disk I\/O\)/,
    );
  });
});

async function until(cond: () => boolean, what: string) {
  for (let i = 0; i < 500; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`timed out waiting for ${what}`);
}
