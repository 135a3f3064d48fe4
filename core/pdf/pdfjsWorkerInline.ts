// pdf.js for the extension's service worker. A service worker can neither start a Worker nor use dynamic import(),
// so the worker half of pdf.js is imported statically: importing pdf.worker.mjs sets globalThis.pdfjsWorker, and
// pdf.js then runs its "fake worker" in-process instead of loading workerSrc. Import this module only from the
// background (the modern build needs Chrome-era APIs such as Promise.withResolvers that Node 20 lacks).

import * as pdfjs from 'pdfjs-dist'; // main = build/pdf.mjs (the modern build)
import 'pdfjs-dist/build/pdf.worker.mjs';
import type { PdfjsLib } from './extract.ts';

export const pdfjsInline: PdfjsLib = pdfjs as unknown as PdfjsLib;
