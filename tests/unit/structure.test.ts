// What dependency-cruiser cannot see: core/ uses no browser-extension API through the globals (`chrome.*`,
// `browser.*`), which need no import. The import-level layering (entrypoints → core → kernels, no core/ folder
// cycles, the UI only through core/protocol) is checked by .dependency-cruiser.cjs in npm test's lint step
// (`npm run lint:deps`); tests/unit/dependencyRules.test.ts shows those rules fail on a violating tree.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
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

/** Files whose code (comments stripped) touches an extension API global or imports the extension framework. */
function extensionApiUsers(files: string[]): string[] {
  const offenders: string[] = [];
  for (const file of files) {
    // Comments may name the APIs ("what chrome.storage.local keeps"); code may not.
    const text = readFileSync(file, 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/\/\/.*$/gm, '');
    if (
      /from\s+'(wxt|#imports|webextension-polyfill)/.test(text) ||
      /\b(chrome|browser)\.(runtime|tabs|storage|scripting|sidePanel|action|contextMenus)\b/.test(text)
    )
      offenders.push(relative(ROOT, file));
  }
  return offenders;
}

describe('layering', () => {
  test('the check sees an extension API global in code, not in a comment (it can fail)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rr-structure-'));
    try {
      const uses = join(dir, 'uses.ts');
      const mentions = join(dir, 'mentions.ts');
      writeFileSync(uses, 'export const q = () => chrome.tabs.query({});\n');
      writeFileSync(mentions, '// what chrome.storage.local keeps\nexport const x = 1;\n');
      expect(extensionApiUsers([uses, mentions])).toEqual([relative(ROOT, uses)]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('core/ uses no browser-extension API', () => {
    expect(extensionApiUsers(sourceFiles(join(ROOT, 'core')))).toEqual([]);
  });
});
