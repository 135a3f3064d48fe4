// Node CLI over the same core/ code as the extension.
//   npm run cli -- generate --model DIR|URL (--prompt TEXT | --prompt-file FILE | --prompt-ids 1,2,3) [--chat]
//     [--max-tokens N] [--temperature T] [--top-p P] [--top-k K] [--seed S] [--backend webgpu|reference] [--json]
//     [--context N] [--attention full|recycled|streaming|snapkv] [--k N | --k-frac F] [--stride S]
//     [--dynamic --qc N [--sim s]] [--snapshot-dir DIR] [--system TEXT] [--document-file FILE]
//   npm run cli -- prompt --model DIR|URL [--chat] [--system TEXT] --document-file FILE --prompt TEXT [--json]
//     the prompt's token ids without loading weights; --json prints {"ids":[…],"documentRange":[start,end]}
//   npm run cli -- score --model DIR|URL (--prompt-ids 1,2,3 | --prompt-file FILE)
//     (--continuation-ids 4,5,6 | --continuation-file FILE) | --cases FILE   [attention flags] [--json]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { LocalEngine } from '../core/engine/engine';
import type { ScoreInput, ScoreResult } from '../core/engine/scoring';
import type { AttentionPolicy, GenerateInput, GenerateOptions, TopKBudget } from '../core/engine/types';
import { loadModelConfig, loadTokenizerJson } from '../core/model/load';
import { HttpSource } from '../core/model/sources';
import { DirSource } from '../core/node/dirSource';
import { createNodeEngine } from '../core/node/nodeEngine';
import { ensureVulkanDriverEnv } from '../core/node/vulkanDrivers';
import { BUILTIN_TEMPLATES, encodeDocumentPrompt, resolveTemplate } from '../core/tokenizer/chat';
import { Tokenizer } from '../core/tokenizer/tokenizer';

const ATTENTION_FLAGS = `[--attention full|recycled|streaming|snapkv] [--k N | --k-frac F] [--stride S]
  [--dynamic --qc N [--sim s]]`;
const USAGE = `usage: npm run cli -- generate --model DIR|URL (--prompt TEXT | --prompt-file FILE | --prompt-ids 1,2,3)
  [--chat] [--system TEXT] [--document-file FILE] [--max-tokens N] [--temperature T] [--top-p P] [--top-k K]
  [--seed S] [--backend webgpu|reference] [--json] [--context N] [--snapshot-dir DIR]
  ${ATTENTION_FLAGS}
       npm run cli -- prompt --model DIR|URL [--chat] [--system TEXT] --document-file FILE --prompt TEXT [--json]
       npm run cli -- score --model DIR|URL (--prompt-ids 1,2,3 | --prompt-file FILE)
  (--continuation-ids 4,5,6 | --continuation-file FILE) [--backend webgpu|reference] [--context N] [--json]
  ${ATTENTION_FLAGS}
       npm run cli -- score --model DIR|URL --cases FILE [...]   (JSON lines {"prompt_ids":[..],"continuation_ids":[..]})
Attention: K is a count or a fraction of the prompt length (default --k-frac 0.125). recycled: a full step every
--stride S steps (default 10); with --dynamic every --qc N steps (default 5) a layer runs full when the cosine of its
head-mean query before RoPE with the one of its last full step is below --sim (default by model family: 0.85 Llama,
0.95 Qwen2/Qwen3); --dynamic takes no stride unless --stride is given.
score: the prompt is prefilled up to its last token; that token and each continuation token are DECODE steps under
the policy; one JSON line per case: {"predictions":[..],"logprobs":[..],"nll":..,"stats":{..}}. A --prompt-file /
--continuation-file holds text, tokenized with the model's tokenizer (the prompt gets the model's BOS).`;

class UsageError extends Error {}

