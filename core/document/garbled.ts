// Garbled input on a page or in a PDF's text: binary read as text, base64 blobs, minified code, mojibake (UTF-8 read
// as Windows-1252). The first three carry nothing a reader wants and waste the context: they are dropped, and the
// share dropped goes to the coverage. Mojibake is repaired where the round trip back to UTF-8 is clean, and reported.
// Runs as bounded steps (a few thousand lines each) like the rest of the planning (core/document/bounded.ts).

import { runToEnd, type Steps } from './bounded.ts';

export type DroppedKind = 'binary' | 'base64' | 'minified-code';

export interface GarbleReport {
  /** The text without the dropped parts (mojibake repaired). */
  text: string;
  /** Characters of the input dropped, per kind. */
  dropped: Record<DroppedKind, number>;
  droppedChars: number;
  /** droppedChars / input length (0 for an empty input). */
  droppedFraction: number;
  /** Characters of mis-decoded text repaired (kept). */
  repairedChars: number;
}

// Characters binary data leaves behind once decoded as text: C0/C1 controls (tabs and newlines aside), the
// replacement character, private-use and non-characters.
const BINARY_CHAR = /[\u0000-\u0008\u000b\u000e-\u001f\u007f-\u009f\ufffd\ue000-\uf8ff\ufff0-\ufffc]/g;
const HAS_BINARY_CHAR = new RegExp(BINARY_CHAR.source);
// A base64 (or base64url) run: long, no spaces, letters of both cases and digits.
const BASE64_RUN = /[A-Za-z0-9+/_-]{120,}={0,2}/g;
const BASE64_LINE = /^[A-Za-z0-9+/_-]{60,}={0,2}$/;
const CODE_PUNCTUATION = /[{}()[\];=<>!&|,:?+*]/g;
// UTF-8 lead byte + continuation byte(s) read as Windows-1252: "Ã©", "â€™", "Â ".
const MOJIBAKE =
  /[\u00c2-\u00f4][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013\u2014\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]+/g;

/** Windows-1252 code points of 0x80..0x9F (the rest of 0x00..0xFF map to themselves). */
const CP1252_HIGH = [
  0x20ac, 0x81, 0x201a, 0x192, 0x201e, 0x2026, 0x2020, 0x2021, 0x2c6, 0x2030, 0x160, 0x2039, 0x152, 0x8d, 0x17d, 0x8f,
  0x90, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x2dc, 0x2122, 0x161, 0x203a, 0x153, 0x9d, 0x17e, 0x178,
];
const CP1252_BYTE = new Map<number, number>(CP1252_HIGH.map((cp, i) => [cp, 0x80 + i]));

function countMatches(text: string, pattern: RegExp): number {
  let n = 0;
  for (const m of text.matchAll(pattern)) n += m[0].length;
  return n;
}

function isBase64Like(run: string): boolean {
  return /[a-z]/.test(run) && /[A-Z]/.test(run) && /\d/.test(run);
}

/** What a line is, if garbled beyond use. `previous`: what the line before was dropped as (the tail of a wrapped
 * base64 block is short; binary split at its newline bytes leaves short pieces). */
function droppedKindOf(line: string, previous: DroppedKind | null): DroppedKind | null {
  const length = line.length;
  if (previous === 'base64' && /^[A-Za-z0-9+/_-]+={0,2}$/.test(line.trim())) return 'base64';
  if (previous === 'binary' && length > 0 && length < 40 && HAS_BINARY_CHAR.test(line)) return 'binary';
  // Binary split at its newline bytes leaves short lines too: those need a larger share.
  const binary = countMatches(line, BINARY_CHAR) / Math.max(1, length);
  if ((length >= 16 && binary >= 0.1) || (length > 0 && binary >= 0.25)) return 'binary';
  const trimmed = line.trim();
  if (BASE64_LINE.test(trimmed) && isBase64Like(trimmed)) return 'base64';
  if (length >= 200) {
    const spaces = countMatches(line, /\s/g) / length;
    const code = countMatches(line, CODE_PUNCTUATION) / length;
    if (code >= 0.1 && spaces <= 0.08) return 'minified-code';
  }
  return null;
}

