// DOM → Markdown-like text, one block per paragraph/heading/list item/quote/row, each block remembering the element it
// came from (an XPath-like path, resolvable in the live page later). Works on any DOM with Node/Element basics (the
// browser, linkedom). Bounded: a deadline and a character cap stop the walk, and the caller is told.

import { cleanText } from '../../core/document/text.ts';

export type BlockKind = 'heading' | 'paragraph' | 'list-item' | 'quote' | 'code' | 'table-row';

export interface ExtractedBlock {
  kind: BlockKind;
  /** Heading level (1–6), list nesting depth (1 = top level), quote depth; 0 otherwise. */
  level: number;
  /** [start, end) in ExtractedPage.text, Markdown prefix ("## ", "- ", "> ") included. */
  start: number;
  end: number;
  /** Where the element's own text begins (after the prefix). */
  contentStart: number;
  /** Path of the source element in the original document, e.g. "/html[1]/body[1]/article[1]/p[3]". */
  path: string;
}

export interface WalkLimits {
  deadline: number;
  maxChars: number;
  now: () => number;
}

export interface WalkResult {
  text: string;
  blocks: ExtractedBlock[];
  elementsVisited: number;
  stoppedBy: null | 'deadline' | 'max-chars';
}

const ELEMENT_NODE = 1;
const TEXT_NODE = 3;

const BLOCK_TAGS = new Set(
  (
    'address article aside blockquote body center dd details dialog dir div dl dt fieldset figcaption figure footer ' +
    'form h1 h2 h3 h4 h5 h6 header hgroup hr li main menu nav ol p pre section summary table tbody thead tfoot tr ul ' +
    'caption legend'
  ).split(' '),
);
/** Never text for a reader, in any mode. */
export const NEVER_TEXT_TAGS = new Set(
  'script style noscript template svg canvas iframe object embed head link meta title math video audio'.split(' '),
);

interface Context {
  kind: BlockKind;
  level: number;
  quoteDepth: number;
  listDepth: number;
  marker: string;
  /** Set on an <ol>: the number of the next item. */
  ordinal: { next: number } | null;
  element: Element;
}

/** Path finder with per-parent caches, so paths for every block of a huge page cost O(elements) in total. */
export function makePathFinder(): (el: Element) => string {
  const indexCache = new WeakMap<Element, Map<Element, number>>();
  const pathCache = new WeakMap<Element, string>();
  const pathOf = (el: Element): string => {
    const cached = pathCache.get(el);
    if (cached !== undefined) return cached;
    const parent = el.parentElement;
    const tag = el.localName.toLowerCase();
    let path: string;
    if (parent === null) {
      path = `/${tag}[1]`;
    } else {
      let indices = indexCache.get(parent);
      if (indices === undefined) {
        indices = new Map();
        const counts = new Map<string, number>();
        for (const child of Array.from(parent.children)) {
          const childTag = child.localName.toLowerCase();
          const n = (counts.get(childTag) ?? 0) + 1;
          counts.set(childTag, n);
          indices.set(child, n);
        }
        indexCache.set(parent, indices);
      }
      path = `${pathOf(parent)}/${tag}[${indices.get(el) ?? 1}]`;
    }
    pathCache.set(el, path);
    return path;
  };
  return pathOf;
}

function collapseInline(text: string): string {
  return text
    .split('\n')
    .map((line) => line.replace(/[ \t\f\r\u00a0]+/g, ' ').trim())
    .filter((line) => line.length > 0)
    .join('\n');
}

/**
 * Walks `root`, rendering blocks. `skip(el)` prunes subtrees (hidden, navigation...); `pathOf(el)` names the source
 * element of a block.
 */
