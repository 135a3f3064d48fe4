// `npm start` (after `wxt build`): opens Chromium with the built extension loaded.
// - With a display: a normal Chromium window with the extension, its side panel page open; runs until you close it.
// - Without a display but with Chromium installed: a headless smoke run: loads the extension, waits for its service
//   worker, opens the popup page, saves a screenshot, prints how to load the extension by hand, and exits.
// - Without Chromium: prints where the build is and how to load it by hand.
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const EXTENSION_DIR = join(ROOT, '.output/chrome-mv3');
const CHROMIUM_CANDIDATES = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'];

const HOW_TO_LOAD = `To load it by hand in Chrome / Chromium:
  1. open chrome://extensions and turn on "Developer mode" (top right);
  2. click "Load unpacked" and choose the folder
       ${EXTENSION_DIR}
  3. pin "Recycled Reader" from the puzzle-piece menu; open any page or PDF and click it.
  WebGPU must be available (chrome://gpu); Firefox: npm run build:firefox, then about:debugging -> Load Temporary
  Add-on -> .output/firefox-mv2/manifest.json.`;

async function main(): Promise<void> {
  if (!existsSync(join(EXTENSION_DIR, 'manifest.json'))) {
    throw new Error(`no build at ${EXTENSION_DIR}: run \`npm run build\` first (npm start does both)`);
  }
  const manifest = JSON.parse(readFileSync(join(EXTENSION_DIR, 'manifest.json'), 'utf8')) as { name: string };
  const executablePath = CHROMIUM_CANDIDATES.find((p): p is string => !!p && existsSync(p));
  const hasDisplay = !!(process.env.DISPLAY || process.env.WAYLAND_DISPLAY);
  console.log(`built: ${manifest.name} in ${EXTENSION_DIR}`);
  if (!executablePath) {
    console.log(`No Chromium found (${CHROMIUM_CANDIDATES.filter(Boolean).join(', ')}).\n${HOW_TO_LOAD}`);
    return;
  }

  const headless = !hasDisplay;
  const userDataDir = mkdtempSync(join(tmpdir(), 'recycled-reader-'));
  const args = [
    `--disable-extensions-except=${EXTENSION_DIR}`,
    `--load-extension=${EXTENSION_DIR}`,
    '--enable-unsafe-webgpu', // Linux Chromium keeps WebGPU behind this flag
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--disable-quic',
  ];
  if (process.getuid?.() === 0) args.push('--no-sandbox'); // Chromium refuses to run as root with its sandbox
  console.log(`launching ${executablePath} (${headless ? 'headless: no display' : 'window'})`);
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless,
    args,
    viewport: headless ? { width: 420, height: 640 } : null,
  });
  const worker = context.serviceWorkers()[0] ?? (await context.waitForEvent('serviceworker', { timeout: 30_000 }));
  const extensionId = new URL(worker.url()).host;
  console.log(`extension loaded: id ${extensionId}, service worker ${worker.url()}`);

  const page = context.pages()[0] ?? (await context.newPage());
  await page.goto(`chrome-extension://${extensionId}/${headless ? 'popup' : 'sidepanel'}.html`);
  if (headless) {
    const shot = join(ROOT, 'test-results/start-popup.png');
    mkdirSync(dirname(shot), { recursive: true });
    await page.waitForTimeout(1500);
    await page.screenshot({ path: shot });
    console.log(`popup rendered headless; screenshot: ${shot}`);
    await context.close();
    console.log(`\nNo display here, so Chromium ran headless and has exited.\n${HOW_TO_LOAD}`);
    return;
  }
  console.log('Chromium is open with the extension (close the window to stop).');
  await new Promise<void>((done) => context.on('close', () => done()));
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    console.error(HOW_TO_LOAD);
    process.exit(1);
  },
);
