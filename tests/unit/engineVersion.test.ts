// Snapshot identity follows the code: the engine version is a hash of the code that computes K/V, so editing a
// kernel changes it and snapshots keyed under the old one miss.
import { describe, expect, test } from 'vitest';
import { kvCodeFiles, kvCodeVersionOf, nodeKvCodeVersion } from '../../core/node/kvCodeVersion';
import { snapshotKey } from '../../core/snapshot/key';
import { identity } from './snapshotHarness';

describe('snapshot engine version', () => {
  test('covers the kernels, GPU model and KV cache sources, not the references', () => {
    const paths = kvCodeFiles().map((f) => f.path);
    expect(paths).toEqual(expect.arrayContaining(['core/engine/gpuModel.ts', 'core/engine/kvCache.ts']));
    expect(paths.some((p) => /^kernels\/rope\/rope\.wgsl\.ts$/.test(p))).toBe(true);
    expect(paths.some((p) => p.endsWith('.reference.ts'))).toBe(false);
    expect(nodeKvCodeVersion()).toMatch(/^[0-9a-f]{16}$/);
    expect(nodeKvCodeVersion()).toBe(kvCodeVersionOf(kvCodeFiles()));
  });

  test('any change to a K/V kernel gives another version, and another snapshot key', async () => {
    const files = kvCodeFiles();
    const i = files.findIndex((f) => f.path.endsWith('rope.wgsl.ts'));
    const edited = files.map((f, j) => (j === i ? { ...f, text: `${f.text}\n// a one-line change` } : f));
    const before = kvCodeVersionOf(files);
    const after = kvCodeVersionOf(edited);
    expect(after).not.toBe(before);
    // File order does not matter; content does.
    expect(kvCodeVersionOf([...files].reverse())).toBe(before);
    const tokens = [1, 2, 3, 4];
    const a = await snapshotKey({ ...identity(), engineVersion: before }, tokens);
    const b = await snapshotKey({ ...identity(), engineVersion: after }, tokens);
    expect(a).not.toBe(b);
  });
});
