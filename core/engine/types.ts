// The engine's public interface. The extension's background, the Node CLI and the bench all speak this.
import type { AttentionPolicy } from '../attention/policy';
import type { LoadProgress } from '../model/load';

// Part of the engine's interface, owned by the modules that define them.
export type { AttentionPolicy, TopKBudget } from '../attention/policy';
export type { LoadProgress } from '../model/load';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
  /** An assistant message's ids as the model generated them (a follow-up then reuses their KV exactly). */
  tokenIds?: readonly number[];
}

export interface GenerateOptions {
  maxTokens?: number;
  /** 0 = greedy. */
  temperature?: number;
  topP?: number;
  topK?: number;
  seed?: number;
  signal?: AbortSignal;
  attention?: AttentionPolicy;
  /** Extra stop token ids besides the model's own. */
  stopTokenIds?: number[];
  /** false: run the requested attention policy even where the bytes model predicts no gain (bench, experiments).
   * Default true: below fast mode's break-even the engine runs full attention and says so in the stats. */
  fastModeBreakEven?: boolean;
}

export interface AttentionStats {
  policy: AttentionPolicy['kind'];
  /** Full steps per layer (index = layer). */
  fullStepsPerLayer: number[];
  /** Mean KV positions read per layer per step, and what full attention would have read. */
  meanPositionsRead: number;
  meanPositionsFull: number;
  msPerFullStep: number;
  msPerRecycledStep: number;
  /** On each full step after the first: share of attention mass the previous top-K captured (mean over layers/heads). */
  attentionMassRecall: number | null;
  /** The same over everything a recycled step at that position attends (selection after displacement + decoded). */
  attentionMassRecallAttended?: number | null;
  /** Layer-steps that attended the whole cache, the last prompt token's step included (sum over layers). */
  fullLayerSteps?: number;
  /** Per layer: decode steps per full step, the last prompt token's step included in both (the paper's Fig. 4). */
  effectiveStridePerLayer?: number[];
}

export interface GenerationStats {
  promptTokens: number;
  /** Tokens actually run through prefill. */
  prefillTokens: number;
  /** Tokens whose KV came from memory or a snapshot. */
  restoredTokens: number;
  /** Of restoredTokens, those read from a snapshot (the rest were still in memory). */
  snapshotTokens?: number;
  generatedTokens: number;
  prefillMs: number;
  prefillTokensPerSec: number;
  /** From the start of prefill to the first generated token (prefill + first decode step); absent if none came. */
  firstTokenMs?: number;
  decodeMs: number;
  decodeTokensPerSec: number;
  msPerStep: number;
  stopReason: 'stop-token' | 'max-tokens' | 'aborted' | 'context-full';
  attention?: AttentionStats;
  /** Mean compute dispatches per decode step without a top-K refresh (null: none ran, or a backend without a GPU). */
  dispatchesPerToken?: number | null;
  /** Present when fast mode (any policy but full) was asked for: whether it ran, and why (below the bytes-model
   * break-even the engine runs full attention instead), with the predicted step-time ratio to full attention. */
  fastModeActive?: boolean;
  fastModeReason?: string;
  fastModePredictedRatio?: number | null;
}

export type GenerateEvent =
  | { type: 'prefill-progress'; done: number; total: number }
  | { type: 'token'; tokenId: number; text: string }
  | { type: 'done'; stats: GenerationStats };

export interface ModelInfo {
  modelId: string;
  architecture: string;
  quantization: string;
  contextWindow: number;
  vocabSize: number;
  numLayers: number;
  /** The conversation template's name; 'raw' = a base model without chat format (prompt = document + question). */
  template?: string;
}

export interface LoadOptions {
  onProgress?: (p: LoadProgress) => void;
  contextWindow?: number;
  signal?: AbortSignal;
}

/**
 * The start of the reply, already written (an answer a worker restart interrupted): the prompt ends with it after the
 * reply header, and generation continues it. `tokenIds`: the ids as generated (the continuation is then the one the
 * uninterrupted answer would have had); without them the text is encoded as data.
 */
export interface AnswerPrefix {
  text: string;
  tokenIds?: readonly number[];
}

/**
 * What to generate from.
 * - `messages`: a chat. The reusable prefix is the system prompt plus `document` (the page or PDF text), placed before
 *   the conversation so that every question about one document shares its KV (in memory and in snapshots).
 *   `answerPrefix`: the reply so far, continued rather than started.
 * - `text`: raw text, tokenized as is (with the model's BOS where its template has one).
 * - `tokenIds`: exact ids; `prefixLength` (default: all but the last) is the part a snapshot may cover.
 */
export type GenerateInput =
  | { messages: ChatMessage[]; system?: string; document?: string; answerPrefix?: AnswerPrefix }
  | { text: string }
  | { tokenIds: number[]; prefixLength?: number };

export interface Engine {
  load(source: ModelSourceSpec, opts?: LoadOptions): Promise<ModelInfo>;
  generate(input: GenerateInput, opts?: GenerateOptions): AsyncIterable<GenerateEvent>;
  countTokens(text: string): number;
  unload(): Promise<void>;
}

/** Where a model's MLC folder lives. `url`: an HTTP(S) base URL ending in `/` (e.g. HF `.../resolve/main/`). */
export type ModelSourceSpec = { kind: 'url'; baseUrl: string; modelId?: string } | { kind: 'dir'; path: string };
