// What the host needs from its surroundings. The background (Chrome service worker, Firefox extension page) passes
// one that touches browser APIs; tests and Node pass their own.

import type { GpuContext } from '../../kernels/gpuContext';
import type { SnapshotEvent } from '../engine/snapshots';
import type { Engine } from '../engine/types';
import type { Citation, PageContent } from '../protocol/messages';
import type { ThreadHistory } from './threads';

export interface KeyValueStore {
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown): Promise<void>;
}

/** What the engine factory needs from the settings (read when the engine is created). */
export interface EngineOptions {
  /** Byte budget of the KV snapshot store, in MiB; 0 = no snapshots. */
  snapshotBudgetMB: number;
  /** What the snapshot store did (a save that failed on a full disk reaches the user through the host). */
  onSnapshotEvent?(event: SnapshotEvent): void;
}

export interface ReadPageOptions {
  /**
   * The user asked for this read (Ask, Summarize). Only then may the background download a URL the page supplied
   * (a PDF viewer's `?file=`); an automatic read never fetches one.
   */
  userAction?: boolean;
  signal?: AbortSignal;
}

export interface HostEnv {
  /** The GPU device; throws GpuUnavailableError with the reason when there is none. */
  openGpu(): Promise<GpuContext>;
  /** The engine factory (entrypoints/background/engineFactory.ts). May throw ProtocolError('engine-unavailable'). */
  createEngine(gpu: GpuContext, opts: EngineOptions): Promise<Engine>;
  /** The tab's readable text; throws ProtocolError('page-unreadable') with the reason. */
  readPage(tabId: number, opts?: ReadPageOptions): Promise<PageContent>;
  /** Survives browser restarts (settings). */
  localStore: KeyValueStore;
  /** Survives worker restarts within a browser session (finished jobs). */
  sessionStore: KeyValueStore;
  /** The browser's model file cache (shared with WebLLM). */
  modelFiles: { cachedBaseUrls(): Promise<Set<string>>; delete(baseUrl: string): Promise<number> };
  /** Deletes every snapshot; a save in flight is cancelled, never written after the clear. */
  clearSnapshots(): Promise<number>;
  /** The snapshot budget setting changed: apply it at once (evict above it; 0 = keep none). */
  snapshotBudgetChanged?(budgetMB: number): Promise<void>;
  fetchText(url: string): Promise<string>;
  /** Keep the worker alive while work runs (MV3 stops idle workers after 30 s). */
  keepAlive(active: boolean): void;
  log?(message: string, error?: unknown): void;
  /** Where threads persist (IndexedDB in the extension); without it threads live as long as the host. */
  openHistory?(): Promise<ThreadHistory>;
  /** Scrolls the tab to a cited passage and highlights it, or opens the PDF at the cited page. */
  showCitation?(tabId: number, pageUrl: string, citation: Citation): Promise<{ shown: boolean; reason?: string }>;
  /** The tab's address, when the extension may know it (the history's "this page" for a tab without a thread). */
  tabUrl?(tabId: number): Promise<string | null>;
}
