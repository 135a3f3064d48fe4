// What a pre-read does: read the tab's page and, when it fits the context whole, prefill the prompt an Ask on it will
// start with (the document and the thread so far), so that Ask only runs its question. When a pre-read runs, and
// what stops it, is JobRunner's (jobRunner.ts).
import type { Engine, GenerationStats } from '../engine/types';
import type { HostEvent, PreReadView } from '../protocol/messages';
import type { Settings } from '../protocol/settings';
import { fastModePolicy } from './generation';
import type { Models } from './models';
import type { PageReads } from './pageReads';
import { planJobPromptInSlices, SUMMARY_REQUEST } from './prompt';
import type { ThreadBook } from './threads';

/** What a pre-read uses of the host (JobRunner passes its own deps). */
export interface PreReadDeps {
  pageReads: PageReads;
  threads: ThreadBook;
  models: Pick<Models, 'contextWindow' | 'template'>;
  emit(event: HostEvent): void;
}

export type PreReadOutcome = Pick<PreReadView, 'status' | 'cachedTokens' | 'prefilledTokens' | 'reason'>;

/** Reads and prefills one tab's page; throws when `signal` aborts it or the work fails. */
export async function preReadPage(
  deps: PreReadDeps,
  engine: Engine,
  settings: Settings,
  tabId: number,
  userAction: boolean,
  signal: AbortSignal,
): Promise<PreReadOutcome> {
  const skipped = (reason: string): PreReadOutcome => ({
    status: 'skipped',
    cachedTokens: 0,
    prefilledTokens: 0,
    reason,
  });
  const page = await deps.pageReads.read(tabId, { userAction, signal });
  if (!page.text.trim()) return skipped('the page has no text');
  signal.throwIfAborted();
  const thread = await deps.threads.threadForJob(tabId, page);
  const contextWindow = deps.models.contextWindow ?? settings.contextWindow;
  const raw = deps.models.template === 'raw';
  // Planned as a summary: no question is needed to know whether the page fits whole (then its text is the same).
  const count = (t: string) => engine.countTokens(t);
  const prompt = await planJobPromptInSlices('summarize', page, '', contextWindow, settings.maxAnswerTokens, count, {
    raw,
    signal,
  });
  if (prompt.strategy !== 'whole') return skipped('the page is read in parts per question');
  signal.throwIfAborted();
  // The document and the thread so far, then an empty question: everything but that is what Ask will reuse.
  const turns = deps.threads.planTurns(thread, Math.floor(contextWindow / 4), count, (t) =>
    t.kind === 'summarize' ? SUMMARY_REQUEST : t.question,
  );
  let stats: GenerationStats | null = null;
  for await (const ev of engine.generate(
    { messages: [...turns.messages, { role: 'user', content: '' }], system: prompt.system, document: prompt.document },
    // Under the policy Ask will run: where fast mode pays off at this length, the engine builds its decode kernels now
    // (their pipelines compile during the pre-read, not in the first answer: 5.3 s for the small model on SwiftShader).
    { maxTokens: 0, signal, attention: fastModePolicy(settings), fastModeBreakEven: !settings.fastModeAlways },
  )) {
    if (ev.type === 'prefill-progress')
      deps.emit({
        type: 'progress',
        jobId: null,
        tabId,
        progress: {
          stage: 'prefill',
          label: 'Pre-reading the page',
          prefill: { fraction: ev.done / Math.max(1, ev.total), done: ev.done, total: ev.total },
        },
      });
    else if (ev.type === 'done') stats = ev.stats;
  }
  signal.throwIfAborted();
  // The prompt's last token always runs with the question (a decode step): the rest is in the cache now.
  const s = stats as GenerationStats | null;
  return {
    status: 'done',
    cachedTokens: s ? s.promptTokens - 1 : 0,
    prefilledTokens: s ? Math.max(0, s.prefillTokens - 1) : 0,
    reason: null,
  };
}
