// Page extraction for the content script: the article (Readability on a clone), else the visible text, else the
// selection when the user selected something. Output: Markdown-like text plus a block map from text offsets back to
// source elements. Bounded in time and size; truncation is reported, never silent.

import { isProbablyReaderable, Readability } from '@mozilla/readability';
import { cleanText, collapseWhitespace } from '../../core/document/text.ts';
import { type ExtractedBlock, makePathFinder, type WalkResult, walkBlocks } from './extractBlocks.ts';

export type { BlockKind, ExtractedBlock } from './extractBlocks.ts';

export type ExtractionKind = 'article' | 'visible-text' | 'selection';

/** [start, end) of ExtractedPage.text → the source element's path (see extractLocate.ts to get a DOM Range). */
export interface OffsetMapEntry {
  start: number;
  end: number;
  contentStart: number;
  path: string;
}

export interface ExtractedPage {
  title: string;
  byline: string | null;
  url: string;
  lang: string | null;
  text: string;
  blocks: ExtractedBlock[];
  offsetMap: OffsetMapEntry[];
  kind: ExtractionKind;
  /** Set when the walk stopped early; `fraction` ≈ share of the page's text that was taken. */
  truncated: null | { reason: 'deadline' | 'max-chars'; takenChars: number; pageChars: number; fraction: number };
  stats: {
    chars: number;
    words: number;
    blocks: number;
    elementsVisited: number;
    ms: number;
    /** What happened with Readability: used, found no article, skipped (page too large / mode forced), or threw. */
    readability: 'used' | 'no-article' | 'too-large' | 'not-tried' | 'failed';
  };
}

/** The parts of a DOM Selection used here (the live one, or a stand-in in tests). */
export interface SelectionLike {
  rangeCount: number;
  getRangeAt(index: number): { toString(): string; commonAncestorContainer: Node };
}

export interface ExtractOptions {
  /** 'auto' (default): selection if any, else article, else visible text. */
  mode?: 'auto' | ExtractionKind;
  /** Defaults to the document's own selection when the DOM has one. */
  selection?: SelectionLike | null;
  /** Time budget for the whole extraction (default 2000 ms). */
  deadlineMs?: number;
  /** Stop after this many characters of output (default 4,000,000). */
  maxChars?: number;
  /** Above this many elements Readability is not run: it cannot be interrupted (default 15,000). */
  maxElementsForReadability?: number;
  url?: string;
  now?: () => number;
}

export type ExtractionErrorCode = 'empty' | 'empty-selection' | 'no-body';

export class ExtractionError extends Error {
  constructor(
    readonly code: ExtractionErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ExtractionError';
  }
}

export const PATH_ATTRIBUTE = 'data-rr-path';

const NOISE_ROLES = new Set(['navigation', 'complementary', 'contentinfo', 'banner', 'menu', 'menubar', 'toolbar']);
const NOISE_TAGS = new Set(['nav', 'aside', 'footer', 'button', 'select', 'input', 'textarea', 'option', 'dialog']);
const NOISE_NAME = /(^|[\s_-])(ads?|advert\w*|sponsor\w*|promo\w*|cookie\w*|banner|newsletter|share|social)([\s_-]|$)/i;

/** Hidden by markup or (in a browser) by style. */
function isHidden(el: Element): boolean {
  // An element without attributes is hidden only by tag selectors or by an ancestor (already skipped): skipping the
  // browser's check for those halves the cost of the walk on big pages.
  if (el.attributes.length === 0) return false;
  if (el.hasAttribute('hidden') || el.getAttribute('aria-hidden') === 'true') return true;
  const style = (el.getAttribute('style') ?? '').replace(/\s+/g, '').toLowerCase();
  if (style.includes('display:none') || style.includes('visibility:hidden')) return true;
  const check = (el as Element & { checkVisibility?: (o: object) => boolean }).checkVisibility;
  if (typeof check === 'function' && !check.call(el, { visibilityProperty: true })) {
    // display: contents has no box of its own, yet its children show.
    const view = el.ownerDocument.defaultView;
    return view?.getComputedStyle?.(el).display !== 'contents';
  }
  return false;
}

/** The visible-text fallback drops navigation, sidebars, footers, form controls, ads and hidden elements. */
function isVisibleTextNoise(el: Element): boolean {
  const tag = el.localName.toLowerCase();
  if (NOISE_TAGS.has(tag)) return true;
  if (NOISE_ROLES.has(el.getAttribute('role') ?? '')) return true;
  if (tag === 'header' && el.closest('article, main') === null) return true;
  const name = `${el.getAttribute('id') ?? ''} ${el.getAttribute('class') ?? ''}`;
  if (name.length > 1 && NOISE_NAME.test(name)) return true;
  return isHidden(el);
}

function countWords(text: string): number {
  return text.match(/[\p{L}\p{N}]+/gu)?.length ?? 0;
}

function nearestStampedPath(el: Element, fallback: string): string {
  for (let e: Element | null = el; e !== null; e = e.parentElement) {
    const path = e.getAttribute(PATH_ATTRIBUTE);
    if (path !== null) return path;
  }
  return fallback;
}

