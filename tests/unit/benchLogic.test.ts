// The bench's logic that does not depend on timing (benches are not tests: no time is asserted here): the summary
// keys of issues #9/#10, the alternating-rounds aggregation, the attention section's summary, and the whole-model
// prefill estimate from a sample of chunks.
import { describe, expect, test } from 'vitest';
import { estimatePrefillMs, type PrefillChunk, prefillChunks, samplingOrder } from '../../scripts/bench/chunkSampling';
import { summarizeRounds } from '../../scripts/bench/decodeTiming';
import type { BenchRow } from '../../scripts/bench/sections';
import { attentionSummary } from '../../scripts/bench/sections/attention';
import { DECODE_SUMMARY_KEYS, orderedSummary, PREFILL_SUMMARY_KEYS } from '../../scripts/bench/summary';
import { LLAMA_1B, SMALL } from '../../scripts/bench/syntheticModel';

describe('summary', () => {
  test("every key of #9 is present, in the issue's order, null where not measured; other keys follow", () => {
    const s = orderedSummary({ md5Speedup: 2.6, copyGBs: 8.5, adapter: 'llvmpipe', fastToFull: { 1024: 0.9 } }, false);
    expect(Object.keys(s)).toEqual([
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
      'md5Speedup',
    ]);
    expect(s.adapter).toBe('llvmpipe');
    expect(s.fastToFull).toEqual({ 1024: 0.9 });
    expect(s.decodeMs1K).toBeNull();
  });

  test("#10's keys follow #9's when the prefill section ran", () => {
    const s = orderedSummary({ adapter: 'a', prefillTokS1B1K: 1.5, fmaPeakGflops: 30 }, true);
    expect(Object.keys(s)).toEqual([...DECODE_SUMMARY_KEYS, ...PREFILL_SUMMARY_KEYS]);
    expect(PREFILL_SUMMARY_KEYS).toEqual([
      'fmaPeakGflops',
      'matmulFracPeakMin',
      'prefillTokS1B1K',
      'prefillFracPeak1B1K',
      'prefillAttnFracPeak4K',
    ]);
    expect(s.prefillTokS1B1K).toBe(1.5);
    expect(s.matmulFracPeakMin).toBeNull();
  });
});

describe('alternating rounds', () => {
  test('step time = median of round means, ratio = median of the per-round ratios', () => {
    const r = summarizeRounds(
      [
        { full: 10, fast: 5 },
        { full: 20, fast: 8 },
        { full: 12, fast: 9 },
      ],
      'full',
    );
    expect(r.full).toEqual({ ms: 12, ratio: 1, roundsMs: [10, 20, 12] });
    expect(r.fast.ms).toBe(8);
    // Per-round ratios 0.5, 0.4, 0.75: the median is the first round's, not 8 / 12.
    expect(r.fast.ratio).toBe(0.5);
  });

  test('an even number of rounds averages the middle two', () => {
    const r = summarizeRounds(
      [
        { full: 10, fast: 1 },
        { full: 10, fast: 2 },
        { full: 10, fast: 4 },
        { full: 10, fast: 8 },
      ],
      'full',
    );
    expect(r.fast.ms).toBe(3);
    expect(r.fast.ratio).toBeCloseTo(0.3, 12);
  });

  test('a missing time or reference is an error', () => {
    expect(() => summarizeRounds([{ full: 1, fast: 1 }, { full: 1 }], 'full')).toThrow(/round 1: no time for fast/);
    expect(() => summarizeRounds([{ fast: 1 }], 'full')).toThrow(/reference policy full/);
    expect(() => summarizeRounds([], 'full')).toThrow(/no rounds/);
  });
});

