// Host-side rules of the attention policies: validation, K from the budget, which steps the host forces full.
// Pure functions (no GPU): unit-tested in tests/unit/attentionPolicy.test.ts.

/** K as a count of positions, or as a fraction of the current context length. */
export type TopKBudget = { count: number } | { fraction: number };

export type AttentionPolicy =
  | { kind: 'full' }
  | {
      kind: 'recycled';
      k: TopKBudget;
      /** Fixed schedule: every `stride`-th decode step is full (all layers). */
      stride: number;
      /** Dynamic schedule: every `qc` steps, per layer, a full step if cos(query, query at last full step) < `sim`. */
      dynamic?: { qc: number; sim: number };
      /** Diagnostic: on each full step, measure the attention mass the previous selection captured (the stats'
       * attentionMassRecall). Costs a pass over the selection per query head, so only the bench and the CLI ask. */
      measureRecall?: boolean;
    }
  | { kind: 'streaming'; k: TopKBudget; sinks?: number }
  | { kind: 'snapkv'; k: TopKBudget; measureRecall?: boolean };

export const DEFAULT_SINKS = 4;

/** Throws a specific error for a policy that cannot run. */
export function validateAttentionPolicy(policy: AttentionPolicy): void {
  const fail = (msg: string): never => {
    throw new Error(`attention policy '${policy.kind}': ${msg}`);
  };
  if (policy.kind === 'full') return;
  validateBudget(policy.k, fail);
  if (policy.kind === 'recycled') {
    if (!Number.isInteger(policy.stride) || policy.stride < 1)
      fail(`stride must be an integer >= 1 (${policy.stride})`);
    if (policy.dynamic) {
      const { qc, sim } = policy.dynamic;
      if (!Number.isInteger(qc) || qc < 1) fail(`dynamic.qc must be an integer >= 1 (${qc})`);
      if (!Number.isFinite(sim) || sim < -1 || sim > 1) fail(`dynamic.sim must be in [-1, 1] (${sim})`);
    }
  }
  if (policy.kind === 'streaming') {
    const sinks = policy.sinks ?? DEFAULT_SINKS;
    if (!Number.isInteger(sinks) || sinks < 0) fail(`sinks must be an integer >= 0 (${sinks})`);
    if ('count' in policy.k && policy.k.count <= sinks)
      fail(`k.count (${policy.k.count}) must exceed sinks (${sinks})`);
  }
}

function validateBudget(k: TopKBudget, fail: (msg: string) => never): void {
  if ('count' in k) {
    if (!Number.isInteger(k.count) || k.count < 1) fail(`k.count must be an integer >= 1 (${k.count})`);
  } else if (!(k.fraction > 0 && k.fraction <= 1)) {
    fail(`k.fraction must be in (0, 1] (${k.fraction})`);
  }
}

/** K positions for a context of kvLen: a count, or floor(fraction * kvLen); at least `min`, at most kvLen. */
export function resolveK(k: TopKBudget, kvLen: number, min = 1): number {
  const raw = 'count' in k ? k.count : Math.floor(k.fraction * kvLen);
  return Math.min(kvLen, Math.max(min, raw));
}

/** The largest K any kvLen <= capacity can ask for: the row length of the index buffer. */
export function maxK(k: TopKBudget, capacity: number): number {
  return resolveK(k, capacity);
}

/** Fixed schedule: decode step `step` (1 = first step after prefill) is full on every stride-th step. */
export function isStrideFullStep(stride: number, step: number): boolean {
  return step % stride === 0;
}

/** Dynamic schedule: the cosine check runs on every qc-th decode step. */
export function isDynamicCheckStep(qc: number, step: number): boolean {
  return step % qc === 0;
}

/** Whether a policy picks positions with the top-K (and so needs the selection kernels and a prefill seed). */
export function selectsTopK(
  policy: AttentionPolicy,
): policy is Extract<AttentionPolicy, { kind: 'recycled' | 'snapkv' }> {
  return policy.kind === 'recycled' || policy.kind === 'snapkv';
}
