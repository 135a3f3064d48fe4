// Node CLI over the same core/ code as the extension.
//   npm run cli -- generate --model DIR|URL (--prompt TEXT | --prompt-file FILE | --prompt-ids 1,2,3) [--chat]
//     [--max-tokens N] [--temperature T] [--top-p P] [--top-k K] [--seed S] [--backend webgpu|reference] [--json]
//     [--context N] [--attention full|recycled|streaming|snapkv] [--k N | --k-frac F] [--stride S]
//     [--dynamic --qc N --sim s] [--snapshot-dir DIR] [--system TEXT] [--document-file FILE]
//   npm run cli -- prompt --model DIR|URL [--chat] [--system TEXT] --document-file FILE --prompt TEXT [--json]
//     the prompt's token ids without loading weights; --json prints {"ids":[…],"documentRange":[start,end]}
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { AttentionPolicy, GenerateInput, GenerateOptions, TopKBudget } from '../core/engine/types';
import { loadModelConfig, loadTokenizerJson } from '../core/model/load';
import { HttpSource } from '../core/model/sources';
import { DirSource } from '../core/node/dirSource';
import { createNodeEngine } from '../core/node/nodeEngine';
import { ensureVulkanDriverEnv } from '../core/node/vulkanDrivers';
import { BUILTIN_TEMPLATES, encodeDocumentPrompt, resolveTemplate } from '../core/tokenizer/chat';
import { Tokenizer } from '../core/tokenizer/tokenizer';

const USAGE = `usage: npm run cli -- generate --model DIR|URL (--prompt TEXT | --prompt-file FILE | --prompt-ids 1,2,3)
  [--chat] [--system TEXT] [--document-file FILE] [--max-tokens N] [--temperature T] [--top-p P] [--top-k K]
  [--seed S] [--backend webgpu|reference] [--json] [--context N] [--snapshot-dir DIR]
  [--attention full|recycled|streaming|snapkv] [--k N | --k-frac F] [--stride S] [--dynamic --qc N --sim s]
       npm run cli -- prompt --model DIR|URL [--chat] [--system TEXT] --document-file FILE --prompt TEXT [--json]`;

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
    const stride = num(values.stride as string | undefined, 'stride', 10);
    if (stride < 1 || !Number.isInteger(stride)) throw new UsageError('--stride must be a positive integer');
    // The CLI prints the stats, so it asks for the recall statistic (the extension does not).
    const policy: AttentionPolicy = { kind: 'recycled', k, stride, measureRecall: true };
    if (values.dynamic)
      policy.dynamic = { qc: num(values.qc as string, 'qc', 5), sim: num(values.sim as string, 'sim', 0.9) };
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
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (positionals[0] === 'prompt' && !values.help) return promptCommand(values);
  if (values.help || positionals[0] !== 'generate') {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  if (!values.model) throw new UsageError('--model is required');
  const promptSources = ['prompt', 'prompt-file', 'prompt-ids'].filter(
    (k) => values[k as keyof typeof values] !== undefined,
  );
  if (promptSources.length !== 1) throw new UsageError('give exactly one of --prompt, --prompt-file, --prompt-ids');
  const backend = values.backend ?? 'webgpu';
  if (backend !== 'webgpu' && backend !== 'reference') throw new UsageError('--backend must be webgpu or reference');
  if (backend === 'webgpu') ensureVulkanDriverEnv();

  let input: GenerateInput;
  if (values['prompt-ids'] !== undefined) {
    const ids = values['prompt-ids'].split(',').map((s) => Number(s.trim()));
    if (ids.length === 0 || ids.some((n) => !Number.isInteger(n) || n < 0)) {
      throw new UsageError('--prompt-ids must be comma-separated non-negative integers');
    }
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
  };
  const controller = new AbortController();
  process.on('SIGINT', () => controller.abort());
  options.signal = controller.signal;

  const engine = await createNodeEngine({ backend, snapshotDir: values['snapshot-dir'] });
  const isUrl = /^https?:\/\//.test(values.model);
  const info = await engine.load(isUrl ? { kind: 'url', baseUrl: values.model } : { kind: 'dir', path: values.model }, {
    contextWindow: values.context ? num(values.context, 'context', 0) : undefined,
    onProgress: values.json
      ? undefined
      : (p) =>
          process.stderr.write(
            `\r${p.phase} ${(p.loadedBytes / 1e6).toFixed(1)}/${(p.totalBytes / 1e6).toFixed(1)} MB`,
          ),
  });
  if (!values.json) process.stderr.write(`\nloaded ${info.modelId} (${info.architecture}, ${info.quantization})\n`);
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
