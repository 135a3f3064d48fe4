// The engine behind the product: loads an MLC model folder, tokenizes, keeps the KV cache between generations so a
// document prefix is prefilled once, restores/saves prefixes through a snapshot store, and streams tokens.
// The backend that runs the model is pluggable: the WebGPU model (the product) or the plain-TS reference (tests).

import type { ConvTemplate } from '../model/config';
import { type LoadedModel, loadModel } from '../model/load';
import type { WeightSource } from '../model/sources';
import {
  encodeChat,
  encodeThreadPrompt,
  resolveTemplate,
  stopStrings,
  stopTokenIds,
  type ThreadTurn,
} from '../tokenizer/chat';
import { StopStringFilter, StreamingDecoder, Tokenizer } from '../tokenizer/tokenizer';
import { type CachedSequence, commonPrefixLength, runGeneration } from './generation';
import type { ModelRunner } from './runner';
import { runScoring, type ScoreInput, type ScoreOptions, type ScoreResult, validateScoreInput } from './scoring';
import type { SnapshotCoordinator } from './snapshots';
import type {
  AnswerPrefix,
  Engine,
  GenerateEvent,
  GenerateInput,
  GenerateOptions,
  LoadOptions,
  ModelInfo,
  ModelSourceSpec,
} from './types';

export type RunnerFactory = (model: LoadedModel, contextWindow: number) => Promise<ModelRunner>;

export interface LocalEngineOptions {
  openSource: (spec: ModelSourceSpec) => WeightSource;
  createRunner: RunnerFactory;
  /** Largest context window to use when the caller asks for none. */
  defaultContextWindow?: number;
  snapshots?: SnapshotCoordinator;
}

interface Loaded {
  model: LoadedModel;
  info: ModelInfo;
  runner: ModelRunner;
  tokenizer: Tokenizer;
  template: ConvTemplate;
  cached: CachedSequence;
  modelKey: string;
}

export class EngineBusyError extends Error {
  constructor() {
    super('The engine is already generating; stop the current answer first.');
    this.name = 'EngineBusyError';
  }
}

export class LocalEngine implements Engine {
  private loaded?: Loaded;
  private busy = false;

  constructor(private readonly opts: LocalEngineOptions) {}

  get modelInfo(): ModelInfo | undefined {
    return this.loaded?.info;
  }

  /** The backend of the loaded model (tests and the bench read logits and KV through it). */
  get runner(): ModelRunner | undefined {
    return this.loaded?.runner;
  }

  async load(spec: ModelSourceSpec, opts: LoadOptions = {}): Promise<ModelInfo> {
    if (this.busy) throw new EngineBusyError();
    await this.unload();
    const source = this.opts.openSource(spec);
    const model = await loadModel(source, { onProgress: opts.onProgress, signal: opts.signal });
    const c = model.config;
    const contextWindow = Math.min(
      opts.contextWindow ?? this.opts.defaultContextWindow ?? c.contextWindow,
      c.contextWindow,
    );
    opts.onProgress?.({ phase: 'upload', loadedBytes: 0, totalBytes: 1 });
    const tokenizer = await Tokenizer.fromJSON(model.tokenizerJson);
    const runner = await this.opts.createRunner(model, contextWindow);
    opts.onProgress?.({ phase: 'upload', loadedBytes: 1, totalBytes: 1 });
    const modelId = spec.kind === 'url' ? (spec.modelId ?? spec.baseUrl) : spec.path;
    const info: ModelInfo = {
      modelId,
      architecture: c.architecture,
      quantization: c.quantization,
      contextWindow: runner.capacity,
      vocabSize: c.vocabSize,
      numLayers: c.numLayers,
      template: resolveTemplate(c).name,
    };
    this.loaded = {
      model,
      info,
      runner,
      tokenizer,
      template: resolveTemplate(c),
      cached: { ids: [] },
      modelKey: modelId,
    };
    return info;
  }

  countTokens(text: string): number {
    return this.requireLoaded().tokenizer.encodeText(text).length;
  }

  /** Token ids of a text as data, without BOS or template (a continuation to score). */
  encodeText(text: string): number[] {
    return this.requireLoaded().tokenizer.encodeText(text);
  }

