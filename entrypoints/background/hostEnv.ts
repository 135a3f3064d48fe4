// The browser side of the engine host: storage, the model cache, page access, keep-alive.

import { HistoryStore } from '../../core/history/historyStore';
import type { HostEnv, KeyValueStore } from '../../core/host/env';
import { openIdbSnapshotStore } from '../../core/snapshot';
import { createGpuContext } from '../../kernels/gpuContext';
import { createEngine, currentSnapshotStore } from './engineFactory';
import { readPage } from './pageReader';
import { showCitation } from './showCitation';

// WebLLM's Cache API stores, keyed by full URL: weights and configs are shared with WebLLM.
const MODEL_CACHES = ['webllm/model', 'webllm/config'];
const KEEP_ALIVE_MS = 20_000;

function storageArea(area: 'local' | 'session'): KeyValueStore {
  const real = browser.storage[area];
  if (!real) {
    // Firefox before 115 has no storage.session: keep it in memory (lost with the background page, as intended).
    const memory = new Map<string, unknown>();
    return { get: async (k) => memory.get(k), set: async (k, v) => void memory.set(k, v) };
  }
  return {
    get: async (key) => (await real.get(key))[key],
    set: async (key, value) => real.set({ [key]: value }),
  };
}

function folderOf(url: string): string {
  return url.slice(0, url.lastIndexOf('/') + 1);
}

let keepAliveTimer: ReturnType<typeof setInterval> | null = null;
let keepAliveUsers = 0;

function keepAlive(active: boolean): void {
  keepAliveUsers = Math.max(0, keepAliveUsers + (active ? 1 : -1));
  if (keepAliveUsers > 0 && keepAliveTimer === null) {
    // Any extension API call resets the MV3 worker's idle timer.
    keepAliveTimer = setInterval(() => void browser.runtime.getPlatformInfo(), KEEP_ALIVE_MS);
  } else if (keepAliveUsers === 0 && keepAliveTimer !== null) {
    clearInterval(keepAliveTimer);
    keepAliveTimer = null;
  }
}

export function createBrowserHostEnv(): HostEnv {
  return {
    openGpu: () => createGpuContext(navigator.gpu),
    createEngine,
    readPage,
    localStore: storageArea('local'),
    sessionStore: storageArea('session'),
    modelFiles: {
      async cachedBaseUrls() {
        const out = new Set<string>();
        for (const name of MODEL_CACHES) {
          if (!(await caches.has(name))) continue;
          for (const req of await (await caches.open(name)).keys()) out.add(folderOf(req.url));
        }
        return out;
      },
      async delete(baseUrl) {
        let n = 0;
        for (const name of MODEL_CACHES) {
          if (!(await caches.has(name))) continue;
          const cache = await caches.open(name);
          for (const req of await cache.keys()) if (req.url.startsWith(baseUrl) && (await cache.delete(req))) n++;
        }
        return n;
      },
    },
    async clearSnapshots() {
      const live = currentSnapshotStore();
      if (live) {
        // The engine's own store: clear() cancels its saves in flight, so none lands after the clear.
        const count = (await live.list()).length;
        await live.clear();
        return count;
      }
      const store = await openIdbSnapshotStore();
      try {
        const count = (await store.list()).length;
        await store.clear();
        return count;
      } finally {
        await store.close();
      }
    },
    async snapshotBudgetChanged(budgetMB) {
      await currentSnapshotStore()?.setMaxBytes(budgetMB * 1024 * 1024);
    },
    async fetchText(url) {
      const response = await fetch(url, { cache: 'no-store' });
      if (!response.ok) throw new Error(`HTTP ${response.status} ${response.statusText}`);
      return response.text();
    },
    keepAlive,
    openHistory: () => HistoryStore.open(),
    showCitation,
    async tabUrl(tabId) {
      return (await browser.tabs.get(tabId)).url ?? null;
    },
    log: (message, error) => console.warn(`[Recycled Reader] ${message}`, error ?? ''),
  };
}