/** Runs Readability on a clone whose elements carry their original paths, so the article maps back to the page. */
function extractArticle(doc: Document, limits: Parameters<typeof walkBlocks>[3]) {
  const clone = doc.cloneNode(true) as Document;
  const pathOf = makePathFinder();
  for (const el of Array.from(clone.querySelectorAll('*'))) el.setAttribute(PATH_ATTRIBUTE, pathOf(el));
  const bodyPath = clone.body ? pathOf(clone.body) : '/html[1]/body[1]';
  // The serializer hands back the article element itself (not an HTML string), path attributes intact.
  const reader = new Readability<Element>(clone, { serializer: (el) => el as Element });
  const article = reader.parse();
  if (article === null || article.content === null || article.content === undefined) return null;
  const walk = walkBlocks(
    article.content,
    () => false,
    (el) => nearestStampedPath(el, bodyPath),
    limits,
  );
  return { article, walk };
}

function extractSelection(selection: SelectionLike, pathOf: (el: Element) => string): WalkResult {
  const parts: string[] = [];
  const blocks: ExtractedBlock[] = [];
  let length = 0;
  for (let i = 0; i < selection.rangeCount; i++) {
    const range = selection.getRangeAt(i);
    const text = cleanText(range.toString())
      .split('\n')
      .map((l) => l.replace(/[ \t\u00a0]+/g, ' ').trim())
      .join('\n')
      .replace(/\n{3,}/g, '\n\n')
      .trim();
    if (text.length === 0) continue;
    const node = range.commonAncestorContainer;
    const el = node.nodeType === 1 ? (node as Element) : node.parentElement;
    const start = length + (parts.length > 0 ? 2 : 0);
    parts.push(text);
    length = start + text.length;
    const path = el ? pathOf(el) : '/html[1]/body[1]';
    blocks.push({ kind: 'paragraph', level: 0, start, end: length, contentStart: start, path });
  }
  return { text: parts.join('\n\n'), blocks, elementsVisited: 0, stoppedBy: null };
}

function defaultSelection(doc: Document): SelectionLike | null {
  const view = doc.defaultView as (Window & { getSelection?: () => Selection | null }) | null;
  return typeof view?.getSelection === 'function' ? view.getSelection() : null;
}

/** Extracts the page. Throws ExtractionError when there is nothing to read. */
export function extractPage(doc: Document, opts: ExtractOptions = {}): ExtractedPage {
  const now = opts.now ?? (() => performance.now());
  const started = now();
  const mode = opts.mode ?? 'auto';
  const limits = { deadline: started + (opts.deadlineMs ?? 2000), maxChars: opts.maxChars ?? 4_000_000, now };
  // A page script can remove the root element; browsers then give a null body, some DOMs (linkedom) throw instead.
  const body = doc.documentElement ? doc.body : null;
  if (!body) throw new ExtractionError('no-body', 'This page has no body to read (is it a frameset or an image?).');
  const pathOf = makePathFinder();
  const url = opts.url ?? doc.URL ?? '';
  let title = collapseWhitespace(cleanText(doc.title ?? ''));
  let byline: string | null = null;
  let kind: ExtractionKind = 'visible-text';
  let readability: ExtractedPage['stats']['readability'] = 'not-tried';
  let walk: WalkResult | null = null;

  const selection = mode === 'auto' || mode === 'selection' ? (opts.selection ?? defaultSelection(doc)) : null;
  if (selection && selection.rangeCount > 0 && selection.getRangeAt(0).toString().trim().length > 0) {
    walk = extractSelection(selection, pathOf);
    kind = 'selection';
  } else if (mode === 'selection') {
    throw new ExtractionError('empty-selection', 'No text is selected on this page.');
  }

  if (walk === null && (mode === 'auto' || mode === 'article')) {
    const elementCount = doc.querySelectorAll('*').length;
    if (elementCount > (opts.maxElementsForReadability ?? 15_000)) {
      readability = 'too-large';
    } else if (mode === 'auto' && !isProbablyReaderable(doc)) {
      readability = 'no-article';
    } else {
      try {
        const result = extractArticle(doc, limits);
        if (result !== null && result.walk.text.length > 0) {
          walk = result.walk;
          kind = 'article';
          readability = 'used';
          title = collapseWhitespace(cleanText(result.article.title ?? '')) || title;
          byline = result.article.byline ? collapseWhitespace(cleanText(result.article.byline)) : null;
        } else {
          readability = 'no-article';
        }
      } catch {
        readability = 'failed';
      }
    }
  }
  if (walk === null) walk = walkBlocks(body, isVisibleTextNoise, pathOf, limits);
  if (walk.text.trim().length === 0) {
    throw new ExtractionError('empty', 'This page has no readable text.');
  }

  let truncated: ExtractedPage['truncated'] = null;
  if (walk.stoppedBy !== null) {
    const pageChars = Math.max(walk.text.length, collapseWhitespace(body.textContent ?? '').length);
    const fraction = Math.min(1, walk.text.length / Math.max(1, pageChars));
    truncated = { reason: walk.stoppedBy, takenChars: walk.text.length, pageChars, fraction };
  }
  const lang = doc.documentElement?.getAttribute('lang') ?? null;
  return {
    title: title || url,
    byline,
    url,
    lang,
    text: walk.text,
    blocks: walk.blocks,
    offsetMap: walk.blocks.map((b) => ({ start: b.start, end: b.end, contentStart: b.contentStart, path: b.path })),
    kind,
    truncated,
    stats: {
      chars: walk.text.length,
      words: countWords(walk.text),
      blocks: walk.blocks.length,
      elementsVisited: walk.elementsVisited,
      ms: now() - started,
      readability,
    },
  };
}
