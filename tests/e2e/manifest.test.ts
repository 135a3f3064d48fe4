// The built manifest asks only for what the extension uses: no content script declared for any site (it is injected
// on demand with activeTab + scripting), and no host access outside optional_host_permissions.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { nodeKvCodeVersion } from '../../core/node/kvCodeVersion';
import { buildExtension, EXTENSION_DIR } from './harness';

let manifest: Record<string, unknown>;
beforeAll(() => {
  buildExtension();
  manifest = JSON.parse(readFileSync(join(EXTENSION_DIR, 'manifest.json'), 'utf8'));
}, 320_000);

describe('the built manifest', () => {
  test('declares no content script with host matches', () => {
    const scripts = (manifest.content_scripts ?? []) as { matches?: string[] }[];
    expect(scripts.flatMap((s) => s.matches ?? [])).toEqual([]);
  });

  test('requests host access only as optional; the permissions are the ones the code uses', () => {
    const optional = (manifest.optional_host_permissions ?? []) as string[];
    const hosts = (manifest.host_permissions ?? []) as string[];
    expect(hosts.filter((h) => !optional.includes(h))).toEqual([]);
    expect(hosts).toEqual([]);
    const permissions = manifest.permissions as string[];
    expect(permissions).toEqual(expect.arrayContaining(['activeTab', 'scripting']));
    expect(permissions.filter((p) => p.includes('://') || p === '<all_urls>')).toEqual([]);
    expect(permissions).not.toContain('tabs');
  });

  test('the on-demand content script is still built (the background injects this file)', () => {
    expect(readFileSync(join(EXTENSION_DIR, 'content-scripts/content.js'), 'utf8').length).toBeGreaterThan(1000);
  });

  test('the background carries the snapshot engine version derived from the K/V code (same as Node computes)', () => {
    const background = readFileSync(join(EXTENSION_DIR, 'background.js'), 'utf8');
    expect(background).toContain(JSON.stringify(nodeKvCodeVersion()));
  });
});
