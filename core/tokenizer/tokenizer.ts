// A tokenizer.json tokenizer (via web-tokenizers) with number[] ids, and streaming detokenisation.

import { loadWebTokenizers, type WebTokenizer } from './webTokenizers';

export class Tokenizer {
  private constructor(private readonly inner: WebTokenizer) {}

  /** `json`: the bytes of tokenizer.json. */
  static async fromJSON(json: Uint8Array | ArrayBuffer): Promise<Tokenizer> {
    const cls = await loadWebTokenizers();
    const bytes = json instanceof Uint8Array ? json : new Uint8Array(json);
    const text = new TextDecoder().decode(bytes.subarray(0, 64)).trimStart();
    if (!text.startsWith('{'))
      throw new Error(`tokenizer.json is not a JSON object (starts with "${text.slice(0, 20)}")`);
    // fromJSON wants an ArrayBuffer holding exactly the file.
    const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    try {
      return new Tokenizer(await cls.fromJSON(buffer));
    } catch (e) {
      throw new Error(`tokenizer.json could not be loaded by web-tokenizers: ${String(e)}`);
    }
  }

  /** Token ids of `text`; no special tokens are added (BOS comes from the chat template). */
  encode(text: string): number[] {
    return Array.from(this.inner.encode(text));
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