/** Mojibake back to the text it was: the characters as Windows-1252 bytes, decoded as UTF-8; null if that fails. */
function repairMojibake(text: string): string | null {
  const bytes: number[] = [];
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0;
    const byte = cp <= 0xff ? cp : CP1252_BYTE.get(cp);
    if (byte === undefined) return null;
    bytes.push(byte);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(new Uint8Array(bytes));
  } catch {
    return null;
  }
}

/** Lines per step. */
const LINES_PER_STEP = 2000;

/** Drops binary, base64 and minified-code parts of `text` and repairs mojibake; says how much went. */
export function* dropGarbledSteps(text: string): Steps<GarbleReport> {
  const dropped: Record<DroppedKind, number> = { binary: 0, base64: 0, 'minified-code': 0 };
  let repairedChars = 0;
  const lines = text.split('\n');
  // Pass 1: each line, mojibake repaired first (UTF-8 read as Latin-1 shows C1 controls, which would otherwise read
  // as binary), then classified with the line before it.
  const repairedLines: string[] = [];
  const repairedCounts: number[] = [];
  const kinds: (DroppedKind | null)[] = [];
  let previous: DroppedKind | null = null;
  for (let i = 0; i < lines.length; i++) {
    let repairedHere = 0;
    const line = lines[i].replace(MOJIBAKE, (run) => {
      const repaired = repairMojibake(run);
      if (repaired === null || repaired === run) return run;
      repairedHere += run.length;
      return repaired;
    });
    previous = droppedKindOf(line, previous);
    repairedLines.push(line);
    repairedCounts.push(repairedHere);
    kinds.push(previous);
    if (i % LINES_PER_STEP === LINES_PER_STEP - 1) yield;
  }
  // Pass 2: a short piece with a binary character just before a binary line is binary too; then keep or drop.
  const kept: string[] = [];
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = repairedLines[i];
    if (kinds[i] === null && kinds[i + 1] === 'binary' && line.length < 40 && HAS_BINARY_CHAR.test(line))
      kinds[i] = 'binary';
  }
  for (let i = 0; i < lines.length; i++) {
    const kind = kinds[i];
    if (kind) {
      dropped[kind] += lines[i].length + (i < lines.length - 1 ? 1 : 0);
    } else {
      repairedChars += repairedCounts[i];
      // Base64 inside a line of text (an inlined data: URL): the run goes, the text around it stays.
      kept.push(
        repairedLines[i].replace(BASE64_RUN, (run) => {
          if (!isBase64Like(run)) return run;
          dropped.base64 += run.length;
          return '';
        }),
      );
    }
    if (i % LINES_PER_STEP === LINES_PER_STEP - 1) yield;
  }
  const droppedChars = dropped.binary + dropped.base64 + dropped['minified-code'];
  return {
    text: droppedChars + repairedChars > 0 ? kept.join('\n') : text,
    dropped,
    droppedChars,
    droppedFraction: text.length === 0 ? 0 : droppedChars / text.length,
    repairedChars,
  };
}

export function dropGarbled(text: string): GarbleReport {
  return runToEnd(dropGarbledSteps(text));
}

const KIND_NAMES: Record<DroppedKind, string> = {
  binary: 'binary data',
  base64: 'base64 data',
  'minified-code': 'minified code',
};

/** For the coverage line: "4% of the text was garbled (base64 data, minified code) and was left out." */
export function describeGarble(report: GarbleReport): string | null {
  const parts: string[] = [];
  if (report.droppedChars > 0) {
    const kinds = (Object.keys(report.dropped) as DroppedKind[])
      .filter((k) => report.dropped[k] > 0)
      .map((k) => KIND_NAMES[k]);
    const percent = Math.max(1, Math.round(report.droppedFraction * 100));
    parts.push(`${percent}% of the text was garbled (${kinds.join(', ')}) and was left out.`);
  }
  if (report.repairedChars > 0) parts.push('Mis-decoded characters (mojibake) were repaired.');
  return parts.length > 0 ? parts.join(' ') : null;
}
