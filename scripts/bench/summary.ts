// The bench's top-level `summary`: headline figures under the names issues #9 and #10 fix (a contract), in a fixed
// order, null where this run did not measure one; keys other sections set (md5, ...) follow.

/** Issue #9's keys (sections copy, matvec, runtime, attention): always present. */
export const DECODE_SUMMARY_KEYS = [
  'adapter',
  'copyGBs',
  'matvecQ4FracCopyMin',
  'dispatchesPerToken',
  'dispatchesPerFullToken',
  'decodeMs1K',
  'decodeBytesFloorMs1K',
  'decodeToFloor1K',
  'fastToFull',
  'fastPredicted',
  'refreshToFullStep',
] as const;

/** Issue #10's keys (section prefill): present when that section ran. */
export const PREFILL_SUMMARY_KEYS = [
  'fmaPeakGflops',
  'matmulFracPeakMin',
  'prefillTokS1B1K',
  'prefillFracPeak1B1K',
  'prefillAttnFracPeak4K',
] as const;

/** `known` (what the sections set) in the contract's order: #9's keys, #10's when `prefillRan`, then the rest. */
export function orderedSummary(known: Record<string, unknown>, prefillRan: boolean): Record<string, unknown> {
  const fixed: readonly string[] = prefillRan ? [...DECODE_SUMMARY_KEYS, ...PREFILL_SUMMARY_KEYS] : DECODE_SUMMARY_KEYS;
  const rest = Object.entries(known).filter(([k]) => !fixed.includes(k));
  return { ...Object.fromEntries(fixed.map((k) => [k, known[k] ?? null])), ...Object.fromEntries(rest) };
}
