// Without WebGPU (Chromium started without --enable-unsafe-webgpu, no GPU) the popup shows a clear screen with the
// reason instead of controls that cannot work.
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import {
  buildExtension,
  hostRequest,
  type LaunchedExtension,
  launchWithExtension,
  openPopup,
  RESULTS_DIR,
} from './harness';

let ext: LaunchedExtension;

beforeAll(async () => {
  buildExtension();
  ext = await launchWithExtension({ webgpu: false });
});

afterAll(async () => {
  await ext?.close();
});

test('the popup explains that WebGPU is unavailable, and jobs are refused with no-webgpu', async () => {
  const popup = await openPopup(ext);
  await expect
    .poll(() => popup.getByTestId('status').textContent(), { timeout: 20_000 })
    .toMatch(/WebGPU is not available/);
  const state = await hostRequest(popup, { type: 'getState' });
  expect(state.gpu.state).toBe('unavailable');
  const reason = state.gpu.state === 'unavailable' ? state.gpu.reason : '';
  expect(reason.length).toBeGreaterThan(10);
  expect(await popup.locator('.reason').textContent()).toBe(reason);
  expect(await popup.getByTestId('ask').count()).toBe(0);
  await expect(hostRequest(popup, { type: 'summarize', tabId: 1 })).rejects.toMatchObject({ code: 'no-webgpu' });
  await popup.setViewportSize({ width: 444, height: 360 });
  await popup.screenshot({ path: join(RESULTS_DIR, 'popup-no-webgpu.png') });
  await popup.close();
});
