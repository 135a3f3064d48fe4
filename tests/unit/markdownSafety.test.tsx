// The hand-written Markdown renderer (components/markdown.tsx) stays because it is the safest option: it builds
// Preact elements from text, never HTML, so there is no passthrough to sanitize (docs/RELIABILITY.md, "Libraries").
// Here: XSS inputs render as text or as the renderer's own few elements and attributes, links only to http(s); and
// inputs built to make its regular expressions backtrack finish at once (a 4000-character answer of backticks, or a
// heading followed by spaces, took 20-50 s before).
import { parseHTML } from 'linkedom';
import { render } from 'preact';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { Markdown, parseBlocks, renderInline, safeHref } from '../../components/markdown';

let container: HTMLElement;
beforeEach(() => {
  const { window } = parseHTML('<!doctype html><html><body><div id="root"></div></body></html>');
  Object.assign(globalThis, { window, document: window.document, navigator: window.navigator });
  container = window.document.getElementById('root') as unknown as HTMLElement;
});
afterEach(() => {
  render(null, container);
});

/** The elements and attributes the renderer itself creates; anything else came from the input. */
const ALLOWED: Record<string, string[]> = {
  p: [],
  h3: [],
  h4: [],
  h5: [],
  h6: [],
  ul: [],
  ol: ['start'],
  li: [],
  blockquote: [],
  pre: ['data-lang'],
  code: [],
  hr: [],
  br: [],
  strong: [],
  em: [],
  span: [],
  a: ['href', 'target', 'rel'],
};

const XSS_INPUTS = [
  '<script>alert(1)</script>',
  '<img src=x onerror=alert(1)>',
  '<svg/onload=alert(1)>',
  '<iframe src="javascript:alert(1)"></iframe>',
  '<a href="javascript:alert(1)">click</a>',
  '<style>body{background:url(javascript:alert(1))}</style>',
  '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
  '<details open ontoggle=alert(1)>',
  '"><script>alert(1)</script>',
  '[click](javascript:alert(1))',
  '[click](JaVaScRiPt:alert(1))',
  '[click](javascript&colon;alert(1))',
  '[click](\u0000javascript:alert(1))',
  '[click](vbscript:msgbox(1))',
  '[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)',
  '[click](file:///etc/passwd)',
  '[click](//evil.example/x)',
  '[click](chrome-extension://abc/popup.html)',
  '[click](https://ok.example/"onmouseover="alert(1))',
  "[click](https://ok.example/'><img src=x onerror=alert(1)>)",
  '[<img src=x onerror=alert(1)>](https://ok.example/)',
  '**<img src=x onerror=alert(1)>**',
  '*<b onmouseover=alert(1)>x</b>*',
  '`<script>alert(1)</script>`',
  '```html" onmouseover="alert(1)\n<script>alert(1)</script>\n```',
  '```html\n<script>alert(1)</script>\n```',
  '# <img src=x onerror=alert(1)>',
  '> <script>alert(1)</script>',
  '- <img src=x onerror=alert(1)>\n- [x](javascript:alert(1))',
  '1. <svg onload=alert(1)>',
  '&lt;script&gt;alert(1)&lt;/script&gt;',
  '<!-- comment --><script>alert(1)</script>',
  '<![CDATA[<script>alert(1)</script>]]>',
];

function renderedElements(text: string): Element[] {
  render(<Markdown text={text} />, container);
  return [...container.querySelectorAll('*')];
}

describe('Markdown renderer: XSS inputs', () => {
  test.each(XSS_INPUTS.map((x) => [x]))('%j renders only the renderer’s own elements', (input) => {
    const elements = renderedElements(input);
    for (const el of elements) {
      const tag = el.tagName.toLowerCase();
      expect(Object.keys(ALLOWED), `element <${tag}>`).toContain(tag);
      for (const attr of [...el.attributes]) expect(ALLOWED[tag], `<${tag} ${attr.name}>`).toContain(attr.name);
      if (tag === 'a') {
        expect(el.getAttribute('href')).toMatch(/^https?:\/\//);
        expect(el.getAttribute('rel')).toBe('noopener noreferrer');
      }
    }
    // The text the input held is still there to read (nothing dropped silently), as text.
    const visible = container.textContent ?? '';
    if (input.includes('alert(1)') && !/\]\(|^\[/.test(input)) expect(visible).toContain('alert(1)');
  });

  test('links: only http(s) URLs become hrefs', () => {
    expect(safeHref('https://example.org/a b')).toBe('https://example.org/a%20b');
    expect(safeHref('http://example.org')).toBe('http://example.org/');
    for (const bad of ['javascript:alert(1)', ' javascript:alert(1)', 'data:,x', 'vbscript:x', '//evil.example', 'x'])
      expect(safeHref(bad)).toBeNull();
  });
});

describe('Markdown renderer: inputs that make regular expressions backtrack', () => {
  // Each was measured before the fix (4000 characters): backticks 20 s, heading + spaces > 50 s, and 32000 '['
  // 2 s. The guard below is a hang guard (100x what they take now), not a speed target.
  const HANG_GUARD_MS = 2000;
  const cases: [string, string][] = [
    ['a run of backticks', '`'.repeat(4000)],
    ['backtick runs of growing length', Array.from({ length: 80 }, (_, k) => `${'`'.repeat(k + 1)}a`).join('')],
    ['a heading followed by spaces', `# a${' '.repeat(4000)}x`],
    ['a fence followed by spaces', `\`\`\`${' '.repeat(4000)}!`],
    ['a run of [', '['.repeat(32000)],
    ['unclosed links', '[a](b'.repeat(6000)],
    ['unclosed bold', '**a'.repeat(8000)],
    ['stars and letters', '*a '.repeat(8000)],
  ];
  test.each(cases)('%s: parsed and rendered inline within the hang guard', (_name, text) => {
    const started = performance.now();
    for (const b of parseBlocks(text)) {
      if (b.kind === 'list') for (const item of b.items) renderInline(item);
      else if (b.kind !== 'rule') renderInline(b.text);
    }
    expect(performance.now() - started).toBeLessThan(HANG_GUARD_MS);
  });

  test('the rewritten heading and fence rules still read what they did', () => {
    expect(parseBlocks('## Title ##')).toEqual([{ kind: 'heading', level: 2, text: 'Title' }]);
    expect(parseBlocks('# C#')).toEqual([{ kind: 'heading', level: 1, text: 'C#' }]);
    expect(parseBlocks('#   spaced   ')).toEqual([{ kind: 'heading', level: 1, text: 'spaced' }]);
    expect(parseBlocks('# ##')).toEqual([{ kind: 'heading', level: 1, text: '' }]);
    expect(parseBlocks('```ts  \nx\n```')).toEqual([{ kind: 'code', lang: 'ts', text: 'x' }]);
    expect(parseBlocks('```\nx\n```')).toEqual([{ kind: 'code', lang: '', text: 'x' }]);
    expect(parseBlocks('```ts js\nx')).toEqual([{ kind: 'paragraph', text: '```ts js\nx' }]);
  });

  test('code spans: a whole run opens, the same run closes', () => {
    render(<Markdown text={'a ``x ` y`` b `z` ```'} />, container);
    expect(container.innerHTML).toBe('<p>a <code>x ` y</code> b <code>z</code> ```</p>');
  });
});
