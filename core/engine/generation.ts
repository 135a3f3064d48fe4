// The generation loop shared by every backend: reuse what the KV cache already holds, prefill the rest, then
// decode token by token, streaming events. One loop for the CLI, the bench and the extension.
import { decideFastMode } from './fastMode';
import type { ModelRunner, SamplingParams } from './runner';
import type { GenerateEvent, GenerateOptions, GenerationStats } from './types';

export class ContextFullError extends Error {
  constructor(promptTokens: number, capacity: number) {
    super(
      `The prompt has ${promptTokens} tokens but the context window holds ${capacity}. ` +
        'Shorten the document or raise the context window in the settings.',
    );
    this.name = 'ContextFullError';
  }
}

export class AbortedError extends Error {
  constructor() {
    super('Generation was stopped.');
    this.name = 'AbortError';
  }
}

/** The ids whose KV is in the cache, position by position. Kept by the engine between generations. */
export interface CachedSequence {
  ids: number[];
}

export function commonPrefixLength(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

export interface GenerationRequest {
  promptIds: number[];
  options: GenerateOptions;
  stopTokenIds: number[];
  /** Positions 0..restoredTokens-1 already hold the KV of promptIds (from memory or a snapshot). */
  restoredTokens: number;
  /** Turns each generated id into the text it adds; `stop` when a stop string was reached (the text before it is
   * still shown). */
  detokenize: (id: number) => { text: string; stop: boolean };
  /** Called once the prompt prefix up to `prefixLength` is in the cache (snapshot saving hooks in here). */
  onPrefixReady?: () => void;
  prefixLength?: number;
}

/** Runs runner.prefill and yields the number of ids done after each chunk, as the runner reports them. */
async function* prefillProgress(
  runner: ModelRunner,
  ids: number[],
  startPos: number,
  signal: AbortSignal | undefined,
): AsyncGenerator<number> {
  const reported: number[] = [];
  let wake: (() => void) | undefined;
  let settled = false;
  const run = runner
    .prefill(ids, startPos, {
      signal,
      onChunk: (done) => {
        reported.push(done);
        wake?.();
      },
    })
    .finally(() => {
      settled = true;
      wake?.();
    });
  run.catch(() => {}); // rethrown by the `await run` below
  for (;;) {
    const next = reported.shift();
    if (next !== undefined) yield next;
    else if (settled) break;
    else await new Promise<void>((resolve) => (wake = resolve));
  }
  await run;
}

export async function* runGeneration(
  runner: ModelRunner,
  cached: CachedSequence,
  req: GenerationRequest,
): AsyncGenerator<GenerateEvent> {
  const { promptIds, options } = req;
  const signal = options.signal;
  if (promptIds.length === 0) throw new Error('The prompt is empty: nothing to generate from.');
  if (promptIds.length >= runner.capacity) throw new ContextFullError(promptIds.length, runner.capacity);
  const maxTokens = Math.max(0, Math.min(options.maxTokens ?? 256, runner.capacity - promptIds.length));
  const sampling: SamplingParams = {
    temperature: options.temperature ?? 0,
    topK: options.topK ?? 0,
    topP: options.topP ?? 1,
    seed: options.seed ?? 0,
  };
  const stop = new Set([...req.stopTokenIds, ...(options.stopTokenIds ?? [])]);

  // The last prompt token always runs as a decode step, so at most promptIds.length - 1 positions are reused.
  const reuse = Math.min(req.restoredTokens, promptIds.length - 1);
  const toPrefill = promptIds.slice(reuse, promptIds.length - 1);
  // A prefill-only call (maxTokens 0, a pre-read) with nothing to prefill writes nothing: the cache keeps what it
  // holds beyond this prompt (e.g. the last answer) instead of being cut back to it.
  if (toPrefill.length > 0 || maxTokens > 0) cached.ids = promptIds.slice(0, reuse);

  const t0 = performance.now();
  if (signal?.aborted) throw new AbortedError();
  if (toPrefill.length > 0) {
    for await (const done of prefillProgress(runner, toPrefill, reuse, signal)) {
      cached.ids = promptIds.slice(0, reuse + done);
      yield { type: 'prefill-progress', done, total: toPrefill.length };
    }
    // A runner need not report its chunks: once the prefill returned unaborted, the whole span is in the cache.
    if (!signal?.aborted) cached.ids = promptIds.slice(0, reuse + toPrefill.length);
  }
  if (req.onPrefixReady && req.prefixLength !== undefined && cached.ids.length >= req.prefixLength) req.onPrefixReady();
  const prefillMs = performance.now() - t0;
  if (signal?.aborted) throw new AbortedError();

  const requested = options.attention ?? { kind: 'full' };
  const fastMode = decideFastMode(runner, requested, promptIds.length, maxTokens, options.fastModeBreakEven !== false);
  runner.beginGeneration(fastMode.policy);
  const generated: number[] = [];
  let stopReason: GenerationStats['stopReason'] = 'max-tokens';
  // Step s feeds the token at position lastPromptPos + s: the last prompt token, then each sampled token, which the
  // runner takes from the device ('sampled') without waiting for it. Two steps stay in flight: step s + 1 is
  // submitted before step s's token is back; a step past a stop is discarded (and undone) at the end.
  const lastPromptPos = promptIds.length - 1;
  let submitted = 0;
  const submitNext = () => {
    const input = submitted === 0 ? promptIds[lastPromptPos] : 'sampled';
    runner.submitStep(input, lastPromptPos + submitted, sampling, submitted);
    submitted++;
  };
  const t1 = performance.now();
  let firstTokenAt: number | undefined;
  try {
    if (signal?.aborted) stopReason = 'aborted';
    else if (maxTokens > 0) {
      submitNext();
      if (submitted < maxTokens) submitNext();
    }
    let input = promptIds[lastPromptPos];
    let pos = lastPromptPos;
    for (let step = 0; step < submitted; step++) {
      const next = await runner.takeToken();
      cached.ids.push(input);
      pos++;
      if (stop.has(next)) {
        stopReason = 'stop-token';
        break;
      }
      generated.push(next);
      const { text, stop: stopString } = req.detokenize(next);
      firstTokenAt ??= performance.now();
      yield { type: 'token', tokenId: next, text };
      if (stopString) {
        stopReason = 'stop-token';
        break;
      }
      input = next;
      if (pos >= runner.capacity) {
        stopReason = 'context-full';
        break;
      }
      if (signal?.aborted) {
        stopReason = 'aborted';
        break;
      }
      if (submitted < maxTokens && lastPromptPos + submitted < runner.capacity) submitNext();
    }
  } finally {
    // Steps computed past the stop never happened: their KV lies past cached.ids, their state is undone.
    await runner.discardPending();
  }
  const decodeMs = performance.now() - t1;
  const stats: GenerationStats = {
    promptTokens: promptIds.length,
    prefillTokens: promptIds.length - reuse,
    restoredTokens: reuse,
    generatedTokens: generated.length,
    prefillMs,
    prefillTokensPerSec: toPrefill.length > 0 ? (toPrefill.length / prefillMs) * 1000 : 0,
    ...(firstTokenAt === undefined ? {} : { firstTokenMs: firstTokenAt - t0 }),
    decodeMs,
    decodeTokensPerSec: generated.length > 0 ? (generated.length / decodeMs) * 1000 : 0,
    msPerStep: generated.length > 0 ? decodeMs / Math.max(1, generated.length) : 0,
    stopReason,
    attention: await runner.attentionStats(),
    dispatchesPerToken: runner.runtimeStats()?.dispatchesPerToken ?? null,
    ...(requested.kind === 'full'
      ? {}
      : { fastModeActive: fastMode.active, fastModeReason: fastMode.reason, fastModePredictedRatio: fastMode.ratio }),
  };
  yield { type: 'done', stats };
}
