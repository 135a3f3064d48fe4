// Helpers for end-to-end tests of the built extension in Chromium (headless, Playwright).
//   buildExtension()        builds .output/chrome-mv3 when sources are newer than it
//   launchWithExtension()   Chromium with the extension loaded (WebGPU on SwiftShader), its id and service worker
//   startStaticServer()     files and in-memory routes on 127.0.0.1 with Range and CORS support
//   openPopup()             chrome-extension://ID/popup.html?tab=ID
//   hostRequest()           one typed request over a real UI port, from an extension page
import { execFileSync } from 'node:child_process';
import {
  cpSync,
  createReadStream,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, normalize, resolve } from 'node:path';
import { type BrowserContext, chromium, type Page, type Worker } from 'playwright-core';
import type { RequestOf, RequestType, ResponseMap } from '../../core/protocol/messages';
import { UI_PORT_NAME } from '../../core/protocol/messages';

// The slice of the extension API these helpers call inside the browser (the project does not type `chrome`).
interface InPageChrome {
  tabs: { create(o: { url: string }): Promise<{ id?: number }> };
  storage: { local: { get(key: string): Promise<Record<string, unknown>> } };
  runtime: {
    connect(o: { name: string }): {
      postMessage(m: unknown): void;
      disconnect(): void;
      onMessage: { addListener(l: (m: Record<string, unknown>) => void): void };
    };
  };
}
declare const chrome: InPageChrome;

export const ROOT = resolve(import.meta.dirname, '../..');
export const EXTENSION_DIR = join(ROOT, '.output/chrome-mv3');
export const RESULTS_DIR = join(ROOT, 'test-results');
const SOURCES = ['entrypoints', 'components', 'core', 'kernels', 'public', 'wxt.config.ts', 'package.json'];

function newestMtime(path: string): number {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const name of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, name)));
  return newest;
}

/** Builds the Chrome extension unless the build is newer than every source file. */
export function buildExtension(): void {
  const manifest = join(EXTENSION_DIR, 'manifest.json');
  const built = existsSync(manifest) ? statSync(manifest).mtimeMs : 0;
  const newest = Math.max(...SOURCES.map((s) => newestMtime(join(ROOT, s))));
  if (built > newest && process.env.RR_E2E_REBUILD !== '1') return;
  // stdin ignored: with an inherited stdin the build stalls at "Preparing..." inside vitest.
  const env = { ...process.env };
  delete env.VITEST;
  delete env.VITEST_POOL_ID;
  delete env.VITEST_WORKER_ID;
  delete env.NODE_ENV;
  execFileSync('npx', ['wxt', 'build'], { cwd: ROOT, env, stdio: ['ignore', 'inherit', 'inherit'], timeout: 300_000 });
}

export interface LaunchedExtension {
  context: BrowserContext;
  extensionId: string;
  /** The background service worker (replace it after a test stops the worker). */
  serviceWorker: Worker;
  close(): Promise<void>;
}

/** The test server's origin: the host access a user grants from the popup (optional_host_permissions). */
export const TEST_SERVER_HOSTS = ['http://127.0.0.1/*'];

/**
 * A copy of the built extension as it is once the user granted `hosts` (the manifest declares no host access; it asks
 * with permissions.request, a prompt a headless test cannot click, and activeTab comes from a toolbar click).
 */
function withGrantedHosts(dir: string, hosts: string[], at?: string): string {
  // An unpacked extension's id follows its path: a browser restart on the same profile needs the same path (`at`).
  const copy = at ?? mkdtempSync(join(tmpdir(), 'rr-e2e-ext-'));
  if (at) rmSync(at, { recursive: true, force: true });
  cpSync(dir, copy, { recursive: true });
  const manifestPath = join(copy, 'manifest.json');
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
  manifest.host_permissions = hosts;
  writeFileSync(manifestPath, JSON.stringify(manifest));
  return copy;
}