describe('attention summary', () => {
  const row = (model: string, context: number, policy: string, ratio: number, predicted: number): BenchRow => ({
    model,
    context,
    policy,
    ratio_to_full: ratio,
    predicted_ratio: predicted,
  });

  test('fastToFull / fastPredicted keyed by context, refreshToFullStep at the longest, 1B rows only', () => {
    const rows = [
      row(SMALL.name, 8192, 'recycled K=L/8', 0.1, 0.2),
      row(SMALL.name, 16384, 'refresh every step', 9, 1.1),
      row(LLAMA_1B.name, 1024, 'full', 1, 1),
      row(LLAMA_1B.name, 1024, 'recycled K=L/8', 0.95, 0.93),
      row(LLAMA_1B.name, 1024, 'refresh every step', 1.4, 1.01),
      row(LLAMA_1B.name, 8192, 'recycled K=L/8', 0.7, 0.66),
      row(LLAMA_1B.name, 8192, 'refresh every step', 1.2, 1.02),
      row(LLAMA_1B.name, 4096, 'refresh every step', 1.3, 1.02),
    ];
    expect(attentionSummary(rows)).toEqual({
      fastToFull: { 1024: 0.95, 8192: 0.7 },
      fastPredicted: { 1024: 0.93, 8192: 0.66 },
      refreshToFullStep: 1.2,
    });
  });

  test('nothing when the 1B shape did not run', () => {
    expect(attentionSummary([row(SMALL.name, 1024, 'recycled K=L/8', 0.5, 0.4)])).toEqual({});
  });
});

describe('prefill from sampled chunks', () => {
  test("the engine's chunks of a 1,023-token prefill at 32 per chunk", () => {
    const chunks = prefillChunks(1023, 32);
    expect(chunks).toHaveLength(32);
    expect(chunks[0]).toEqual({ start: 0, tokens: 32 });
    expect(chunks[31]).toEqual({ start: 992, tokens: 31 });
    expect(chunks.reduce((n, c) => n + c.tokens, 0)).toBe(1023);
    expect(() => prefillChunks(0, 32)).toThrow(/positive integers/);
  });

  test('sampling order: first, last, then the middle of the widest gap; a permutation of every chunk', () => {
    expect(samplingOrder(1)).toEqual([0]);
    expect(samplingOrder(2)).toEqual([0, 1]);
    expect(samplingOrder(9)).toEqual([0, 8, 4, 2, 6, 1, 3, 5, 7]);
    const order = samplingOrder(32);
    expect(order.slice(0, 3)).toEqual([0, 31, 15]);
    expect([...order].sort((a, b) => a - b)).toEqual(Array.from({ length: 32 }, (_, i) => i));
  });

  // A chunk's time: per token 2 ms of linears plus 0.001 ms per key before it (attention grows with position).
  const linearMs = (c: PrefillChunk) => c.tokens * (2 + 0.001 * c.start);

  test('first and last chunk measured: exact for chunk times linear in position', () => {
    const chunks = prefillChunks(1023, 32);
    const measured = new Map([
      [0, linearMs(chunks[0])],
      [31, linearMs(chunks[31])],
    ]);
    // Sum over chunks of tokens * (2 + 0.001 * start), by hand: 2 * 1023 + 0.001 * (32 * (0 + 32 + ... + 960) + 31 * 992).
    const exact = 2 * 1023 + 0.001 * (32 * 32 * ((30 * 31) / 2) + 31 * 992);
    expect(estimatePrefillMs(chunks, measured)).toBeCloseTo(exact, 9);
  });

  test('every chunk measured: their sum; a middle chunk bends the interpolation', () => {
    const chunks = prefillChunks(40, 10); // starts 0, 10, 20, 30
    const all = new Map([
      [0, 7],
      [1, 100],
      [2, 13],
      [3, 50],
    ]);
    expect(estimatePrefillMs(chunks, all)).toBe(170);
    // Chunks 0, 2, 3 measured (per token 0.7, 1.3, 5.0): chunk 1 gets 10 * (0.7 + 0.5 * 0.6) = 10.
    const some = new Map([
      [0, 7],
      [2, 13],
      [3, 50],
    ]);
    expect(estimatePrefillMs(chunks, some)).toBeCloseTo(7 + 10 + 13 + 50, 12);
  });

  test('the first and last chunk must be measured', () => {
    const chunks = prefillChunks(40, 10);
    expect(() => estimatePrefillMs(chunks, new Map([[0, 1]]))).toThrow(/first and the last/);
    expect(() =>
      estimatePrefillMs(
        chunks,
        new Map([
          [0, 1],
          [3, 1],
          [7, 1],
        ]),
      ),
    ).toThrow(/chunk 7 out of range/);
  });
});
