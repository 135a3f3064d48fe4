// Fast mode's break-even: from the bytes a decode step moves (weights + attention over the cache, on this model, at
// this context length) predict the step-time ratio of a policy to full attention, and run full attention when fast
// mode cannot pay off. A decode step is bound by the bytes it reads, so where weights dominate (small contexts, big
// models) the few KV bytes recycled attention saves cannot repay its refresh steps.
import { resolveK } from '../attention/policy';
import type { AttentionPolicy } from './types';

/** What one decode step reads and writes, in bytes, over all layers. */
export interface DecodeBytesModel {
  /** Weights one step reads (every projection and the LM head). */
  weightBytes: number;
  /** Per attended position: its K and V rows, and the logits the attention writes and reads back (every step). */
  attentionBytesPerPosition: number;
  /** Per context position, what a top-K refresh adds (GQA max + pool of the logits, the select passes). */
  refreshBytesPerPosition: number;
}

/** Fast mode runs only when its predicted step time is at most this fraction of full attention's. */
export const FAST_MODE_BREAK_EVEN = 0.9;

/** Bytes of one full-attention step at kvLen attended positions. */
export function fullStepBytes(m: DecodeBytesModel, kvLen: number): number {
  return m.weightBytes + kvLen * m.attentionBytesPerPosition;
}

/**
 * Share of layer-steps a dynamic schedule runs in full, before a generation has measured its own: about half on the
 * retrieval fixture at 1K-2K tokens with QC = 1 (docs/BENCH.md, fidelity table).
 */
export const DYNAMIC_FULL_SHARE_PRIOR = 0.5;

/**
 * Predicted mean step time of `policy` as a ratio to full attention, at context kvLen.
 * Fixed schedule (stride S): one refresh step (full attention + top-K over kvLen) and S - 1 steps over K + j
 * positions (j = tokens appended since the refresh). Dynamic schedule: a share `dynamicFullShare` of layer-steps
 * refresh, the rest attend K positions. Streaming and SnapKV read K positions every step.
 */
export function predictedStepRatio(
  m: DecodeBytesModel,
  policy: AttentionPolicy,
  kvLen: number,
  dynamicFullShare = DYNAMIC_FULL_SHARE_PRIOR,
): number {
  const full = fullStepBytes(m, kvLen);
  if (policy.kind === 'full') return 1;
  const k = resolveK(policy.k, kvLen);
  if (policy.kind !== 'recycled') return (m.weightBytes + k * m.attentionBytesPerPosition) / full;
  const refresh = full + kvLen * m.refreshBytesPerPosition;
  if (policy.dynamic) {
    const recycled = m.weightBytes + Math.min(kvLen, k) * m.attentionBytesPerPosition;
    return (dynamicFullShare * refresh + (1 - dynamicFullShare) * recycled) / full;
  }
  const period = policy.stride ?? 1;
  let bytes = refresh;
  for (let j = 1; j < period; j++) bytes += m.weightBytes + Math.min(kvLen, k + j) * m.attentionBytesPerPosition;
  return bytes / (period * full);
}

export interface FastModeDecision {
  /** The policy to run: the one asked for, or full attention below the break-even. */
  policy: AttentionPolicy;
  active: boolean;
  reason: string;
  /** Predicted step-time ratio of the requested policy to full attention (null: no bytes model for this backend). */
  ratio: number | null;
}

/**
 * Decides at the start of a generation (context = prompt + half the answer budget, the typical step's context).
 * `runner` is the ModelRunner, seen only through its bytes model (runner.ts imports this module's DecodeBytesModel; no import back).
 */
export function decideFastMode(
  runner: { readonly decodeBytes?: DecodeBytesModel },
  requested: AttentionPolicy,
  promptTokens: number,
  maxTokens: number,
  breakEven = true,
): FastModeDecision {
  if (requested.kind === 'full') return { policy: requested, active: false, reason: 'not requested', ratio: 1 };
  const m = runner.decodeBytes;
  if (!m) return { policy: requested, active: true, reason: 'no bytes model for this backend', ratio: null };
  const kvLen = promptTokens + Math.floor(maxTokens / 2);
  const ratio = predictedStepRatio(m, requested, kvLen);
  const at = `${ratio.toFixed(2)}× of full attention's step time at ${kvLen} tokens`;
  if (!breakEven) return { policy: requested, active: true, reason: `forced on (predicted ${at})`, ratio };
  if (ratio <= FAST_MODE_BREAK_EVEN) return { policy: requested, active: true, reason: `predicted ${at}`, ratio };
  const mb = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
  return {
    policy: { kind: 'full' },
    active: false,
    reason:
      `predicted ${at}, above the break-even ${FAST_MODE_BREAK_EVEN}: a step reads ${mb(m.weightBytes)} of weights ` +
      `and only ${mb(kvLen * m.attentionBytesPerPosition)} for attention, so full attention runs`,
    ratio,
  };
}
