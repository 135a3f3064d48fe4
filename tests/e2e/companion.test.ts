// The reading companion in Chromium with a real model (the trained retrieval-llama fixture, template raw): a thread
// of follow-ups that reuse the cached prefix, citation chips, Regenerate and edit-and-resend, suggested questions,
// the history (reopen after a browser restart, export as Markdown, delete, clear), a context-menu action and the
// keyboard commands. Screenshots of the thread with citations and of the history view go to test-results/.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { HostState, JobView } from '../../core/protocol/messages';
import { retrievalEvalSet } from '../../core/testing/retrievalTask';
import {
  buildExtension,
  hostRequest,
  type LaunchedExtension,
  launchWithExtension,
  openPopup,
  openTab,
  RESULTS_DIR,
  ROOT,
  type StaticServer,
  startStaticServer,
} from './harness';

const FIXTURE = join(ROOT, 'tests/fixtures/retrieval-llama');
const MODEL_PATH = '/retrieval-llama/';
const LENGTH = 768;

const vocab = (
  JSON.parse(readFileSync(join(FIXTURE, 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> } }
).model.vocab;
const wordOf = new Map(Object.entries(vocab).map(([w, id]) => [id, w]));
const prompt = retrievalEvalSet(LENGTH, 5, 7)[2];
const pageWords = prompt.ids.slice(1, -2).map((id) => wordOf.get(id)!);
/** Each needle of the page: its key and the four value tokens after it. */
const needles = pageWords.flatMap((w, i) =>
  /^k\d+$/.test(w) ? [{ key: w, values: pageWords.slice(i + 1, i + 5) }] : [],
);

function pageHtml(): string {
  const paragraphs: string[] = [];
  for (let i = 0; i < pageWords.length; i += 60) paragraphs.push(`<p>${pageWords.slice(i, i + 60).join(' ')}</p>`);
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Four needles</title></head>
<body><article>${paragraphs.join('\n')}</article></body></html>`;
}

let ext: LaunchedExtension;
let server: StaticServer;
let profile: string;

beforeAll(async () => {
  buildExtension();
  mkdirSync(RESULTS_DIR, { recursive: true });
  profile = mkdtempSync(join(tmpdir(), 'rr-e2e-profile-'));
  server = await startStaticServer({ root: join(ROOT, 'tests/fixtures'), routes: { '/needles.html': pageHtml() } });
  ext = await launchWithExtension({ userDataDir: profile });
});

afterAll(async () => {
  await ext?.close();
  await server?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

async function waitForNewJob(popup: Page, tabId: number, before: string | null): Promise<JobView> {
  const until = Date.now() + 240_000;
  while (Date.now() < until) {
    const state: HostState = await hostRequest(popup, { type: 'getState', tabId });
    if (state.job && state.job.jobId !== before && state.job.status !== 'running') return state.job;
    await popup.waitForTimeout(150);
  }
  throw new Error('the answer did not finish in 240 s');
}

async function lastJobId(popup: Page, tabId: number): Promise<string | null> {
  return (await hostRequest(popup, { type: 'getState', tabId })).job?.jobId ?? null;
}

async function askInUi(popup: Page, tabId: number, q: string): Promise<JobView> {
  const before = await lastJobId(popup, tabId);
  await popup.getByTestId('question').fill(q);
  await popup.getByTestId('ask').click();
  return waitForNewJob(popup, tabId, before);
}

describe('the reading companion', () => {
  let tabId: number;
  let threadId: string;

  test('a thread: a follow-up prefills only its question; citation chips; Regenerate; edit and resend', async () => {
    expect(needles).toHaveLength(4);
    const target = needles.find((n) => n.key === pageWords[prompt.needlePos - 1])!;
    const other = needles.find((n) => n !== target)!;
    const third = needles.find((n) => n !== target && n !== other)!;
    const opened = await openTab(ext, server.url('/needles.html'));
    tabId = opened.tabId;
    const popup = await openPopup(ext, tabId);
    await expect.poll(() => popup.getByTestId('status').textContent()).not.toMatch(/Connecting/);
    // Suggested first questions appear before anything is asked (no model call).
    await expect.poll(() => popup.getByTestId('suggestion').count()).toBeGreaterThan(0);
    const entry = await hostRequest(popup, { type: 'addCustomModel', baseUrl: server.url(MODEL_PATH) });
    await hostRequest(popup, {
      type: 'setSettings',
      settings: {
        modelId: entry.modelId,
        contextWindow: 2048,
        maxAnswerTokens: 4,
        fastMode: false,
        snapshotBudgetMB: 0,
      },
    });

    const first = await askInUi(popup, tabId, `? ${target.key}`);
    expect(first.answer.trim()).toBe(target.values.join(' '));
    expect(first.stats!.promptTokens).toBe(LENGTH);

    // The follow-up: document + turn 1 (question and the answer's generated ids) + "? kN". Everything up to the
    // answer's last token is still in the KV cache (the last generated token was never fed back).
    const second = await askInUi(popup, tabId, `? ${other.key}`);
    expect(second.threadId).toBe(first.threadId);
    expect(second.answer.trim()).toBe(other.values.join(' '));
    expect(second.stats!.promptTokens).toBe(LENGTH + 4 + 2);
    expect(second.stats!.reusedTokens).toBe(LENGTH + 4 - 1);
    expect(second.stats!.prefillTokens).toBe(3);
    expect(second.stats!.restoredTokens).toBe(0);
    await expect.poll(() => popup.getByTestId('turn').count()).toBe(2);
    await expect.poll(() => popup.getByTestId('citation').count()).toBe(2);
    expect(await popup.getByTestId('answer').count()).toBe(1);
    expect(await popup.getByTestId('stats').count()).toBe(1);
    expect(await popup.getByTestId('answer').textContent()).toBe(other.values.join(' '));
    expect(await popup.getByTestId('stats').textContent()).toMatch(/prefilled 3 · 771 reused from memory/);
    await popup.screenshot({ path: join(RESULTS_DIR, 'companion-thread-citations.png'), fullPage: true });
    threadId = second.threadId!;

    // Regenerate: the same prompt again replaces the last turn; nothing is left to prefill but the last token.
    let before = await lastJobId(popup, tabId);
    await popup.getByTestId('regenerate').click();
    const again = await waitForNewJob(popup, tabId, before);
    expect(again.answer.trim()).toBe(other.values.join(' '));
    expect(again.stats!.prefillTokens).toBe(1);
    await expect
      .poll(() => popup.getByTestId('status').textContent())
      .toMatch(/773 tokens reused from memory, nothing to prefill/);
    await expect.poll(() => popup.getByTestId('turn').count()).toBe(2);

    // Edit and resend: the last question comes back into the box; the edited one replaces the last turn.
    await popup.getByTestId('edit-question').click();
    expect(await popup.getByTestId('question').inputValue()).toBe(`? ${other.key}`);
    await expect.poll(() => popup.getByTestId('editing').count()).toBe(1);
    before = await lastJobId(popup, tabId);
    await popup.getByTestId('question').fill(`? ${third.key}`);
    await popup.getByTestId('ask').click();
    const edited = await waitForNewJob(popup, tabId, before);
    expect(edited.answer.trim()).toBe(third.values.join(' '));
    const state = await hostRequest(popup, { type: 'getState', tabId });
    expect(state.thread?.turns.map((t) => t.question)).toEqual([`? ${target.key}`, `? ${third.key}`]);
    await expect.poll(() => popup.getByTestId('turn').count()).toBe(2);

    // Copy (the whole answer) hands the answer's text to the clipboard (stubbed: headless Chromium has no clipboard).
    await popup.evaluate(() => {
      const w = window as unknown as { copied: string[] };
      w.copied = [];
      Object.defineProperty(navigator.clipboard, 'writeText', { value: async (t: string) => void w.copied.push(t) });
    });
    await popup.getByTestId('copy').last().click();
    await expect.poll(() => popup.getByTestId('copy').last().textContent()).toBe('Copied');
    expect(await popup.evaluate(() => (window as unknown as { copied: string[] }).copied)).toEqual([
      third.values.join(' '),
    ]);
    await popup.close();
  });

  test('New thread starts over (the document prefix is still reused) and the history lists both threads', async () => {
    const popup = await openPopup(ext, tabId);
    await expect.poll(() => popup.getByTestId('turn').count()).toBe(2);
    await popup.getByTestId('new-thread').click();
    await expect.poll(() => popup.getByTestId('turn').count()).toBe(0);
    const job = await askInUi(popup, tabId, `? ${needles[3].key}`);
    expect(job.threadId).not.toBe(threadId);
    expect(job.answer.trim()).toBe(needles[3].values.join(' '));
    // BOS and the page's words were in the cache (the pre-read the popup started leaves out the page's last word,
    // which a raw-template prompt has no token after): at most that word and the question ran.
    expect(job.stats!.reusedTokens).toBeGreaterThanOrEqual(LENGTH - 3);
    expect(job.stats!.prefillTokens).toBeLessThanOrEqual(3);

    await popup.getByTestId('history-toggle').click();
    const items = popup.getByTestId('history-item');
    await expect.poll(() => items.count()).toBe(2);
    expect(await popup.getByTestId('history').textContent()).toMatch(/Four needles/);
    await popup.screenshot({ path: join(RESULTS_DIR, 'companion-history.png'), fullPage: true });

    // Export the older thread as Markdown.
    const older = popup.locator(`[data-testid="history-item"][data-thread-id="${threadId}"]`);
    const download = popup.waitForEvent('download');
    await older.getByTestId('history-export').click();
    const file = await download;
    expect(file.suggestedFilename()).toMatch(/^Four-needles-\d{4}-\d\d-\d\d\.md$/);
    const markdown = readFileSync((await file.path())!, 'utf8');
    expect(markdown).toContain(`## Q: ? ${needles.find((n) => n.key === pageWords[prompt.needlePos - 1])!.key}`);
    expect(markdown).toMatch(/Citations:\n- "v\d+ v\d+ v\d+ v\d+" \(in the page\)/);
    await popup.close();
  });

  test('the history survives a browser restart: reopen a thread, delete one, clear all', async () => {
    await ext.close();
    ext = await launchWithExtension({ userDataDir: profile });
    const { tabId: fresh } = await openTab(ext, server.url('/needles.html'));
    const popup = await openPopup(ext, fresh);
    await expect.poll(() => popup.getByTestId('status').textContent()).not.toMatch(/Connecting/);
    await popup.getByTestId('history-toggle').click();
    // The tab is new: "This page" knows the page from the tab's address once the extension may read it; "All" always.
    await popup.getByTestId('history-all').click();
    await expect.poll(() => popup.getByTestId('history-item').count()).toBe(2);
    await popup
      .locator(`[data-testid="history-item"][data-thread-id="${threadId}"]`)
      .getByTestId('history-open')
      .click();
    await expect.poll(() => popup.getByTestId('turn').count()).toBe(2);
    await expect.poll(() => popup.getByTestId('citation').count()).toBe(2);
    const state = await hostRequest(popup, { type: 'getState', tabId: fresh });
    expect(state.thread?.threadId).toBe(threadId);

    await popup.getByTestId('history-toggle').click();
    await popup.getByTestId('history-all').click();
    await expect.poll(() => popup.getByTestId('history-item').count()).toBe(2);
    await popup
      .locator(`[data-testid="history-item"][data-thread-id="${threadId}"]`)
      .getByTestId('history-delete')
      .click();
    await expect.poll(() => popup.getByTestId('history-item').count()).toBe(1);
    await popup.getByTestId('history-clear').click();
    await expect.poll(() => popup.getByTestId('history-empty').count()).toBe(1);
    expect((await hostRequest(popup, { type: 'listHistory' })).threads).toEqual([]);
    await popup.close();
  });

  test('context menu "Summarize the selection" starts a job on the selection; commands are declared', async () => {
    const popup = await openPopup(ext);
    const { tabId: tab } = await openTab(ext, server.url('/needles.html'));
    const selection = pageWords.slice(0, 40).join(' ');
    const jobId = await ext.serviceWorker.evaluate(
      ([id, t, sel]) =>
        (
          globalThis as unknown as {
            __recycledReaderMenu(i: string, o: unknown): Promise<string | null>;
          }
        ).__recycledReaderMenu(id as string, { tab: t, selection: sel }),
      [
        'rr-summarize-selection',
        { id: tab, title: 'Four needles', url: server.url('/needles.html') },
        selection,
      ] as const,
    );
    expect(jobId).toMatch(/^job-/);
    const job = await waitForNewJob(popup, tab, null);
    expect(job.kind).toBe('summarize');
    expect(job.pageTitle).toBe('Selection from Four needles');
    expect(job.status).toBe('done');
    const commands = await ext.serviceWorker.evaluate(async () =>
      (
        await (
          globalThis as unknown as { chrome: { commands: { getAll(): Promise<{ name: string; shortcut: string }[]> } } }
        ).chrome.commands.getAll()
      ).map((c) => c.name),
    );
    expect(commands).toEqual(expect.arrayContaining(['_execute_action', 'open-side-panel']));
    await popup.close();
  });
});
