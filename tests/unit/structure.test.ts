// House layering rules, read from the import statements: no two folders of core/ import each other in a cycle, and
// core/ never imports the browser-extension layer, and kernels/ (the bottom layer) imports nothing from core/.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, test } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (/\.tsx?$/.test(name)) out.push(path);
  }
  return out;
}

/** Relative import targets of a file, resolved to paths under ROOT. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.[^']+)'/g)) out.push(resolve(dirname(file), m[1]));
  return out;
}

/** core/<folder> → the other core folders it imports. */
function coreFolderGraph(): Map<string, Set<string>> {
  const core = join(ROOT, 'core');
  const graph = new Map<string, Set<string>>();
  for (const file of sourceFiles(core)) {
    const from = relative(core, file).split('/')[0];
    if (!graph.has(from)) graph.set(from, new Set());
    for (const target of importsOf(file)) {
      const rel = relative(core, target);
      if (rel.startsWith('..')) continue;
      const to = rel.split('/')[0];
      if (to !== from && !to.includes('.')) graph.get(from)!.add(to);
    }
  }
  return graph;
}

/** The folder cycles of a graph, each as a path a → … → a. */
function folderCycles(graph: Map<string, Set<string>>): string[][] {
  const cycles: string[][] = [];
  const visit = (node: string, path: string[]) => {
    for (const next of graph.get(node) ?? []) {
      const at = path.indexOf(next);
      if (at >= 0) cycles.push([...path.slice(at), next]);
      else visit(next, [...path, next]);
    }
  };
  for (const start of graph.keys()) visit(start, [start]);
  return cycles;
}

describe('layering', () => {
  test('the cycle finder sees a cycle (it can fail)', () => {
    const g = new Map([
      ['a', new Set(['b'])],
      ['b', new Set(['c'])],
      ['c', new Set(['a'])],
    ]);
    expect(folderCycles(g).length).toBeGreaterThan(0);
  });

  test('no two folders of core/ import each other in a cycle', () => {
    const cycles = folderCycles(coreFolderGraph()).map((c) => c.join(' → '));
    expect(cycles).toEqual([]);
  });

  test('core/ imports nothing from entrypoints/, components/ or a browser-extension API', () => {
    const offenders: string[] = [];
    for (const file of sourceFiles(join(ROOT, 'core'))) {
      // Comments may name the APIs ("what chrome.storage.local keeps"); code may not.
      const text = readFileSync(file, 'utf8')
        .replace(/\/\*[\s\S]*?\*\//g, '')
        .replace(/\/\/.*$/gm, '');
      for (const target of importsOf(file)) {
        const rel = relative(ROOT, target);
        if (rel.startsWith('entrypoints') || rel.startsWith('components'))
          offenders.push(`${relative(ROOT, file)} → ${rel}`);
      }
      if (
        /from\s+'(wxt|#imports|webextension-polyfill)/.test(text) ||
        /\b(chrome|browser)\.(runtime|tabs|storage)\b/.test(text)
      )
        offenders.push(`${relative(ROOT, file)} uses a browser-extension API`);
    }
    expect(offenders).toEqual([]);
  });

  test('kernels/ imports nothing from core/, entrypoints/, components/ or scripts/', () => {
    const offenders: string[] = [];
    for (const file of sourceFiles(join(ROOT, 'kernels'))) {
      for (const target of importsOf(file)) {
        const rel = relative(ROOT, target);
        if (!rel.startsWith('kernels/')) offenders.push(`${relative(ROOT, file)} → ${rel}`);
      }
    }
    expect(offenders).toEqual([]);
  });
});
