// KV snapshots end to end on the WebGPU engine: a document prefix saved after prefill is restored by a fresh engine
// (as after a service-worker restart), the continuation is identical, and damaged or foreign snapshots fall back to
// prefill. Also the CLI contract: the same --snapshot-dir twice restores the prefix the second time.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import type { LocalEngine } from '../../core/engine/engine';
import type { GenerationStats } from '../../core/engine/types';
import { createNodeEngine } from '../../core/node/nodeEngine';
import { testGpu } from './setup';

const MODEL = 'tests/fixtures/stories260k';
const root = mkdtempSync(join(tmpdir(), 'rr-snap-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

// A 150-token "document" prefix and a question token: the prefix is all but the last id.
const prompt = [1, ...Array.from({ length: 150 }, (_, i) => 3 + ((i * 53) % 500))];

async function run(engine: LocalEngine, ids = prompt) {
  const tokens: number[] = [];
  let stats: GenerationStats | undefined;
  for await (const ev of engine.generate({ tokenIds: ids }, { maxTokens: 12, stopTokenIds: [] })) {
    if (ev.type === 'token') tokens.push(ev.tokenId);
    else if (ev.type === 'done') stats = ev.stats;
  }
  const logits = await engine.runner!.readLogits();
  return { tokens, stats: stats!, logits };
}

async function freshEngine(dir: string) {
  const engine = await createNodeEngine({ gpu: await testGpu(), snapshotDir: dir });
  await engine.load({ kind: 'dir', path: MODEL }, { contextWindow: 256 });
  return engine;
}

function chunkFiles(dir: string): string[] {
  const out: string[] = [];
  for (const w of readdirSync(join(dir, 'chunks'))) {
    for (const f of readdirSync(join(dir, 'chunks', w))) out.push(join(dir, 'chunks', w, f));
  }
  return out;
}

describe('KV snapshots on the WebGPU engine', () => {
  test('restore equals recompute; damaged snapshots fall back to prefill', async () => {
    const dir = join(root, 'store');
    const first = await freshEngine(dir);
    const a = await run(first);
    expect(a.stats.restoredTokens).toBe(0);
    expect(a.stats.prefillTokens).toBe(prompt.length);
    await first.unload(); // waits for the background save

    // A new engine (a restarted worker) restores the prefix and prefills nothing of it.
    const second = await freshEngine(dir);
    const b = await run(second);
    expect(b.stats.restoredTokens).toBe(prompt.length - 1);
    expect(b.stats.prefillTokens).toBe(1);
    expect(b.tokens).toEqual(a.tokens);
    let maxDiff = 0;
    for (let i = 0; i < a.logits.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a.logits[i] - b.logits[i]));
    expect(maxDiff).toBe(0); // the exact bytes of the cache come back

    // The same engine asked again reuses the prefix in memory.
    const c = await run(second);
    expect(c.stats.restoredTokens).toBe(prompt.length - 1);
    await second.unload();

    // Corrupt one chunk: detected, discarded, prefilled again, same answer.
    const files = chunkFiles(dir);
    expect(files.length).toBeGreaterThan(0);
    const bytes = readFileSync(files[0]);
    bytes[bytes.length >> 1] ^= 0xff;
    writeFileSync(files[0], bytes);
    const third = await freshEngine(dir);
    const d = await run(third);
    expect(d.stats.restoredTokens).toBe(0);
    expect(d.tokens).toEqual(a.tokens);
    await third.unload();

    // A missing chunk: same.
    const again = await freshEngine(dir);
    expect((await run(again)).stats.restoredTokens).toBe(prompt.length - 1); // the re-saved snapshot works
    await again.unload();
    for (const f of chunkFiles(dir)) rmSync(f);
    const fourth = await freshEngine(dir);
    const e = await run(fourth);
    expect(e.stats.restoredTokens).toBe(0);
    expect(e.tokens).toEqual(a.tokens);
    await fourth.unload();
  });

  test("a different model never restores another model's snapshot", async () => {
    const dir = join(root, 'two-models');
    const engine = await freshEngine(dir);
    await run(engine);
    await engine.unload();
    const other = await createNodeEngine({ gpu: await testGpu(), snapshotDir: dir });
    await other.load({ kind: 'dir', path: 'tests/fixtures/retrieval-llama' }, { contextWindow: 256 });
    const ids = prompt.map((t) => t % 68);
    const r = await run(other, ids);
    expect(r.stats.restoredTokens).toBe(0);
    await other.unload();
  });

  test('CLI: the same --snapshot-dir twice restores the prefix the second time', () => {
    const dir = join(root, 'cli');
    const args = [
      'tsx',
      'scripts/cli.ts',
      'generate',
      '--model',
      MODEL,
      '--prompt-ids',
      prompt.join(','),
      '--max-tokens',
      '8',
      '--json',
      '--snapshot-dir',
      dir,
      '--context',
      '256',
    ];
    const once = JSON.parse(execFileSync('npx', args, { encoding: 'utf8' }).trim().split('\n').pop()!);
    const twice = JSON.parse(execFileSync('npx', args, { encoding: 'utf8' }).trim().split('\n').pop()!);
    expect(once.stats.restoredTokens).toBe(0);
    expect(once.stats.prefillTokens).toBe(prompt.length);
    expect(twice.stats.restoredTokens).toBe(prompt.length - 1);
    expect(twice.stats.prefillTokens).toBe(1);
    expect(twice.tokens).toEqual(once.tokens);
  });
});
