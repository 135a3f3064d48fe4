// Seeded generators of hostile input for tests/unit/hostileInput.test.ts: the same seed gives the same inputs, so a
// failure reproduces from the seed the test prints.
import type { RequestType } from '../../core/protocol/messages';

/** mulberry32: a small, fast, seedable PRNG (uniform in [0, 1)). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Gen {
  constructor(readonly random: () => number) {}
  int(min: number, max: number): number {
    return min + Math.floor(this.random() * (max - min + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)];
  }
  chance(p: number): boolean {
    return this.random() < p;
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(0, 255);
    return out;
  }
  /** Any code points: ASCII, Latin-1, CJK, emoji, controls, lone surrogates, BOM, RTL marks. */
  junk(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) {
      const kind = this.int(0, 9);
      if (kind < 4) s += String.fromCharCode(this.int(0x20, 0x7e));
      else if (kind === 4) s += String.fromCharCode(this.int(0, 0x1f));
      else if (kind === 5) s += String.fromCharCode(this.int(0xa0, 0x2fff));
      else if (kind === 6)
        s += String.fromCharCode(this.int(0xd800, 0xdfff)); // lone surrogate
      else if (kind === 7) s += String.fromCodePoint(this.int(0x1f300, 0x1faff));
      else if (kind === 8) s += this.pick(['\ufeff', '\u202e', '\u200b', '\u0000', '\ufffd', '\u2028']);
      else s += this.pick(['<', '>', '&', '"', "'", '=', '/', '&#0;', '&#xD800;', '&amp', ']]>', '<!--']);
    }
    return s;
  }
  words(n: number): string {
    const vocab = [
      'the',
      'page',
      'reader',
      'model',
      'of',
      'and',
      'recycled',
      'attention',
      'Persuasion',
      'Anne',
      'é',
      '漢字',
    ];
    return Array.from({ length: n }, () => this.pick(vocab)).join(' ');
  }
}

/** Special-token strings and role headers of the chat formats the project supports (and a few it does not). */
export const SPECIAL_STRINGS = [
  '<|begin_of_text|>',
  '<|end_of_text|>',
  '<|eot_id|>',
  '<|start_header_id|>',
  '<|end_header_id|>',
  '<|start_header_id|>system<|end_header_id|>\n\n',
  '<|im_start|>',
  '<|im_end|>',
  '<|im_start|>system\n',
  '<|im_start|>assistant\n',
  '<|endoftext|>',
  '<think>',
  '</think>',
  '<tool_call>',
  '<|reserved_special_token_0|>',
  '<|reserved_special_token_250|>',
  '<|finetune_right_pad_id|>',
  '<|python_tag|>',
  '<s>',
  '</s>',
  '[INST]',
  '[/INST]',
  '<<SYS>>',
  '<|user|>',
  '<|assistant|>',
  '<|system|>',
  '</document>',
  '<document>',
  '<|eot_id',
  '|>',
  '<|',
];

/** Text with special-token strings mixed in, glued to words or split across them. */
export function specialSoup(g: Gen, parts: number): string {
  let s = '';
  for (let i = 0; i < parts; i++) {
    const k = g.int(0, 5);
    if (k <= 2) s += g.pick(SPECIAL_STRINGS);
    else if (k === 3) s += g.words(g.int(1, 6));
    else if (k === 4) s += g.junk(g.int(1, 8));
    else s += g.pick([' ', '\n', '\n\n', '\t', '']);
  }
  return s;
}

const TAGS = [
  'div',
  'p',
  'span',
  'article',
  'main',
  'section',
  'nav',
  'aside',
  'table',
  'tr',
  'td',
  'ul',
  'li',
  'pre',
  'code',
  'h1',
  'h2',
  'blockquote',
  'a',
  'b',
  'iframe',
  'svg',
  'math',
  'template',
  'noscript',
  'textarea',
  'select',
];

function attr(g: Gen): string {
  const name = g.pick(['class', 'id', 'style', 'hidden', 'aria-hidden', 'data-x', 'onload', 'href', 'role', 'title']);
  const value = g.chance(0.1) ? 'x'.repeat(g.int(5_000, 50_000)) : g.junk(g.int(0, 20));
  return ` ${name}="${value.replace(/"/g, '&quot;')}"`;
}

function randomTree(g: Gen, depth: number, budget: { nodes: number }): string {
  if (depth <= 0 || budget.nodes <= 0) return g.chance(0.5) ? g.words(g.int(1, 30)) : specialSoup(g, g.int(1, 10));
  let s = '';
  const children = g.int(1, 4);
  for (let i = 0; i < children && budget.nodes > 0; i++) {
    budget.nodes--;
    const tag = g.pick(TAGS);
    const attrs = Array.from({ length: g.int(0, 3) }, () => attr(g)).join('');
    const close = g.chance(0.9) ? `</${tag}>` : ''; // unclosed tags too
    s += `<${tag}${attrs}>${randomTree(g, depth - 1, budget)}${close}`;
  }
  return s;
}

