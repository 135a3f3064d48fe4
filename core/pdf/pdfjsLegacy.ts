// pdf.js for Node (tests, CLI, bench): the legacy build carries the polyfills Node 20 needs, and in Node pdf.js runs
// its worker code in-process on its own. The import is dynamic so that merely importing this module costs nothing.

import type { PdfjsLib } from './extract.ts';

let loaded: Promise<PdfjsLib> | null = null;

export function loadPdfjsLegacy(): Promise<PdfjsLib> {
  loaded ??= import('pdfjs-dist/legacy/build/pdf.mjs').then((mod) => mod as unknown as PdfjsLib);
  return loaded;
}
