// Node-only: the snapshot engine version (core/snapshot/engineVersion.ts) computed from the source files on disk.
// wxt.config.ts calls this too, so the extension's baked-in version is the same function of the same files.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isKvCodeFile, KV_CODE_ROOTS, KV_CODE_VERSION_LENGTH, kvCodeDigestInput } from '../snapshot/engineVersion';

/** The project root (this file is core/node/kvCodeVersion.ts). */
const projectRoot = () => resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');

function listFiles(path: string): string[] {
  if (!existsSync(path)) return [];
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path).flatMap((name) => listFiles(join(path, name)));
}

/** The K/V code files under `root`, as the version hashes them (paths relative to `root`, `/`-separated). */
export function kvCodeFiles(root = projectRoot()): { path: string; text: string }[] {
  return KV_CODE_ROOTS.flatMap((r) => listFiles(join(root, r)))
    .map((file) => relative(root, file).split('\\').join('/'))
    .filter(isKvCodeFile)
    .map((path) => ({ path, text: readFileSync(join(root, path), 'utf8') }));
}

export function kvCodeVersionOf(files: readonly { path: string; text: string }[]): string {
  return createHash('sha256').update(kvCodeDigestInput(files)).digest('hex').slice(0, KV_CODE_VERSION_LENGTH);
}

let cached: string | undefined;

/** The engine version of the code in this checkout. */
export function nodeKvCodeVersion(): string {
  cached ??= kvCodeVersionOf(kvCodeFiles());
  return cached;
}
