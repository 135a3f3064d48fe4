// What the generation loop needs from a model backend. Two implementations: the WebGPU model (the product) and the
// plain-TS reference (tests, `--backend reference`). Both keep a KV cache of the tokens fed so far.
import type { DecodeBytesModel } from './fastMode';
import type { AttentionPolicy, AttentionStats } from './types';

export interface SamplingParams {
  /** 0 = greedy. */
  temperature: number;
  /** 0 = off. */
  topK: number;
  /** 1 = off. */
  topP: number;
  seed: number;
}

/** Argmax decoding (what the tests, the bench and the goldens use). */
export const GREEDY_SAMPLING: SamplingParams = { temperature: 0, topK: 0, topP: 1, seed: 0 };

/** How a caller follows and stops a prefill. */
export interface PrefillOptions {
  /** Called after each chunk is in the KV cache, with the number of `ids` done so far. */
  onChunk?: (done: number) => void;
  /** Checked after each chunk: once aborted, no further chunk starts (at most the one in flight finishes) and
   * prefill returns early; the caller sees how far it got from onChunk. */
  signal?: AbortSignal;
}

export interface ModelRunner {
  /** Largest number of positions the KV cache holds. */
  readonly capacity: number;
  /**
   * Writes `ids` into the KV cache at positions `startPos..` (everything at and after `startPos` is overwritten).
   * Produces no logits: the last prompt token goes through `decodeStep`, so that step can be a full attention step
   * whose probabilities seed fast mode's top-K. The runner splits `ids` into its own chunks (the one place prefill is
   * chunked).
   */
  prefill(ids: number[], startPos: number, opts?: PrefillOptions): Promise<void>;
  /** Starts a generation: fast-mode state is reset and the next decodeStep is a full step. */
  beginGeneration(policy: AttentionPolicy): void;
  /** Feeds `id` at `pos`, runs the model, samples the next token on the device and returns its id (one step, nothing
   * else in flight: tests and benches that look at each step). */
  decodeStep(id: number, pos: number, sampling: SamplingParams, step: number): Promise<number>;
  /**
   * The pipelined decode loop. submitStep queues decode step `step` at `pos` and returns at once; its input is a
   * token id, or 'sampled': the id the previous submitted step sampled, taken from the device without waiting for it.
   * At most two steps are in flight; takeToken waits for the oldest one's sampled id. discardPending drops the steps
   * submitted but not taken and undoes their effect on the attention state (their KV lies past the kept length), so
   * the cache and the statistics are as if they never ran; it returns how many it dropped.
   */
  submitStep(input: DecodeInput, pos: number, sampling: SamplingParams, step: number): void;
  takeToken(): Promise<number>;
  discardPending(): Promise<number>;
  /** Bytes a decode step moves, for fast mode's break-even (undefined: the backend has no such model). */
  readonly decodeBytes?: DecodeBytesModel;
  /** Dispatch and upload counts of this generation's decode steps (undefined for backends without a GPU). */
  runtimeStats(): DecodeRuntimeStats | undefined;
  /** Logits of the last decodeStep (tests and debugging only: the product never reads logits back). */
  readLogits(): Promise<Float32Array>;
  /** Per-generation attention statistics (after the last decodeStep). */
  attentionStats(): Promise<AttentionStats | undefined>;
  /** The KV cache's shape, for snapshots. */
  readonly kvInfo: KvInfo;
  /** Positions [0, length) of one layer's K and V, as [kvHeads][length][headDim] bytes of the cache dtype. */
  readKvLayer(layer: number, length: number): Promise<{ k: Uint8Array; v: Uint8Array }>;
  /** Writes what readKvLayer returned back into positions [0, length). */
  writeKvLayer(layer: number, length: number, k: Uint8Array, v: Uint8Array): void;
  dispose(): void;
}

export type DecodeInput = number | 'sampled';

export interface DecodeRuntimeStats {
  decodeSteps: number;
  /** Mean compute dispatches of a decode step without a top-K refresh (null: no such step ran). */
  dispatchesPerToken: number | null;
  /** Mean dispatches of a step that refreshes the top-K (the first step and the schedule's full steps). */
  dispatchesPerRefreshToken: number | null;
  /** queue.writeBuffer calls for per-step scalars, per step (the design keeps it at most 1). */
  uniformWritesPerToken: number;
}

export interface KvInfo {
  dtype: 'f16' | 'f32';
  numLayers: number;
  kvHeads: number;
  headDim: number;
}