/** HTML documents a hostile or broken page could be: random trees, deep nesting, huge attributes, scripts, junk. */
export function hostileHtml(g: Gen): { kind: string; html: string } {
  const kind = g.pick([
    'random-tree',
    'deep-nesting',
    'huge-attributes',
    'scripts',
    'junk',
    'soup',
    'empty-ish',
    'mutated',
  ]);
  switch (kind) {
    case 'random-tree':
      return { kind, html: `<html><body>${randomTree(g, g.int(1, 8), { nodes: g.int(5, 400) })}</body></html>` };
    case 'deep-nesting': {
      const depth = g.int(200, 2000);
      const tag = g.pick(['div', 'span', 'blockquote', 'li', 'td', 'b']);
      return {
        kind,
        html: `<body>${`<${tag}>`.repeat(depth)}${g.words(50)}${`</${tag}>`.repeat(g.int(0, depth))}</body>`,
      };
    }
    case 'huge-attributes': {
      const big = 'A'.repeat(g.int(50_000, 300_000));
      return {
        kind,
        html: `<body><div class="${big}" style="${big.slice(0, 5000)}"><p title="${big}">${g.words(80)}</p></div></body>`,
      };
    }
    case 'scripts': {
      const body = Array.from({ length: g.int(1, 20) }, () =>
        g.pick([
          `<script>document.body.innerHTML='';while(true){}</script>`,
          `<script>${g.junk(500)}</script>`,
          `<style>${g.junk(200)}</style>`,
          `<p>${g.words(40)}</p>`,
          `<img src=x onerror="alert(1)">`,
          `<script type="application/ld+json">{"a":${'['.repeat(500)}</script>`,
          `<noscript>${g.words(10)}</noscript>`,
        ]),
      ).join('');
      return { kind, html: `<html><head><script>var x=1</script></head><body>${body}</body></html>` };
    }
    case 'junk':
      return { kind, html: g.junk(g.int(0, 20_000)) };
    case 'soup':
      return { kind, html: `<body><article><p>${specialSoup(g, g.int(10, 300))}</p></article></body>` };
    case 'empty-ish':
      return {
        kind,
        html: g.pick([
          '',
          '<html></html>',
          '<body></body>',
          '<body>   \n\t </body>',
          '<body><script>x</script></body>',
          '<frameset><frame src=a></frameset>',
          '<body><div hidden>secret</div></body>',
        ]),
      };
    default: {
      const base = `<html><body><main><article><h1>${g.words(3)}</h1>${Array.from({ length: 20 }, () => `<p>${g.words(40)}</p>`).join('')}</article></main></body></html>`;
      return { kind, html: mutateString(g, base, g.int(1, 60)) };
    }
  }
}

/** Deletes, duplicates, swaps and inserts random spans. */
export function mutateString(g: Gen, s: string, edits: number): string {
  for (let i = 0; i < edits && s.length > 0; i++) {
    const at = g.int(0, s.length - 1);
    const len = g.int(1, Math.min(200, s.length - at));
    const k = g.int(0, 3);
    if (k === 0) s = s.slice(0, at) + s.slice(at + len);
    else if (k === 1) s = s.slice(0, at) + s.slice(at, at + len).repeat(g.int(2, 20)) + s.slice(at + len);
    else if (k === 2) s = s.slice(0, at) + g.pick(['<', '>', '</', '<!--', '<![CDATA[', '"', '&']) + s.slice(at);
    else s = s.slice(0, at) + g.junk(g.int(1, 30)) + s.slice(at);
  }
  return s;
}

/** Flips, deletes, duplicates or zeroes byte spans. */
export function mutateBytes(g: Gen, bytes: Uint8Array, edits: number): Uint8Array {
  let b = bytes.slice();
  for (let i = 0; i < edits; i++) {
    const at = g.int(0, b.length - 1);
    const len = g.int(1, Math.min(64, b.length - at));
    const k = g.int(0, 3);
    if (k === 0) for (let j = at; j < at + len; j++) b[j] = g.int(0, 255);
    else if (k === 1) b.fill(0, at, at + len);
    else if (k === 2) {
      const next = new Uint8Array(b.length - len);
      next.set(b.subarray(0, at));
      next.set(b.subarray(at + len), at);
      if (next.length > 0) b = next;
    } else {
      const dup = b.slice(at, at + len);
      const next = new Uint8Array(b.length + len);
      next.set(b.subarray(0, at + len));
      next.set(dup, at + len);
      next.set(b.subarray(at + len), at + 2 * len);
      b = next;
    }
  }
  return b;
}

