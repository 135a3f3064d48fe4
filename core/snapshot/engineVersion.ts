// The engine version a snapshot belongs to, derived from the code that computes K/V: the kernels (WGSL and their
// wrappers), the GPU model and KV cache, weight normalisation and the snapshot layout. Any change there changes the
// version, so snapshots written by other code miss instead of restoring K/V this code would not compute. No
// hand-bumped constant to forget. The extension gets the version at build time (wxt.config.ts defines it); Node
// computes it from the same files (core/node/kvCodeVersion.ts); both hash `kvCodeDigestInput`.
import { SNAPSHOT_LAYOUT_VERSION } from './key';

/** Folders and files (relative to the project root) whose code decides what a cached K/V holds. */
export const KV_CODE_ROOTS = [
  'kernels',
  'core/engine/gpuModel.ts',
  'core/engine/kvCache.ts',
  'core/model/config.ts',
  'core/model/weights.ts',
  'core/snapshot/layout.ts',
];

/** Of the files under KV_CODE_ROOTS: the TypeScript sources, not the plain-TS references the tests compare with. */
export function isKvCodeFile(path: string): boolean {
  return /\.ts$/.test(path) && !/\.reference\.ts$/.test(path) && !/\.test\.ts$/.test(path);
}

/** The bytes the version hashes: the layout version, then each file as path, NUL, text, NUL, sorted by path. */
export function kvCodeDigestInput(files: readonly { path: string; text: string }[]): Uint8Array {
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const parts = [`kv-layout-v${SNAPSHOT_LAYOUT_VERSION}\0`];
  for (const f of sorted) parts.push(`${f.path}\0${f.text}\0`);
  return new TextEncoder().encode(parts.join(''));
}

/** Hex digits of the version kept (64 bits: plenty to tell code versions apart). */
export const KV_CODE_VERSION_LENGTH = 16;

declare const __RR_KV_CODE_VERSION__: string | undefined;

/** The version the bundler baked in (the extension); null where the code runs unbundled (Node). */
export function bundledKvCodeVersion(): string | null {
  return typeof __RR_KV_CODE_VERSION__ === 'string' ? __RR_KV_CODE_VERSION__ : null;
}
