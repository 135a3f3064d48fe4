// The popup after a worker restart (issue #12 item 5): when its connection comes back it asks for the state again,
// shows the answer the restart cut short as interrupted, offers Continue (not Regenerate/Edit, which would replace
// the thread's previous turn), and Continue sends continueAnswer for that job.
import { parseHTML } from 'linkedom';
import { render } from 'preact';
import { act } from 'preact/test-utils';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { App } from '../../components/App';
import type { HostApi } from '../../core/protocol/client';
import type { HostState, JobView, Request } from '../../core/protocol/messages';
import { DEFAULT_SETTINGS } from '../../core/protocol/settings';

let container: HTMLElement;
beforeEach(() => {
  const { window } = parseHTML('<!doctype html><html><body><div id="root"></div></body></html>');
  Object.assign(globalThis, { window, document: window.document, navigator: window.navigator });
  container = window.document.getElementById('root') as unknown as HTMLElement;
});
afterEach(() => {
  render(null, container);
});

const job = (over: Partial<JobView>): JobView => ({
  jobId: 'job-1',
  tabId: 7,
  kind: 'ask',
  question: 'Who keeps the lamp?',
  status: 'running',
  stage: 'generating',
  answer: 'The keeper',
  pageTitle: 'Gull Rock',
  pageUrl: 'https://example.org/a',
  modelId: 'm',
  coverage: null,
  progress: null,
  stats: null,
  error: null,
  startedAt: 0,
  finishedAt: null,
  threadId: null,
  citations: [],
  droppedTurns: 0,
  ...over,
});

const state = (j: JobView, running: boolean): HostState => ({
  protocolVersion: 1,
  settings: DEFAULT_SETTINGS,
  defaultModelId: 'm',
  gpu: { state: 'ok', adapter: 'test', f16: false },
  engine: { state: 'ready', modelId: 'm', contextWindow: 4096, error: null },
  job: j,
  runningJobId: running ? j.jobId : null,
  lastFastModeSpeedup: null,
  tabId: 7,
  thread: null,
  preRead: null,
});

async function settle() {
  for (let i = 0; i < 5; i++) await act(async () => await new Promise((r) => setTimeout(r, 0)));
}

const byTestId = (id: string) => container.querySelector(`[data-testid="${id}"]`) as unknown as HTMLElement | null;

test('reconnected after a worker restart: the interrupted answer with Continue, which sends continueAnswer', async () => {
  let current = state(job({}), true);
  const requests: Request[] = [];
  const reconnectListeners = new Set<() => void>();
  const api: HostApi = {
    async request(r) {
      requests.push(r as Request);
      if (r.type === 'getState') return current as never;
      if (r.type === 'listModels') return { models: [] } as never;
      if (r.type === 'continueAnswer') return { jobId: 'job-1' } as never;
      return {} as never;
    },
    onEvent: () => () => {},
    onReconnect(l) {
      reconnectListeners.add(l);
      return () => reconnectListeners.delete(l);
    },
  };
  await act(() => render(<App api={api} resolveTab={async () => 7} surface="popup" />, container));
  await settle();
  expect(byTestId('status')?.textContent).toMatch(/Writing/);
  expect(byTestId('continue')).toBeNull();

  // The worker was stopped; the client connected again and the restarted host has the job as interrupted.
  current = state(job({ status: 'interrupted', stage: 'finished' }), false);
  const gets = requests.filter((r) => r.type === 'getState').length;
  expect(reconnectListeners.size).toBe(1);
  for (const l of reconnectListeners) l();
  await settle();
  expect(requests.filter((r) => r.type === 'getState').length).toBe(gets + 1);
  expect(byTestId('status')?.textContent).toBe('Interrupted: the background stopped while writing this answer');
  expect(byTestId('answer')?.textContent).toContain('The keeper');
  expect(byTestId('regenerate')).toBeNull();
  expect(byTestId('edit-question')).toBeNull();
  const button = byTestId('continue') as HTMLButtonElement;
  expect(button.disabled).toBe(false);
  await act(() => void button.dispatchEvent(new window.Event('click', { bubbles: true })));
  await settle();
  expect(requests.at(-1)).toEqual({ type: 'continueAnswer', tabId: 7, jobId: 'job-1' });
});