export function walkBlocks(
  root: Element,
  skip: (el: Element) => boolean,
  pathOf: (el: Element) => string,
  limits: WalkLimits,
): WalkResult {
  const parts: string[] = [];
  const blocks: ExtractedBlock[] = [];
  let length = 0;
  let buffer = '';
  let elementsVisited = 0;
  let stoppedBy: WalkResult['stoppedBy'] = null;
  const rootContext: Context = {
    kind: 'paragraph',
    level: 0,
    quoteDepth: 0,
    listDepth: 0,
    marker: '',
    ordinal: null,
    element: root,
  };
  const stack: Context[] = [rootContext];

  const flush = () => {
    const context = stack[stack.length - 1];
    const raw = cleanText(buffer);
    buffer = '';
    const content = context.kind === 'code' ? raw.replace(/^\n+|\s+$/g, '') : collapseInline(raw);
    if (content.length === 0) return;
    const quote = '> '.repeat(context.quoteDepth);
    let prefix = quote;
    if (context.kind === 'heading') prefix += '#'.repeat(context.level) + ' ';
    if (context.kind === 'list-item') prefix += '  '.repeat(Math.max(0, context.listDepth - 1)) + context.marker;
    const body = content.split('\n').join('\n' + quote);
    const start = length + (parts.length > 0 ? 2 : 0);
    const blockText = prefix + body;
    parts.push(blockText);
    length = start + blockText.length;
    const kind = context.quoteDepth > 0 && context.kind === 'paragraph' ? 'quote' : context.kind;
    const level =
      kind === 'quote' ? context.quoteDepth : context.kind === 'list-item' ? context.listDepth : context.level;
    blocks.push({
      kind,
      level,
      start,
      end: length,
      contentStart: start + prefix.length,
      path: pathOf(context.element),
    });
    if (length >= limits.maxChars) stoppedBy = 'max-chars';
  };

  const childContext = (el: Element, tag: string, parent: Context): Context => {
    const base = { ...parent, element: el };
    if (/^h[1-6]$/.test(tag)) return { ...base, kind: 'heading', level: Number(tag[1]) };
    if (tag === 'blockquote') return { ...base, kind: 'paragraph', level: 0, quoteDepth: parent.quoteDepth + 1 };
    if (tag === 'pre') return { ...base, kind: 'code', level: 0 };
    if (tag === 'tr') return { ...base, kind: 'table-row', level: 0 };
    if (tag === 'ul' || tag === 'ol' || tag === 'menu' || tag === 'dir') {
      const ordinal = tag === 'ol' ? { next: Number(el.getAttribute('start') ?? '1') || 1 } : null;
      return { ...base, kind: 'paragraph', level: 0, listDepth: parent.listDepth + 1, ordinal };
    }
    if (tag === 'li') {
      const marker = parent.ordinal !== null ? `${parent.ordinal.next++}. ` : '- ';
      return { ...base, kind: 'list-item', level: 0, listDepth: Math.max(1, parent.listDepth), marker, ordinal: null };
    }
    // A paragraph inside a list item or a heading stays part of it.
    if (parent.kind === 'list-item' || parent.kind === 'heading' || parent.kind === 'code') return base;
    return { ...base, kind: 'paragraph', level: 0 };
  };

  const visit = (node: Node): void => {
    if (stoppedBy !== null) return;
    if (node.nodeType === TEXT_NODE) {
      const inCode = stack[stack.length - 1].kind === 'code';
      buffer += inCode ? (node.nodeValue ?? '') : (node.nodeValue ?? '').replace(/\s+/g, ' ');
      return;
    }
    if (node.nodeType !== ELEMENT_NODE) return;
    const el = node as Element;
    elementsVisited++;
    if ((elementsVisited & 127) === 0 && limits.now() > limits.deadline) {
      stoppedBy = 'deadline';
      return;
    }
    const tag = el.localName.toLowerCase();
    if (NEVER_TEXT_TAGS.has(tag) || skip(el)) return;
    if (tag === 'br') {
      buffer += '\n';
      return;
    }
    if (tag === 'td' || tag === 'th') {
      if (buffer.trim().length > 0) buffer += ' | ';
    }
    const isBlock = BLOCK_TAGS.has(tag);
    if (isBlock) {
      flush();
      stack.push(childContext(el, tag, stack[stack.length - 1]));
    }
    for (let child = el.firstChild; child !== null && stoppedBy === null; child = child.nextSibling) visit(child);
    if (isBlock) {
      // Text already collected counts even when a limit stopped the walk: truncation keeps what was read.
      flush();
      stack.pop();
    }
  };

  visit(root);
  if (buffer.length > 0) flush();
  return { text: parts.join('\n\n'), blocks, elementsVisited, stoppedBy };
}
