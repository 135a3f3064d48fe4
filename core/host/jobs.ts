// Job records: the last job of each tab (what a reopened popup shows), and what survives a worker restart.
import type { GenerationStats } from '../engine/types';
import type { DoneStats, JobView } from '../protocol/messages';
import { isRecord } from '../protocol/schema';

export class JobStore {
  private readonly byTab = new Map<number, JobView>();

  constructor(private readonly maxTabs = 20) {}

  put(job: JobView): void {
    this.byTab.delete(job.tabId); // re-insert: Map order = recency
    this.byTab.set(job.tabId, job);
    while (this.byTab.size > this.maxTabs) this.byTab.delete(this.byTab.keys().next().value as number);
  }

  /** The tab shows no last job any more (a new or reopened thread). */
  forget(tabId: number): void {
    this.byTab.delete(tabId);
  }

  forTab(tabId: number): JobView | null {
    return this.byTab.get(tabId) ?? null;
  }

  byId(jobId: string): JobView | null {
    for (const j of this.byTab.values()) if (j.jobId === jobId) return j;
    return null;
  }

  latest(): JobView | null {
    let last: JobView | null = null;
    for (const j of this.byTab.values()) last = j;
    return last;
  }

  /** Finished jobs, oldest first: what goes to chrome.storage.session. */
  finished(): JobView[] {
    return [...this.byTab.values()].filter((j) => j.status !== 'running');
  }

  /** Restores persisted jobs; skips records that do not look like jobs (another version wrote them). */
  restore(raw: unknown): number {
    if (!Array.isArray(raw)) return 0;
    let n = 0;
    for (const j of raw) {
      if (!isRecord(j) || typeof j.jobId !== 'string' || typeof j.tabId !== 'number' || typeof j.answer !== 'string')
        continue;
      if (j.status === 'running') continue;
      this.put(j as unknown as JobView);
      n++;
    }
    return n;
  }
}

/**
 * The engine's statistics as the UI shows them; the fast-mode speed-up is measured, not assumed. With
 * `fullMsPerStep` (the mean decode step of an answer with fast mode off, same model and window) it is that over this
 * answer's mean step. Without one it falls back to this answer's own full steps over its mean step, which flatters
 * fast mode: its full steps also pay for the top-K selection.
 */
export function doneStatsFrom(
  s: GenerationStats,
  fastMode: boolean,
  partSummaries = 0,
  fullMsPerStep?: number,
): DoneStats {
  const a = s.attention;
  let speedup: number | null = null;
  let readFraction: number | null = null;
  if (fastMode && a && a.policy === 'recycled') {
    if (fullMsPerStep !== undefined && fullMsPerStep > 0 && s.msPerStep > 0) speedup = fullMsPerStep / s.msPerStep;
    else if (a.msPerFullStep > 0 && s.msPerStep > 0) speedup = a.msPerFullStep / s.msPerStep;
    if (a.meanPositionsFull > 0) readFraction = a.meanPositionsRead / a.meanPositionsFull;
  }
  return {
    promptTokens: s.promptTokens,
    generatedTokens: s.generatedTokens,
    prefillMs: s.prefillMs,
    decodeMs: s.decodeMs,
    prefillTokensPerSec: s.prefillTokensPerSec,
    decodeTokensPerSec: s.decodeTokensPerSec,
    stopReason: s.stopReason,
    prefillTokens: s.prefillTokens,
    // The engine counts memory and snapshot together; snapshotTokens says how many came from the snapshot.
    restoredTokens: s.snapshotTokens ?? 0,
    reusedTokens: s.restoredTokens - (s.snapshotTokens ?? 0),
    fastMode,
    fastModeActive: fastMode ? (s.fastModeActive ?? null) : null,
    fastModePredicted: fastMode ? (s.fastModePredictedRatio ?? null) : null,
    fastModeSpeedup: speedup,
    positionsReadFraction: readFraction,
    attentionPolicy: a?.policy ?? null,
    fullSteps: a ? Math.max(0, ...a.fullStepsPerLayer) : null,
    partSummaries,
  };
}