export async function launchWithExtension(
  opts: { webgpu?: boolean; extensionDir?: string; grantedHosts?: string[]; userDataDir?: string } = {},
): Promise<LaunchedExtension> {
  const granted = opts.grantedHosts ?? TEST_SERVER_HOSTS;
  const built = opts.extensionDir ?? EXTENSION_DIR;
  // `userDataDir`: a profile to reuse (a browser restart); the caller removes it. The granted copy then lives beside
  // it under a fixed name, so the extension keeps its id (and its storage) across the restart.
  const userDataDir = opts.userDataDir ?? mkdtempSync(join(tmpdir(), 'rr-e2e-'));
  const dir =
    granted.length > 0 ? withGrantedHosts(built, granted, opts.userDataDir && `${opts.userDataDir}-ext`) : built;
  const args = [
    `--disable-extensions-except=${dir}`,
    `--load-extension=${dir}`,
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--disable-quic',
  ];
  if (opts.webgpu !== false) args.push('--enable-unsafe-webgpu');
  if (process.getuid?.() === 0) args.push('--no-sandbox'); // Chromium refuses to run as root with its sandbox
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args,
    viewport: { width: 900, height: 800 },
  });
  try {
    const serviceWorker =
      context.serviceWorkers()[0] ?? (await context.waitForEvent('serviceworker', { timeout: 30_000 }));
    const extensionId = new URL(serviceWorker.url()).host;
    return {
      context,
      extensionId,
      serviceWorker,
      async close() {
        await context.close();
        if (!opts.userDataDir) rmSync(userDataDir, { recursive: true, force: true });
        if (dir !== built) rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await context.close();
    throw e;
  }
}

export async function openPopup(ext: LaunchedExtension, tabId?: number, page = 'popup.html'): Promise<Page> {
  const popup = await ext.context.newPage();
  const query = tabId === undefined ? '' : `?tab=${tabId}`;
  await popup.goto(`chrome-extension://${ext.extensionId}/${page}${query}`);
  return popup;
}

/**
 * Opens `url` in a new tab created by the extension, so the test knows its tab id (without the `tabs` permission the
 * extension cannot look tabs up by URL).
 */
export async function openTab(ext: LaunchedExtension, url: string): Promise<{ page: Page; tabId: number }> {
  const pageEvent = ext.context.waitForEvent('page', { timeout: 30_000 });
  const tabId = await ext.serviceWorker.evaluate(async (u) => (await chrome.tabs.create({ url: u })).id ?? null, url);
  if (tabId === null) throw new Error(`chrome.tabs.create gave no id for ${url}`);
  const page = await pageEvent;
  await page.waitForLoadState('load');
  return { page, tabId };
}

/**
 * Stops the background service worker (as Chrome does after 30 s idle), then runs `wake` (which should message the
 * background, starting a fresh worker) and points `ext.serviceWorker` at the new worker.
 */
export async function restartServiceWorker<T>(ext: LaunchedExtension, page: Page, wake: () => Promise<T>): Promise<T> {
  const old = ext.serviceWorker;
  const cdp = await ext.context.newCDPSession(page);
  type Version = { versionId: string; scriptURL: string; runningStatus: string };
  const waiters: { status: string; resolve: (v: Version) => void }[] = [];
  const statusOf = (status: string) => new Promise<Version>((resolve) => waiters.push({ status, resolve }));
  cdp.on('ServiceWorker.workerVersionUpdated', (e: { versions: Version[] }) => {
    for (const v of e.versions.filter((x) => x.scriptURL.endsWith('/background.js')))
      for (const w of waiters.filter((x) => x.status === v.runningStatus)) w.resolve(v);
  });
  const running = statusOf('running');
  await cdp.send('ServiceWorker.enable');
  const version = await running;
  // Playwright reports the old worker's `close` late (when the next one starts): follow the status from CDP.
  const stopped = statusOf('stopped');
  await cdp.send('ServiceWorker.stopWorker', { versionId: version.versionId });
  await stopped;
  await cdp.detach();
  const result = await wake();
  // Playwright may keep the same Worker object for the restarted worker, or list a new one.
  ext.serviceWorker = ext.context.serviceWorkers().find((w) => w !== old) ?? old;
  return result;
}

/** A value from the extension's chrome.storage.local. */
export async function readLocalStorage(ext: LaunchedExtension, key: string): Promise<unknown> {
  return ext.serviceWorker.evaluate(async (k) => (await chrome.storage.local.get(k))[k], key);
}

/**
 * Sends one raw message over a fresh UI port from an extension page and resolves with the host's answer event
 * (reply or error). Raw so tests can also send malformed messages.
 */
export async function rawHostRequest(
  page: Page,
  message: unknown,
  timeoutMs = 60_000,
): Promise<Record<string, unknown>> {
  return page.evaluate(
    ({ message, portName, timeoutMs }) =>
      new Promise<Record<string, unknown>>((resolve, reject) => {
        const port = chrome.runtime.connect({ name: portName });
        const timer = setTimeout(() => reject(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
        port.onMessage.addListener((event) => {
          if (event.type === 'reply' || (event.type === 'error' && event.requestId !== null)) {
            clearTimeout(timer);
            port.disconnect();
            resolve(event);
          }
        });
        port.postMessage(message);
      }),
    { message, portName: UI_PORT_NAME, timeoutMs },
  );
}

/** A typed request; throws with the host's error code and message on an error answer. */
export async function hostRequest<T extends RequestType>(
  page: Page,
  request: RequestOf<T>,
  timeoutMs?: number,
): Promise<ResponseMap[T]> {
  const answer = await rawHostRequest(page, { ...request, id: 1 }, timeoutMs);
  if (answer.type === 'error') {
    const error = answer.error as { code: string; message: string };
    throw Object.assign(new Error(`${error.code}: ${error.message}`), { code: error.code });
  }
  return answer.result as ResponseMap[T];
}

export interface StaticServer {
  origin: string;
  url(path: string): string;
  /** Requests seen, for assertions (method, path, range header). */
  log: { method: string; path: string; range: string | undefined }[];
  close(): Promise<void>;
}

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.json': 'application/json',
  '.js': 'text/javascript',
  '.txt': 'text/plain; charset=utf-8',
  '.pdf': 'application/pdf',
  '.bin': 'application/octet-stream',
};

/** Writes `body` at about `bytesPerSec` (a slow network), in tenth-of-a-second slices, until done or disconnected. */
function writeSlowly(res: ServerResponse, body: Uint8Array, bytesPerSec: number): void {
  const slice = Math.max(1, Math.round(bytesPerSec / 10));
  let at = 0;
  const timer = setInterval(() => {
    if (res.destroyed || at >= body.length) {
      clearInterval(timer);
      if (!res.destroyed) res.end();
      return;
    }
    res.write(body.subarray(at, at + slice));
    at += slice;
  }, 100);
  res.on('close', () => clearInterval(timer));
}

/**
 * Serves `root` (optional) and in-memory `routes` on 127.0.0.1, with byte ranges and permissive CORS. `slow`: paths
 * under `slow.prefix` are served from `root` with that prefix removed, at `slow.bytesPerSec` (a slow download).
 */
export async function startStaticServer(
  opts: {
    root?: string;
    routes?: Record<string, string | Uint8Array>;
    slow?: { prefix: string; bytesPerSec: number };
  } = {},
): Promise<StaticServer> {
  const log: StaticServer['log'] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const requested = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const slow = opts.slow && requested.startsWith(opts.slow.prefix) ? opts.slow : null;
    const path = slow ? `/${requested.slice(slow.prefix.length)}` : requested;
    log.push({ method: req.method ?? 'GET', path: requested, range: req.headers.range });
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Allow-Headers', 'Range');
    res.setHeader('Access-Control-Expose-Headers', 'Content-Length, Content-Range, Accept-Ranges');
    res.setHeader('Accept-Ranges', 'bytes');
    if (req.method === 'OPTIONS') return void res.writeHead(204).end();
    const type = MIME[extname(path)] ?? 'application/octet-stream';
    let body: Uint8Array | null = null;
    let file: string | null = null;
    const route = opts.routes?.[path];
    if (route !== undefined) body = typeof route === 'string' ? new TextEncoder().encode(route) : route;
    else if (opts.root) {
      const candidate = normalize(join(opts.root, path));
      if (candidate.startsWith(normalize(opts.root)) && existsSync(candidate) && statSync(candidate).isFile())
        file = candidate;
    }
    if (body === null && file === null)
      return void res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
    const size = body ? body.length : statSync(file!).size;
    let start = 0;
    let end = size - 1;
    const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '');
    if (range) {
      if (range[1] === '') start = Math.max(0, size - Number(range[2]));
      else {
        start = Number(range[1]);
        if (range[2] !== '') end = Math.min(end, Number(range[2]));
      }
      if (start > end || start >= size) return void res.writeHead(416, { 'Content-Range': `bytes */${size}` }).end();
      res.writeHead(206, {
        'Content-Type': type,
        'Content-Length': end - start + 1,
        'Content-Range': `bytes ${start}-${end}/${size}`,
      });
    } else res.writeHead(200, { 'Content-Type': type, 'Content-Length': size });
    if (req.method === 'HEAD') return void res.end();
    if (slow)
      writeSlowly(
        res,
        body ? body.subarray(start, end + 1) : readFileSync(file!).subarray(start, end + 1),
        slow.bytesPerSec,
      );
    else if (body) res.end(body.subarray(start, end + 1));
    else createReadStream(file!, { start, end }).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    url: (p) => `${origin}${p.startsWith('/') ? p : `/${p}`}`,
    log,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