function num(v: string | undefined, name: string, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} needs a number, got "${v}"`);
  return n;
}

export function parseAttention(values: Record<string, string | boolean | undefined>): AttentionPolicy {
  const kind = (values.attention as string | undefined) ?? 'full';
  if (kind === 'full') return { kind: 'full' };
  let k: TopKBudget;
  if (values.k !== undefined) k = { count: num(values.k as string, 'k', 0) };
  else if (values['k-frac'] !== undefined) k = { fraction: num(values['k-frac'] as string, 'k-frac', 0) };
  else k = { fraction: 1 / 8 };
  if ('count' in k && (k.count < 1 || !Number.isInteger(k.count)))
    throw new UsageError('--k must be a positive integer');
  if ('fraction' in k && !(k.fraction > 0 && k.fraction <= 1)) throw new UsageError('--k-frac must be in (0, 1]');
  if (kind === 'recycled') {
    // The dynamic schedule takes its full steps from the cosine check alone unless a stride is given explicitly.
    const stride =
      values.stride !== undefined || !values.dynamic
        ? num(values.stride as string | undefined, 'stride', 10)
        : undefined;
    if (stride !== undefined && (stride < 1 || !Number.isInteger(stride)))
      throw new UsageError('--stride must be a positive integer');
    // The CLI prints the stats, so it asks for the recall statistic (the extension does not).
    const policy: AttentionPolicy = {
      kind: 'recycled',
      k,
      ...(stride !== undefined ? { stride } : {}),
      measureRecall: true,
    };
    if (values.dynamic) {
      const qc = num(values.qc as string | undefined, 'qc', 5);
      if (qc < 1 || !Number.isInteger(qc)) throw new UsageError('--qc must be a positive integer');
      const sim = values.sim !== undefined ? num(values.sim as string, 'sim', 0) : undefined;
      if (sim !== undefined && !(sim >= -1 && sim <= 1)) throw new UsageError('--sim must be in [-1, 1]');
      policy.dynamic = sim === undefined ? { qc } : { qc, sim };
    } else if (values.qc !== undefined || values.sim !== undefined) {
      throw new UsageError('--qc and --sim need --dynamic');
    }
    return policy;
  }
  if (kind === 'streaming') return { kind: 'streaming', k };
  if (kind === 'snapkv') return { kind: 'snapkv', k, measureRecall: true };
  throw new UsageError(`--attention must be full, recycled, streaming or snapkv (got "${kind}")`);
}

/**
 * The prompt the engine builds for a document and a question, from the model's config and tokenizer.json only (no
 * weights): page text is tokenised as data, so `documentRange` holds no control token. Without --chat: the raw
 * template (BOS, document, blank line, question), as `generate` without --chat.
 */
async function promptCommand(values: Record<string, string | boolean | undefined>): Promise<number> {
  const model = values.model as string | undefined;
  if (!model) throw new UsageError('--model is required');
  if (typeof values['document-file'] !== 'string') throw new UsageError('prompt needs --document-file FILE');
  if (typeof values.prompt !== 'string') throw new UsageError('prompt needs --prompt TEXT');
  const source = /^https?:\/\//.test(model) ? new HttpSource(model) : new DirSource(model);
  const { config, chatConfig } = await loadModelConfig(source);
  const tokenizer = await Tokenizer.fromJSON(await loadTokenizerJson(source, chatConfig));
  const modelTemplate = resolveTemplate(config);
  const template = values.chat
    ? modelTemplate
    : { ...BUILTIN_TEMPLATES.raw, system_prefix_token_ids: modelTemplate.system_prefix_token_ids };
  const p = encodeDocumentPrompt(tokenizer, template, {
    system: values.system as string | undefined,
    document: readFileSync(values['document-file'], 'utf8'),
    question: values.prompt,
  });
  if (values.json) console.log(JSON.stringify({ ids: p.ids, documentRange: p.documentRange }));
  else {
    const [start, end] = p.documentRange;
    console.log(`${p.ids.length} tokens; document ids [${start}, ${end}); reusable prefix ${p.prefixLength}`);
    console.log(p.ids.join(' '));
  }
  tokenizer.dispose();
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      model: { type: 'string' },
      prompt: { type: 'string' },
      'prompt-file': { type: 'string' },
      'prompt-ids': { type: 'string' },
      'document-file': { type: 'string' },
      system: { type: 'string' },
      chat: { type: 'boolean' },
      'max-tokens': { type: 'string' },
      temperature: { type: 'string' },
      'top-p': { type: 'string' },
      'top-k': { type: 'string' },
      seed: { type: 'string' },
      backend: { type: 'string' },
      json: { type: 'boolean' },
      context: { type: 'string' },
      'snapshot-dir': { type: 'string' },
      attention: { type: 'string' },
      k: { type: 'string' },
      'k-frac': { type: 'string' },
      stride: { type: 'string' },
      dynamic: { type: 'boolean' },
      qc: { type: 'string' },
      sim: { type: 'string' },
      'continuation-ids': { type: 'string' },
      'continuation-file': { type: 'string' },
      cases: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const command = positionals[0];
  if (command === 'prompt' && !values.help) return promptCommand(values);
  if (values.help || (command !== 'generate' && command !== 'score')) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  if (!values.model) throw new UsageError('--model is required');
  if (command === 'score') return score(values);
  const promptSources = ['prompt', 'prompt-file', 'prompt-ids'].filter(
    (k) => values[k as keyof typeof values] !== undefined,
  );
  if (promptSources.length !== 1) throw new UsageError('give exactly one of --prompt, --prompt-file, --prompt-ids');
  const backend = values.backend ?? 'webgpu';
  if (backend !== 'webgpu' && backend !== 'reference') throw new UsageError('--backend must be webgpu or reference');
  if (backend === 'webgpu') ensureVulkanDriverEnv();

  let input: GenerateInput;
  if (values['prompt-ids'] !== undefined) {
    const ids = parseIds(values['prompt-ids'], 'prompt-ids');
    // The snapshot prefix is all but the last token.
    input = { tokenIds: ids, prefixLength: ids.length - 1 };
  } else {
    const text = values.prompt ?? readFileSync(values['prompt-file']!, 'utf8');
    const document = values['document-file'] ? readFileSync(values['document-file'], 'utf8') : undefined;
    input = values.chat
      ? { messages: [{ role: 'user', content: text }], system: values.system, document }
      : { text: document ? `${document}\n\n${text}` : text };
  }
  const options: GenerateOptions = {
    maxTokens: num(values['max-tokens'], 'max-tokens', 128),
    temperature: num(values.temperature, 'temperature', 0),
    topP: num(values['top-p'], 'top-p', 1),
    topK: num(values['top-k'], 'top-k', 0),
    seed: num(values.seed, 'seed', 0),
    attention: parseAttention(values),
    // The CLI runs the policy it is asked for; the stats still carry the break-even's prediction.
    fastModeBreakEven: false,
  };
  const controller = new AbortController();
  process.on('SIGINT', () => controller.abort());
  options.signal = controller.signal;

  const engine = await createNodeEngine({ backend, snapshotDir: values['snapshot-dir'] });
  const info = await loadModelFor(engine, values);
  const tokens: number[] = [];
  let text = '';
  for await (const ev of engine.generate(input, options)) {
    if (ev.type === 'token') {
      tokens.push(ev.tokenId);
      text += ev.text;
      if (!values.json) process.stdout.write(ev.text);
    } else if (ev.type === 'done') {
      if (values.json) console.log(JSON.stringify({ model: info.modelId, backend, tokens, text, stats: ev.stats }));
      else process.stderr.write(`\n${formatStats(ev.stats)}\n`);
    }
  }
  await engine.unload();
  return 0;
}

type Values = Record<string, string | boolean | undefined>;

function parseIds(text: string, name: string): number[] {
  const ids = text.split(',').map((s) => (s.trim() === '' ? Number.NaN : Number(s.trim())));
  if (ids.length === 0 || ids.some((n) => !Number.isInteger(n) || n < 0)) {
    throw new UsageError(`--${name} must be comma-separated non-negative integers`);
  }
  return ids;
}

async function loadModelFor(engine: LocalEngine, values: Values) {
  const model = values.model as string;
  const isUrl = /^https?:\/\//.test(model);
  const info = await engine.load(isUrl ? { kind: 'url', baseUrl: model } : { kind: 'dir', path: model }, {
    contextWindow: values.context ? num(values.context as string, 'context', 0) : undefined,
    onProgress: values.json
      ? undefined
      : (p) =>
          process.stderr.write(
            `\r${p.phase} ${(p.loadedBytes / 1e6).toFixed(1)}/${(p.totalBytes / 1e6).toFixed(1)} MB`,
          ),
  });
  if (!values.json) process.stderr.write(`\nloaded ${info.modelId} (${info.architecture}, ${info.quantization})\n`);
  return info;
}

/** The cases of a --cases file: JSON lines with prompt_ids and continuation_ids (other keys are ignored). */
export function parseCases(text: string, file: string): ScoreInput[] {
  const cases: ScoreInput[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch (e) {
      throw new UsageError(`${file}:${i + 1}: not valid JSON (${(e as Error).message})`);
    }
    const r = row as { prompt_ids?: unknown; continuation_ids?: unknown };
    for (const key of ['prompt_ids', 'continuation_ids'] as const) {
      const ids = r?.[key];
      if (!Array.isArray(ids) || ids.length === 0 || ids.some((n) => !Number.isInteger(n) || n < 0)) {
        throw new UsageError(`${file}:${i + 1}: "${key}" must be a non-empty array of non-negative integers`);
      }
    }
    cases.push({ promptIds: r.prompt_ids as number[], continuationIds: r.continuation_ids as number[] });
  });
  if (cases.length === 0) throw new UsageError(`${file}: no cases`);
  return cases;
}

async function score(values: Values): Promise<number> {
  const backend = (values.backend as string | undefined) ?? 'webgpu';
  if (backend !== 'webgpu' && backend !== 'reference') throw new UsageError('--backend must be webgpu or reference');
  const given = (names: string[]) => names.filter((k) => values[k] !== undefined);
  const single = given(['prompt-ids', 'prompt-file', 'continuation-ids', 'continuation-file']);
  if (values.cases !== undefined && single.length > 0) {
    throw new UsageError(`--cases replaces --${single.join(', --')}`);
  }
  if (values.cases === undefined) {
    if (given(['prompt-ids', 'prompt-file']).length !== 1)
      throw new UsageError('give one of --prompt-ids, --prompt-file');
    if (given(['continuation-ids', 'continuation-file']).length !== 1) {
      throw new UsageError('give one of --continuation-ids, --continuation-file');
    }
  }
  const attention = parseAttention(values);
  const cases =
    values.cases !== undefined
      ? parseCases(readFileSync(values.cases as string, 'utf8'), values.cases as string)
      : undefined;
  if (backend === 'webgpu') ensureVulkanDriverEnv();
  const engine = await createNodeEngine({ backend });
  await loadModelFor(engine, values);
  const inputs: ScoreInput[] = cases ?? [
    {
      promptIds:
        values['prompt-ids'] !== undefined
          ? parseIds(values['prompt-ids'] as string, 'prompt-ids')
          : engine.encodeInput({ text: readFileSync(values['prompt-file'] as string, 'utf8') }).ids,
      continuationIds:
        values['continuation-ids'] !== undefined
          ? parseIds(values['continuation-ids'] as string, 'continuation-ids')
          : engine.encodeText(readFileSync(values['continuation-file'] as string, 'utf8')),
    },
  ];
  try {
    for (const [i, input] of inputs.entries()) {
      let result: ScoreResult;
      try {
        result = await engine.score(input, { attention });
      } catch (e) {
        throw new Error(`case ${i + 1}: ${(e as Error).message}`);
      }
      if (values.json) console.log(JSON.stringify(result));
      else {
        const hits = result.predictions.filter((p, j) => p === input.continuationIds[j]).length;
        console.log(
          `case ${i + 1}: nll ${result.nll.toFixed(4)} | argmax = next token ${hits}/${result.predictions.length} | ` +
            `full layer-steps ${result.stats.fullLayerSteps}/${result.stats.layerSteps}`,
        );
      }
    }
  } finally {
    await engine.unload();
  }
  return 0;
}

function formatStats(s: import('../core/engine/types').GenerationStats): string {
  const parts = [
    `prompt ${s.promptTokens} tok (prefilled ${s.prefillTokens}, restored ${s.restoredTokens})`,
    `prefill ${s.prefillTokensPerSec.toFixed(1)} tok/s`,
    `decode ${s.generatedTokens} tok at ${s.decodeTokensPerSec.toFixed(1)} tok/s`,
    `stop: ${s.stopReason}`,
  ];
  return parts.join(' | ');
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    if (err instanceof UsageError) console.error(`error: ${err.message}\n${USAGE}`);
    else console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
