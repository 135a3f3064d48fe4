// Writes a random-weight MLC model folder (see core/testing/fixtureModel.ts).
//   npx tsx scripts/make-fixture.ts OUT_DIR [--arch llama|qwen2|qwen3] [--quant q0f32|q0f16|q4f16_1|q4f32_1]
//       [--tied] [--rope-scaling] [--bf16] [--template raw|chatml] [--seed N] [--hidden N] [--layers N]
//       [--heads N] [--kv-heads N] [--head-dim N] [--intermediate N] [--vocab N] [--context N] [--shards N]
import type { Architecture, Quantization } from '../core/model/config';
import type { FixtureOptions } from '../core/testing/fixtureModel';
import { writeFixtureModelDir } from '../core/testing/fixtureModelDir';

function parseArgs(argv: string[]): { dir: string; options: FixtureOptions } {
  const options: FixtureOptions = {};
  let dir: string | undefined;
  const numeric: Record<string, keyof FixtureOptions> = {
    '--seed': 'seed',
    '--hidden': 'hiddenSize',
    '--layers': 'numLayers',
    '--heads': 'numHeads',
    '--kv-heads': 'numKvHeads',
    '--head-dim': 'headDim',
    '--intermediate': 'intermediateSize',
    '--vocab': 'vocabSize',
    '--context': 'contextWindow',
    '--shards': 'shards',
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--arch') options.architecture = value() as Architecture;
    else if (a === '--quant') options.quantization = value() as Quantization;
    else if (a === '--tied') options.tied = true;
    else if (a === '--rope-scaling') options.ropeScaling = true;
    else if (a === '--bf16') options.bf16 = true;
    else if (a === '--template') options.template = value() as 'raw' | 'chatml';
    else if (a in numeric) {
      const n = Number(value());
      if (!Number.isInteger(n) || n <= 0) throw new Error(`${a} needs a positive integer`);
      (options as Record<string, number>)[numeric[a]] = n;
    } else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else dir = a;
  }
  if (!dir) throw new Error('usage: make-fixture.ts OUT_DIR [options] (see the header of scripts/make-fixture.ts)');
  return { dir, options };
}

let parsed: { dir: string; options: FixtureOptions };
try {
  parsed = parseArgs(process.argv.slice(2));
} catch (e) {
  console.error((e as Error).message);
  process.exit(2);
}
const { dir, options } = parsed;
const { model } = writeFixtureModelDir(options, dir);
let bytes = 0;
for (const data of model.files.values()) bytes += data.length;
console.log(`wrote ${model.files.size} files (${bytes} bytes) to ${dir}: ${JSON.stringify(model.options)}`);
