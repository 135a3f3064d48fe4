// PDF text extraction. The pdf.js loaders are separate modules on purpose: pdfjsLegacy.ts (Node) and
// pdfjsWorkerInline.ts (service worker) load different builds, and importing one must not pull in the other.
export * from './assemble.ts';
export * from './detect.ts';
export * from './extract.ts';
export * from './fetch.ts';
