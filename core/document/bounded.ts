// Work on a long document (a 1M-character page) runs in bounded slices that Stop can interrupt. The work is written
// once, as a generator that yields after each bounded piece (one token count of at most a slice of text, one batch of
// chunks indexed); `runToEnd` drives it at once (the plain functions: same results, no waiting), `runInSlices` gives
// the event loop a turn every `sliceMs` so a Stop message is seen, and ends with DocumentWorkStopped when it was.

/** A piece of work that yields between bounded steps and returns T. */
export type Steps<T> = Generator<void, T, void>;

/** Stop (an AbortSignal) ended work on the document before it finished. */
export class DocumentWorkStopped extends Error {
  readonly code = 'stopped';
  constructor(readonly task: string) {
    super(`Stopped while ${task}.`);
    this.name = 'DocumentWorkStopped';
  }
}

/** Runs the steps to the end without waiting. */
export function runToEnd<T>(steps: Steps<T>): T {
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

export interface SliceOptions {
  signal?: AbortSignal;
  /** Longest run without a turn of the event loop, in ms (the last step of a slice may overrun it). */
  sliceMs?: number;
  /** For the error: what the work was doing ("planning the prompt"). */
  task?: string;
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/** Runs the steps, letting the event loop run between slices; throws DocumentWorkStopped once `signal` aborts. */
export async function runInSlices<T>(steps: Steps<T>, opts: SliceOptions = {}): Promise<T> {
  const sliceMs = opts.sliceMs ?? 16;
  const task = opts.task ?? 'reading the document';
  const stopIfAborted = () => {
    if (opts.signal?.aborted) {
      steps.return(undefined as T);
      throw new DocumentWorkStopped(task);
    }
  };
  stopIfAborted();
  let sliceStart = performance.now();
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
    if (performance.now() - sliceStart >= sliceMs) {
      await yieldToEventLoop();
      stopIfAborted();
      sliceStart = performance.now();
    }
  }
}

/** Characters one token count reads at most when counting a long text. */
export const COUNT_SLICE_CHARS = 16_000;

/**
 * Where to cut `text` after `from` so the piece holds at most `maxChars`: at a line start (after a newline, before a
 * non-space) in the second half of the window, else before a space that starts a word; only a run without either is
 * cut hard (never inside a surrogate pair). Byte-level BPE tokenizers (Llama 3, Qwen, SmolLM) split words and newline
 * runs into separate pieces before merging, so counts of pieces cut there add up to the count of the whole.
 */
export function sliceEnd(text: string, from: number, maxChars: number): number {
  const limit = from + maxChars;
  if (limit >= text.length) return text.length;
  const floor = from + (maxChars >> 1);
  for (let p = limit; p > floor; p--) if (text[p - 1] === '\n' && /\S/.test(text[p])) return p;
  for (let p = limit; p > floor; p--)
    if (text[p] === ' ' && /\S/.test(text[p - 1]) && /\S/.test(text[p + 1] ?? '')) return p;
  return /[\udc00-\udfff]/.test(text[limit]) ? limit + 1 : limit;
}

/** Tokens of `text`, counted a slice at a time (one count for a text up to COUNT_SLICE_CHARS). */
export function* countTokensSteps(
  text: string,
  count: (text: string) => number,
  sliceChars = COUNT_SLICE_CHARS,
): Steps<number> {
  let total = 0;
  for (let from = 0; from < text.length; ) {
    const end = sliceEnd(text, from, sliceChars);
    total += count(text.slice(from, end));
    from = end;
    yield;
  }
  return total;
}