  /** Token ids and the reusable prefix length for an input (exposed for tests and the document planner). */
  encodeInput(input: GenerateInput): { ids: number[]; prefixLength: number } {
    const { tokenizer, template } = this.requireLoaded();
    if ('tokenIds' in input) {
      return { ids: input.tokenIds, prefixLength: input.prefixLength ?? Math.max(0, input.tokenIds.length - 1) };
    }
    if ('text' in input) {
      const ids = [...(template.system_prefix_token_ids ?? []), ...tokenizer.encode(input.text)];
      return { ids, prefixLength: ids.length - 1 };
    }
    const messages = input.messages.filter((m) => m.role !== 'system');
    const system = input.system ?? input.messages.find((m) => m.role === 'system')?.content;
    if (messages.length === 0 || messages[messages.length - 1].role !== 'user') {
      throw new Error('A chat must end with a user message.');
    }
    if (input.document !== undefined) {
      // A thread about the document: earlier turns follow it as messages, so the document stays the shared prefix
      // and a follow-up reuses the KV of everything before its own question.
      const turns: ThreadTurn[] = [];
      for (let i = 0; i + 1 < messages.length; i += 2) {
        const [q, a] = [messages[i], messages[i + 1]];
        if (q.role !== 'user' || a.role !== 'assistant') throw new Error('A thread alternates user and assistant.');
        turns.push({ question: q.content, answer: a.content, answerIds: a.tokenIds });
      }
      if (messages.length % 2 === 0) throw new Error('A thread alternates user and assistant.');
      const p = encodeThreadPrompt(tokenizer, template, {
        system,
        document: input.document,
        turns,
        question: messages[messages.length - 1].content,
      });
      return { ids: p.ids.concat(this.answerPrefixIds(input.answerPrefix)), prefixLength: p.prefixLength };
    }
    const withSystem = system !== undefined ? [{ role: 'system' as const, content: system }, ...messages] : messages;
    const ids = encodeChat(tokenizer, template, withSystem).concat(this.answerPrefixIds(input.answerPrefix));
    return { ids, prefixLength: ids.length - 1 };
  }

  /** The reply so far, after the reply header: its ids as generated, else its text as data (never as markers). */
  private answerPrefixIds(prefix: AnswerPrefix | undefined): number[] {
    if (!prefix) return [];
    return prefix.tokenIds ? [...prefix.tokenIds] : this.requireLoaded().tokenizer.encodeText(prefix.text);
  }

  generate(input: GenerateInput, opts: GenerateOptions = {}): AsyncIterable<GenerateEvent> {
    return this.generateImpl(input, opts);
  }

  private async *generateImpl(input: GenerateInput, opts: GenerateOptions): AsyncGenerator<GenerateEvent> {
    const L = this.requireLoaded();
    if (this.busy) throw new EngineBusyError();
    this.busy = true;
    try {
      const { ids, prefixLength } = this.encodeInput(input);
      const inMemory = commonPrefixLength(L.cached.ids, ids);
      let restored = inMemory;
      const snapshots = this.opts.snapshots;
      if (snapshots && inMemory < prefixLength) {
        // A restore overwrites positions from 0: from here on only the shared part of the old sequence is valid.
        L.cached.ids = L.cached.ids.slice(0, inMemory);
        const got = await snapshots.restore(L.runner, L.model, L.modelKey, ids.slice(0, prefixLength));
        if (got > inMemory) {
          restored = got;
          L.cached.ids = ids.slice(0, got);
        }
      }
      const decoder = new StreamingDecoder(L.tokenizer);
      // A continued reply: its last ids are the decoder's context, so the first new token's text (a leading space,
      // the rest of a character) comes out as it would have in the uninterrupted answer.
      if ('messages' in input && input.answerPrefix) decoder.continueAfter(this.answerPrefixIds(input.answerPrefix));
      const filter = new StopStringFilter(stopStrings(L.template));
      const save =
        snapshots && prefixLength > restored
          ? () => snapshots.save(L.runner, L.model, L.modelKey, ids.slice(0, prefixLength))
          : undefined;
      for await (const ev of runGeneration(L.runner, L.cached, {
        promptIds: ids,
        options: opts,
        stopTokenIds: stopTokenIds(L.template, L.model.config),
        restoredTokens: restored,
        prefixLength,
        onPrefixReady: save,
        detokenize: (id) => {
          const text = filter.push(decoder.push(id));
          return { text, stop: filter.stopped };
        },
      })) {
        // What a snapshot supplied beyond what memory still held (the loop reuses at most all but the last token).
        if (ev.type === 'done') ev.stats.snapshotTokens = Math.max(0, ev.stats.restoredTokens - inMemory);
        yield ev;
      }
    } finally {
      this.busy = false;
    }
  }

  /** Teacher-forced scoring of a continuation (see scoring.ts). The KV cache is shared with generate: a prompt
   * prefix already cached (e.g. the same case under another policy) is not prefilled again. */
  async score(input: ScoreInput, opts: ScoreOptions = {}): Promise<ScoreResult> {
    const L = this.requireLoaded();
    if (this.busy) throw new EngineBusyError();
    validateScoreInput(input, L.model.config.vocabSize, L.runner.capacity);
    this.busy = true;
    try {
      return await runScoring(L.runner, L.cached, input, opts);
    } catch (e) {
      L.cached.ids = [];
      throw e;
    } finally {
      this.busy = false;
    }
  }

  async unload(): Promise<void> {
    const L = this.loaded;
    this.loaded = undefined;
    if (!L) return;
    await this.opts.snapshots?.flush();
    L.runner.dispose();
    L.tokenizer.dispose();
  }

  private requireLoaded(): Loaded {
    if (!this.loaded) throw new Error('No model is loaded.');
    return this.loaded;
  }
}
