// A small, safe Markdown renderer for model output: it builds Preact elements from text, so nothing the model or the
// page wrote can become HTML. Supports headings, paragraphs, lists, block quotes, fenced code, rules, inline code,
// bold, italics and http(s) links. Incomplete syntax while streaming (an unclosed fence) renders sensibly.
import type { ComponentChildren, JSX } from 'preact';

export type Block =
  | { kind: 'heading'; level: 1 | 2 | 3 | 4 | 5 | 6; text: string }
  | { kind: 'paragraph'; text: string }
  | { kind: 'list'; ordered: boolean; start: number; items: string[] }
  | { kind: 'quote'; text: string }
  | { kind: 'code'; lang: string; text: string }
  | { kind: 'rule' };

// No two unbounded quantifiers may meet over the same characters (`\s*([\w+-]*)\s*`, `(.*?)\s*#*\s*$`): on a long
// run of spaces they backtrack in O(n^2)..O(n^3) and a 4000-character answer froze the popup for seconds
// (tests/unit/markdownSafety.test.tsx).
const FENCE = /^\s{0,3}(```|~~~)(?:\s*([\w+-]+))?\s*$/;
const HEADING = /^\s{0,3}(#{1,6})\s+(.*)$/;
const BULLET = /^\s{0,3}[-*+]\s+(.*)$/;
const ORDERED = /^\s{0,3}(\d{1,9})[.)]\s+(.*)$/;
const QUOTE = /^\s{0,3}>\s?(.*)$/;
const RULE = /^\s{0,3}([-*_])(\s*\1){2,}\s*$/;

/** A heading's text without its optional closing hashes ("## Title ##"), trimmed; in code, not a regex (see above). */
function headingText(raw: string): string {
  const text = raw.trimEnd();
  let end = text.length;
  while (end > 0 && text[end - 1] === '#') end--;
  // Closing hashes count only after whitespace (or as the whole text): "C#" keeps its hash.
  return end === 0 || /\s/.test(text[end - 1]) ? text.slice(0, end).trimEnd() : text;
}

export function parseBlocks(source: string): Block[] {
  const lines = source.replace(/\r\n?/g, '\n').split('\n');
  const blocks: Block[] = [];
  let paragraph: string[] = [];
  const flush = () => {
    if (paragraph.length) blocks.push({ kind: 'paragraph', text: paragraph.join('\n') });
    paragraph = [];
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const fence = FENCE.exec(line);
    if (fence) {
      flush();
      const body: string[] = [];
      for (i++; i < lines.length && !new RegExp(`^\\s{0,3}${fence[1]}\\s*$`).test(lines[i]); i++) body.push(lines[i]);
      blocks.push({ kind: 'code', lang: fence[2] ?? '', text: body.join('\n') });
      continue;
    }
    if (!line.trim()) {
      flush();
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      flush();
      blocks.push({ kind: 'heading', level: heading[1].length as 1, text: headingText(heading[2]) });
      continue;
    }
    if (RULE.test(line)) {
      flush();
      blocks.push({ kind: 'rule' });
      continue;
    }
    const bullet = BULLET.exec(line);
    const ordered = ORDERED.exec(line);
    if (bullet || ordered) {
      flush();
      const isOrdered = !bullet;
      const items: string[] = [];
      const start = ordered ? Number(ordered[1]) : 1;
      for (; i < lines.length; i++) {
        const b = BULLET.exec(lines[i]);
        const o = ORDERED.exec(lines[i]);
        const item = isOrdered ? o?.[2] : b?.[1];
        if (item !== undefined) items.push(item);
        else if (lines[i].trim() && /^\s{2,}/.test(lines[i]) && items.length)
          items[items.length - 1] += ` ${lines[i].trim()}`;
        else break;
      }
      i--;
      blocks.push({ kind: 'list', ordered: isOrdered, start, items });
      continue;
    }
    const quote = QUOTE.exec(line);
    if (quote) {
      flush();
      const body: string[] = [];
      for (; i < lines.length; i++) {
        const q = QUOTE.exec(lines[i]);
        if (!q) break;
        body.push(q[1]);
      }
      i--;
      blocks.push({ kind: 'quote', text: body.join('\n') });
      continue;
    }
    paragraph.push(line);
  }
  flush();
  return blocks;
}

// Inline: `code` first (its content is literal), then links, bold, italics. A code span opens only on a whole run of
// backticks (`(?<!`)`): without that, a long run was tried at every split and took O(n^3). A link's label holds no
// `[` and its URL no `(`, both bounded, so a run of `[` or of `[a](b` is not rescanned to the end from each one.
const INLINE =
  /(?<!`)(`+)(?!`)([\s\S]*?[^`])\1(?!`)|\[([^[\]\n]{1,500})\]\(([^()\s]{1,2048})\)|\*\*([^*\n]+)\*\*|__([^_\n]+)__|\*([^*\n]+)\*|\b_([^_\n]+)_\b/g;

export function safeHref(url: string): string | null {
  try {
    const u = new URL(url);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : null;
  } catch {
    return null;
  }
}

export function renderInline(text: string, keyPrefix = 'i'): ComponentChildren[] {
  const out: ComponentChildren[] = [];
  let last = 0;
  let n = 0;
  for (const m of text.matchAll(INLINE)) {
    const at = m.index ?? 0;
    if (at > last) out.push(text.slice(last, at));
    const key = `${keyPrefix}${n++}`;
    if (m[1]) out.push(<code key={key}>{m[2]}</code>);
    else if (m[3] !== undefined) {
      const href = safeHref(m[4]);
      const label = renderInline(m[3], `${key}.`);
      out.push(
        href ? (
          <a key={key} href={href} target="_blank" rel="noopener noreferrer">
            {label}
          </a>
        ) : (
          <span key={key}>{label}</span>
        ),
      );
    } else if (m[5] !== undefined || m[6] !== undefined)
      out.push(<strong key={key}>{renderInline(m[5] ?? m[6], `${key}.`)}</strong>);
    else out.push(<em key={key}>{renderInline(m[7] ?? m[8], `${key}.`)}</em>);
    last = at + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

function withBreaks(text: string, key: string): ComponentChildren[] {
  return text
    .split('\n')
    .flatMap((line, i) =>
      i === 0 ? renderInline(line, `${key}l${i}`) : [<br key={`${key}br${i}`} />, ...renderInline(line, `${key}l${i}`)],
    );
}

export function renderBlock(b: Block, key: string, onCopyCode?: (code: string) => void): JSX.Element {
  switch (b.kind) {
    case 'heading': {
      const Tag = `h${Math.min(6, b.level + 2)}` as 'h3'; // h1 → h3: the answer sits under the popup's own headings
      return <Tag key={key}>{renderInline(b.text, key)}</Tag>;
    }
    case 'paragraph':
      return <p key={key}>{withBreaks(b.text, key)}</p>;
    case 'list': {
      const items = b.items.map((item, i) => <li key={`${key}-${i}`}>{renderInline(item, `${key}-${i}`)}</li>);
      return b.ordered ? (
        <ol key={key} start={b.start}>
          {items}
        </ol>
      ) : (
        <ul key={key}>{items}</ul>
      );
    }
    case 'quote':
      return <blockquote key={key}>{withBreaks(b.text, key)}</blockquote>;
    case 'code':
      return (
        <pre key={key} data-lang={b.lang || undefined}>
          <code>{b.text}</code>
          {onCopyCode && (
            <button type="button" class="copy-code" data-testid="copy-code" onClick={() => onCopyCode(b.text)}>
              Copy
            </button>
          )}
        </pre>
      );
    case 'rule':
      return <hr key={key} />;
  }
}

/** `onCopyCode`: each code block gets a Copy button that hands its text over. */
export function Markdown({ text, onCopyCode }: { text: string; onCopyCode?: (code: string) => void }) {
  return <>{parseBlocks(text).map((b, i) => renderBlock(b, `b${i}`, onCopyCode))}</>;
}
