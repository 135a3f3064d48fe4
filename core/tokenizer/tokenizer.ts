// A tokenizer.json tokenizer (via web-tokenizers) with number[] ids, and streaming detokenisation.

import { loadWebTokenizers, type WebTokenizer } from './webTokenizers';

/**
 * The added tokens of a tokenizer.json (special or not): the strings the tokenizer maps to control ids. The unknown
 * token is left out: it is what unknown text becomes, not a role boundary.
 */
function addedTokensOf(bytes: Uint8Array): Map<string, number> {
  const out = new Map<string, number>();
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new Error(`tokenizer.json is not valid JSON: ${(e as Error).message}`);
  }
  const { added_tokens: added, model } = json as { added_tokens?: unknown; model?: { unk_token?: unknown } };
  if (!Array.isArray(added)) return out;
  for (const t of added) {
    const content = (t as { content?: unknown }).content;
    const id = (t as { id?: unknown }).id;
    if (typeof content === 'string' && content.length > 0 && typeof id === 'number' && content !== model?.unk_token)
      out.set(content, id);
  }
  return out;
}

/** `out.push(...ids)` without the argument-count limit (a long page has millions of ids). */
function append(out: number[], ids: readonly number[]): void {
  for (const id of ids) out.push(id);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export class Tokenizer {
  /** Every added-token id: none of them may come out of `encodeText`. */
  readonly controlIds: ReadonlySet<number>;
  /** Matches any added-token string, longest first. */
  private readonly controlPattern: RegExp | null;

  private constructor(
    private readonly inner: WebTokenizer,
    added: Map<string, number>,
  ) {
    this.controlIds = new Set(added.values());
    const strings = [...added.keys()].sort((a, b) => b.length - a.length);
    this.controlPattern = strings.length > 0 ? new RegExp(strings.map(escapeRegExp).join('|'), 'g') : null;
  }

  /** `json`: the bytes of tokenizer.json. */
  static async fromJSON(json: Uint8Array | ArrayBuffer): Promise<Tokenizer> {
    const cls = await loadWebTokenizers();
    const bytes = json instanceof Uint8Array ? json : new Uint8Array(json);
    const text = new TextDecoder().decode(bytes.subarray(0, 64)).trimStart();
    if (!text.startsWith('{'))
      throw new Error(`tokenizer.json is not a JSON object (starts with "${text.slice(0, 20)}")`);
    // fromJSON wants an ArrayBuffer holding exactly the file.
    const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    let inner: WebTokenizer;
    try {
      inner = await cls.fromJSON(buffer);
    } catch (e) {
      throw new Error(`tokenizer.json could not be loaded by web-tokenizers: ${String(e)}`);
    }
    return new Tokenizer(inner, addedTokensOf(bytes));
  }

  /**
   * Token ids of trusted text (the chat template's markers): special-token strings in it become their control ids.
   * No special tokens are added (BOS comes from the chat template).
   */
  encode(text: string): number[] {
    return Array.from(this.inner.encode(text));
  }

  /**
   * Token ids of untrusted text (page, PDF, selection, question): no added/special-token id ever comes out. A
   * special-token string in the text is tokenised as the plain characters it is made of (split after its first
   * character, so the tokenizer cannot match it); a piece that still yields a control id (a normalizer that rewrites
   * characters into one) is tokenised one character at a time, and a character that is itself a control token is
   * dropped. Decoding the ids gives the text back, except for such dropped characters.
   */
  encodeText(text: string): number[] {
    const pattern = this.controlPattern;
    if (!pattern || text.length === 0) return this.encodePlain(text);
    const ids: number[] = [];
    let at = 0;
    pattern.lastIndex = 0;
    for (let m = pattern.exec(text); m !== null; m = pattern.exec(text)) {
      if (m.index > at) append(ids, this.encodePlain(text.slice(at, m.index)));
      // The first character alone, then the rest (which may hold further control strings).
      const first = String.fromCodePoint(m[0].codePointAt(0)!);
      append(ids, this.encodePlain(first));
      if (m[0].length > first.length) append(ids, this.encodeText(m[0].slice(first.length)));
      at = m.index + m[0].length;
      pattern.lastIndex = at;
    }
    if (at < text.length) append(ids, this.encodePlain(text.slice(at)));
    return ids;
  }

  /** Text with no control string in it; checked all the same, since normalizers can rewrite characters. */
  private encodePlain(text: string): number[] {
    if (text.length === 0) return [];
    const ids = this.encode(text);
    if (!ids.some((id) => this.controlIds.has(id))) return ids;
    const out: number[] = [];
    for (const ch of text) {
      const one = this.encode(ch);
      if (!one.some((id) => this.controlIds.has(id))) append(out, one);
    }
    return out;
  }

  decode(ids: ArrayLike<number>): string {
    return this.inner.decode(Int32Array.from(ids as ArrayLike<number>));
  }

  get vocabSize(): number {
    return this.inner.getVocabSize();
  }

  idToToken(id: number): string {
    return this.inner.idToToken(id);
  }

  /** The id of a single-token string such as "<|im_end|>" (special tokens included), or undefined. */
  tokenToId(token: string): number | undefined {
    const ids = this.inner.encode(token);
    return ids.length === 1 && this.inner.idToToken(ids[0]) === token ? ids[0] : undefined;
  }

  dispose(): void {
    this.inner.dispose();
  }
}

/** Turns a growing list of generated ids into text deltas. Decodes a small window (the previous token(s) plus the new
 * ones) and emits the text the new ids add; holds text back while it ends in an incomplete UTF-8 sequence (U+FFFD). */
/** Ids before the read position a continued decoder keeps as context (enough for a multi-byte character). */
const CONTEXT_IDS = 4;

export class StreamingDecoder {
  private readonly ids: number[] = [];
  /** ids[prefixStart, readStart) were already emitted and serve as context for the next decode. */
  private prefixStart = 0;
  private readStart = 0;

  constructor(private readonly tokenizer: Pick<Tokenizer, 'decode'>) {}

  /** Adds one id; returns the new text (possibly ''). */
  push(id: number): string {
    this.ids.push(id);
    const prefixText = this.tokenizer.decode(this.ids.slice(this.prefixStart, this.readStart));
    const fullText = this.tokenizer.decode(this.ids.slice(this.prefixStart));
    if (fullText.length > prefixText.length && !fullText.endsWith('\uFFFD') && fullText.startsWith(prefixText)) {
      this.prefixStart = this.readStart;
      this.readStart = this.ids.length;
      return fullText.slice(prefixText.length);
    }
    return '';
  }

  /**
   * Starts after ids whose text was already emitted (a reply being continued): the last few are the context of the
   * next decode. Ids at the end that decode to an incomplete character stay pending, as they were when emitted.
   */
  continueAfter(ids: readonly number[]): void {
    let end = ids.length;
    while (end > 0 && this.tokenizer.decode(ids.slice(Math.max(0, end - CONTEXT_IDS), end)).endsWith('\uFFFD')) end--;
    this.ids.push(...ids);
    this.prefixStart = Math.max(0, end - CONTEXT_IDS);
    this.readStart = end;
  }

  /** Text still held back (e.g. a trailing incomplete character) at the end of generation. */
  flush(): string {
    if (this.readStart === this.ids.length) return '';
    const prefixText = this.tokenizer.decode(this.ids.slice(this.prefixStart, this.readStart));
    const fullText = this.tokenizer.decode(this.ids.slice(this.prefixStart));
    this.prefixStart = this.readStart = this.ids.length;
    return fullText.startsWith(prefixText) ? fullText.slice(prefixText.length) : fullText;
  }

  /** Every id pushed so far. */
  get allIds(): readonly number[] {
    return this.ids;
  }
}

/** Cuts streamed text at the first stop string, holding back any tail that could still become one. */
export class StopStringFilter {
  private pending = '';
  stopped = false;

  constructor(private readonly stops: readonly string[]) {}

  /** Returns the text that is safe to show now. After a stop string, `stopped` is true and the rest is dropped. */
  push(text: string): string {
    if (this.stopped) return '';
    this.pending += text;
    let cut = -1;
    for (const s of this.stops) {
      if (!s) continue;
      const at = this.pending.indexOf(s);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      this.stopped = true;
      const out = this.pending.slice(0, cut);
      this.pending = '';
      return out;
    }
    // Hold back the longest suffix that is a prefix of some stop string.
    let hold = 0;
    for (const s of this.stops) {
      for (let n = Math.min(s.length - 1, this.pending.length); n > hold; n--) {
        if (this.pending.endsWith(s.slice(0, n))) {
          hold = n;
          break;
        }
      }
    }
    const out = this.pending.slice(0, this.pending.length - hold);
    this.pending = this.pending.slice(this.pending.length - hold);
    return out;
  }

  flush(): string {
    const out = this.stopped ? '' : this.pending;
    this.pending = '';
    return out;
  }
}