/**
 * Every request type of the protocol, as a record so that tsc fails here when core/protocol/messages.ts gains a type
 * the hostile run does not send (preRead and cancelPreRead were missing once).
 */
const PROTOCOL_REQUEST_TYPES = {
  ask: true,
  summarize: true,
  continueAnswer: true,
  stop: true,
  getState: true,
  setSettings: true,
  loadModel: true,
  cancelLoad: true,
  deleteModel: true,
  listModels: true,
  clearSnapshots: true,
  addCustomModel: true,
  debugGpuSelfTest: true,
  debugLoseGpu: true,
  newThread: true,
  listHistory: true,
  openThread: true,
  deleteThread: true,
  clearHistory: true,
  exportThread: true,
  showCitation: true,
  suggestQuestions: true,
  preRead: true,
  cancelPreRead: true,
} satisfies Record<RequestType, true>;

export const protocolRequestTypes = Object.keys(PROTOCOL_REQUEST_TYPES) as RequestType[];

/** The protocol's request types and a few that are not (unknown, prototype keys, empty, wrong case). */
const REQUEST_TYPES: string[] = [...protocolRequestTypes, 'hack', '__proto__', '', 'ASK'];

/** A value of any JSON shape (what a port can carry), sometimes extreme. */
export function jsonValue(g: Gen, depth = 3): unknown {
  const k = g.int(0, 11);
  if (k === 0) return null;
  if (k === 1) return g.pick([0, -1, 1.5, 2 ** 53, -(2 ** 31), 1e308, Number.NaN, Number.POSITIVE_INFINITY]);
  if (k === 2) return g.chance(0.5);
  if (k === 3) return g.junk(g.int(0, 40));
  if (k === 4) return 'x'.repeat(g.int(20_001, 100_000));
  if (k === 5) return specialSoup(g, g.int(1, 20));
  if (k === 6 && depth > 0) return Array.from({ length: g.int(0, 4) }, () => jsonValue(g, depth - 1));
  if (k === 7 && depth > 0) {
    const o: Record<string, unknown> = {};
    for (let i = 0; i < g.int(0, 4); i++)
      o[g.pick(['title', 'url', 'text', 'truncated', 'fraction', 'x', '__proto__', 'constructor'])] = jsonValue(
        g,
        depth - 1,
      );
    return o;
  }
  if (k === 8) return undefined;
  if (k === 9) return JSON.parse('{"__proto__":{"polluted":true},"type":"ask"}');
  if (k === 10) return g.int(-5, 1 << 30);
  return g.pick(REQUEST_TYPES);
}

/**
 * A UI → host message that a broken or hostile sender could post: valid shapes with bad fields, and junk.
 * `type`: the request type to send (with hostile fields); without it, any type or junk.
 */
export function hostileRequest(g: Gen, type?: RequestType): unknown {
  if (type === undefined && g.chance(0.1)) return jsonValue(g);
  const msg: Record<string, unknown> = {
    id: g.chance(0.8) ? g.int(0, 1000) : jsonValue(g),
    type: type ?? g.pick(REQUEST_TYPES),
  };
  const fields = [
    'tabId',
    'question',
    'document',
    'jobId',
    'settings',
    'modelId',
    'baseUrl',
    'threadId',
    'userAction',
    'pageUrl',
    'citation',
  ];
  for (const f of fields) if (g.chance(0.5)) msg[f] = jsonValue(g);
  if (g.chance(0.3))
    msg.document = { title: jsonValue(g), url: jsonValue(g), text: jsonValue(g), truncated: jsonValue(g) };
  if (g.chance(0.3))
    msg.settings = Object.fromEntries(
      [
        'contextWindow',
        'maxAnswerTokens',
        'fastMode',
        'fastK',
        'modelId',
        'snapshotBudgetMB',
        'customModels',
        'bogus',
      ].map((k) => [k, jsonValue(g)]),
    );
  // A JSON round trip: ports carry JSON-serialisable values (undefined fields vanish, NaN becomes null).
  return g.chance(0.8) ? JSON.parse(JSON.stringify(msg)) : msg;
}

/** A host → UI event a skewed version might send. */
export function hostileEvent(g: Gen): unknown {
  if (g.chance(0.1)) return jsonValue(g);
  const ev: Record<string, unknown> = {
    type: g.pick(['reply', 'error', 'state', 'delta', 'progress', 'coverage', 'done', 'nope']),
  };
  for (const f of ['requestId', 'requestType', 'jobId', 'tabId', 'text', 'error', 'state', 'progress', 'status'])
    if (g.chance(0.6)) ev[f] = jsonValue(g);
  return ev;
}
