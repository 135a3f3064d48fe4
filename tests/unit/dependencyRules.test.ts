// The layering rules of .dependency-cruiser.cjs (run by `npm run lint:deps` in npm test's lint step) can fail: the
// real depcruise CLI with the real config, on a temp tree that breaks every rule once, must exit non-zero and name
// each rule with its offending module; on a tree that keeps the layers it must pass.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const CONFIG = join(ROOT, '.dependency-cruiser.cjs');
const DEPCRUISE = join(ROOT, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');
const ruleNames: string[] = createRequire(import.meta.url)(CONFIG).forbidden.map((r: { name: string }) => r.name);

const temps: string[] = [];
afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

/** A module that exports one constant and imports nothing. */
const exporter = (name: string) => `export const ${name} = 1;\n`;

/** A project tree in a temp folder: path → file text. */
function makeTree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'rr-depcruise-'));
  temps.push(dir);
  const all: Record<string, string> = {
    'tsconfig.json': JSON.stringify({
      compilerOptions: { strict: true, jsx: 'react-jsx', allowImportingTsExtensions: true, noEmit: true },
    }),
    // lint:deps names every top folder; a tree without one makes the CLI stop.
    'scripts/tool.ts': exporter('tool'),
    'tests/setup.ts': exporter('setup'),
    ...files,
  };
  for (const [path, text] of Object.entries(all)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

interface Violation {
  rule: string;
  from: string;
  to: string;
}

/**
 * Runs the CLI as package.json's lint:deps does (same folders, config and error output), in `dir`, and reads the
 * violations off its report lines: "error RULE: FROM → TO" (a cycle continues over the next lines).
 */
function depcruise(dir: string): { status: number | null; violations: Violation[]; text: string } {
  const folders = ['core', 'kernels', 'components', 'entrypoints', 'tests', 'scripts'];
  const args = [DEPCRUISE, ...folders, '--config', CONFIG];
  const run = spawnSync(process.execPath, args, { cwd: dir, encoding: 'utf8', timeout: 120_000 });
  const text = `${run.stdout}\n${run.stderr}`;
  const plain = text.replace(/\x1b\[[0-9;]*m/g, '');
  const violations = [...plain.matchAll(/^\s*error ([\w-]+): (\S+)(?: →\s+(\S+))?/gm)].map((m) => ({
    rule: m[1],
    from: m[2],
    to: m[3] ?? '',
  }));
  return { status: run.status, violations, text };
}

describe('dependency rules (.dependency-cruiser.cjs)', () => {
  test('a tree that breaks each rule fails, naming the rule and the module', () => {
    const dir = makeTree({
      'core/protocol/messages.ts': exporter('messages'),
      'core/engine/engine.ts': `import { k } from '../../kernels/k/k';\nexport const engine = k;\n`,
      'core/host/host.ts': `import { engine } from '../engine/engine';\nexport const host = engine;\n`,
      'core/testing/gen.ts': exporter('gen'),
      'kernels/gpuContext.ts': exporter('gpu'),
      'kernels/k/k.ts': exporter('k'),
      // kernels-bottom-layer
      'kernels/k/up.ts': `import { messages } from '../../core/protocol/messages';\nexport const up = messages;\n`,
      // core-not-up
      'core/engine/ui.ts': `import { popup } from '../../entrypoints/popup/main';\nexport const ui = popup;\n`,
      // core-no-extension-api (a package named like the extension framework)
      'node_modules/wxt/package.json': JSON.stringify({ name: 'wxt', version: '0.0.0', main: 'index.js' }),
      'node_modules/wxt/index.js': 'exports.browser = {};\n',
      'core/engine/ext.ts': `import { browser } from 'wxt';\nexport const ext = browser;\n`,
      // product-not-tests-or-scripts
      'tests/helper.ts': exporter('helper'),
      'core/engine/fromTests.ts': `import { helper } from '../../tests/helper';\nexport const t = helper;\n`,
      // product-not-testing-helpers
      'core/host/fixtures.ts': `import { gen } from '../testing/gen';\nexport const f = gen;\n`,
      // core-no-folder-cycles: core/attention → core/model → core/attention, through different modules
      'core/attention/policy.ts': `import { config } from '../model/config';\nexport const policy = config;\n`,
      'core/attention/kinds.ts': exporter('kinds'),
      'core/model/config.ts': exporter('config'),
      'core/model/usesKinds.ts': `import { kinds } from '../attention/kinds';\nexport const u = kinds;\n`,
      // ui-through-messages (components/ and the popup)
      'components/App.tsx': `import { host } from '../core/host/host';\nexport const App = host;\n`,
      // components-not-entrypoints
      'components/mount.ts': `import { popup } from '../entrypoints/popup/main';\nexport const mount = popup;\n`,
      // entrypoints-independent (and the popup is UI: ui-through-messages on the engine import)
      'entrypoints/popup/main.ts':
        `import { bg } from '../background/index';\nimport { engine } from '../../core/engine/engine';\n` +
        'export const popup = [bg, engine];\n',
      // entrypoints-kernels-only-gpu-context (gpuContext itself is allowed)
      'entrypoints/background/index.ts':
        `import { gpu } from '../../kernels/gpuContext';\nimport { k } from '../../kernels/k/k';\n` +
        'export const bg = [gpu, k];\n',
      // content-script-small
      'entrypoints/content/index.ts': `import { host } from '../../core/host/host';\nexport const c = host;\n`,
      // node-only-in-node (core/node may use Node built-ins; core/document may not use either)
      'core/node/dir.ts': `import { readFileSync } from 'node:fs';\nexport const dir = readFileSync;\n`,
      'core/document/usesNode.ts': `import { dir } from '../node/dir';\nexport const n = dir;\n`,
      // no-node-builtins-in-product
      'core/document/usesFs.ts': `import { readFile } from 'node:fs/promises';\nexport const r = readFile;\n`,
      // no-circular (inside one folder)
      'core/document/a.ts': `import { b } from './b';\nexport const a = () => b;\n`,
      'core/document/b.ts': `import { a } from './a';\nexport const b = () => a;\n`,
      // no-orphans
      'core/document/lonely.ts': exporter('lonely'),
      // not-to-unresolvable
      'core/document/typo.ts': `import { x } from './missing';\nexport const typo = x;\n`,
    });
    const { status, violations, text } = depcruise(dir);
    expect(status, text).not.toBe(0);
    const has = (rule: string, from: string, to?: string) =>
      violations.some((v) => v.rule === rule && v.from === from && (to === undefined || v.to === to));
    const expected: [string, string, string?][] = [
      ['kernels-bottom-layer', 'kernels/k/up.ts', 'core/protocol/messages.ts'],
      ['core-not-up', 'core/engine/ui.ts', 'entrypoints/popup/main.ts'],
      ['core-no-extension-api', 'core/engine/ext.ts'],
      ['product-not-tests-or-scripts', 'core/engine/fromTests.ts', 'tests/helper.ts'],
      ['product-not-testing-helpers', 'core/host/fixtures.ts', 'core/testing/gen.ts'],
      ['ui-through-messages', 'components/App.tsx', 'core/host/host.ts'],
      ['ui-through-messages', 'entrypoints/popup/main.ts', 'core/engine/engine.ts'],
      ['components-not-entrypoints', 'components/mount.ts', 'entrypoints/popup/main.ts'],
      ['content-script-small', 'entrypoints/content/index.ts', 'core/host/host.ts'],
      ['entrypoints-kernels-only-gpu-context', 'entrypoints/background/index.ts', 'kernels/k/k.ts'],
      ['entrypoints-independent', 'entrypoints/popup/main.ts', 'entrypoints/background/index.ts'],
      ['node-only-in-node', 'core/document/usesNode.ts', 'core/node/dir.ts'],
      ['no-node-builtins-in-product', 'core/document/usesFs.ts'],
      ['no-circular', 'core/document/a.ts', 'core/document/b.ts'],
      ['no-orphans', 'core/document/lonely.ts'],
      ['not-to-unresolvable', 'core/document/typo.ts', './missing'],
    ];
    for (const [rule, from, to] of expected)
      expect(has(rule, from, to), `${rule}: ${from} → ${to}\n${text}`).toBe(true);
    // Folder scope: from/to are the folders.
    const folderCycle = violations.filter((v) => v.rule === 'core-no-folder-cycles');
    expect(folderCycle.map((v) => `${v.from} → ${v.to}`).sort()).toEqual([
      'core/attention → core/model',
      'core/model → core/attention',
    ]);
    // Every rule of the config is exercised here, so a new rule comes with its failing case.
    expect([...new Set(violations.map((v) => v.rule))].sort()).toEqual([...ruleNames].sort());
    // The allowed imports stay quiet: the background may open the GPU context, core/engine drives kernels.
    expect(violations.filter((v) => v.to === 'kernels/gpuContext.ts')).toEqual([]);
    expect(violations.filter((v) => v.from === 'core/engine/engine.ts')).toEqual([]);
    expect(violations.filter((v) => v.from === 'core/node/dir.ts')).toEqual([]);
  }, 180_000);

  test('a tree that keeps the layers passes', () => {
    const dir = makeTree({
      'kernels/gpuContext.ts': exporter('gpu'),
      'kernels/k/k.ts': `import { gpu } from '../gpuContext';\nexport const k = gpu;\n`,
      'core/protocol/messages.ts': exporter('messages'),
      'core/engine/engine.ts': `import { k } from '../../kernels/k/k';\nexport const engine = k;\n`,
      'core/host/host.ts':
        `import { engine } from '../engine/engine';\nimport { messages } from '../protocol/messages';\n` +
        'export const host = [engine, messages];\n',
      'core/testing/gen.ts': `import { engine } from '../engine/engine';\nexport const gen = engine;\n`,
      'components/App.tsx': `import { messages } from '../core/protocol/messages';\nexport const App = messages;\n`,
      'entrypoints/popup/main.ts': `import { App } from '../../components/App';\nexport const popup = App;\n`,
      'entrypoints/background/index.ts':
        `import { host } from '../../core/host/host';\nimport { gpu } from '../../kernels/gpuContext';\n` +
        'export const bg = [host, gpu];\n',
      'entrypoints/content/index.ts': `import { messages } from '../../core/protocol/messages';\nexport const c = messages;\n`,
      'tests/gen.test.ts': `import { gen } from '../core/testing/gen';\nexport const t = gen;\n`,
    });
    const { status, violations, text } = depcruise(dir);
    expect(violations, text).toEqual([]);
    expect(status, text).toBe(0);
  }, 180_000);
});
