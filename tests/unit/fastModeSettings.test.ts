// Fast mode's settings become the job's attention policy: the dynamic or the fixed schedule, or full attention.
import { expect, test } from 'vitest';
import { fastModePolicy } from '../../core/host/generation';
import { DEFAULT_SETTINGS, settingsFromStorage } from '../../core/protocol/settings';

test('fast mode settings -> attention policy', () => {
  const k = { fraction: 0.125 };
  expect(fastModePolicy(DEFAULT_SETTINGS)).toEqual({ kind: 'recycled', k, dynamic: { qc: 1 } });
  expect(fastModePolicy({ ...DEFAULT_SETTINGS, fastSchedule: 'dynamic', fastQc: 5 })).toEqual({
    kind: 'recycled',
    k,
    dynamic: { qc: 5 },
  });
  expect(fastModePolicy({ ...DEFAULT_SETTINGS, fastSchedule: 'fixed', fastStride: 7 })).toEqual({
    kind: 'recycled',
    k,
    stride: 7,
  });
  expect(fastModePolicy({ ...DEFAULT_SETTINGS, fastMode: false })).toEqual({ kind: 'full' });
});

test('stored schedule settings are checked field by field', () => {
  const s = settingsFromStorage({ fastSchedule: 'sometimes', fastQc: 0, fastStride: 12 });
  expect(s.fastSchedule).toBe(DEFAULT_SETTINGS.fastSchedule);
  expect(s.fastQc).toBe(DEFAULT_SETTINGS.fastQc);
  expect(s.fastStride).toBe(12);
  expect(settingsFromStorage({ fastSchedule: 'fixed', fastQc: 5 })).toMatchObject({ fastSchedule: 'fixed', fastQc: 5 });
});
