// A generated fixture model written out as an MLC model folder (Node only), for tests, scripts and benches.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FixtureModel, type FixtureOptions, makeFixtureModel } from './fixtureModel';

/** Writes a generated fixture model (fixtureModel.ts) into `dir` (default: a new temp folder). */
export function writeFixtureModelDir(opts: FixtureOptions = {}, dir?: string): { dir: string; model: FixtureModel } {
  const target = dir ?? mkdtempSync(join(tmpdir(), 'rr-fixture-'));
  mkdirSync(target, { recursive: true });
  const model = makeFixtureModel(opts);
  for (const [name, data] of model.files) writeFileSync(join(target, name), data);
  return { dir: target, model };
}
