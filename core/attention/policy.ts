// Host-side rules of the attention policies: validation, K from the budget, which steps the host forces full.
// Pure functions (no GPU): unit-tested in tests/unit/attentionPolicy.test.ts.

/** K as a count of positions, or as a fraction of the prompt length. */
export type TopKBudget = { count: number } | { fraction: number };

export type AttentionPolicy =
  | { kind: 'full' }
  | {
      kind: 'recycled';
      /** Positions attended by a recycled step; a fraction is taken of the prompt length. */
      k: TopKBudget;
      /** Fixed schedule: every `stride`-th decode step is full (all layers). Required without `dynamic`; with it, an
       * optional cap on the distance between full steps. */
      stride?: number;
      /** Dynamic schedule: every `qc` steps, per layer, a full step if the cosine between the head-mean query before
       * RoPE and the one saved at that layer's last full step is below `sim` (default: by model family, below). */
      dynamic?: { qc: number; sim?: number };
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
    const { stride, dynamic } = policy;
    if (stride === undefined && !dynamic) fail('needs a stride (fixed schedule) or dynamic (dynamic schedule)');
    if (stride !== undefined && (!Number.isInteger(stride) || stride < 1))
      fail(`stride must be an integer >= 1 (${stride})`);
    if (dynamic) {
      const { qc, sim } = dynamic;
      if (!Number.isInteger(qc) || qc < 1) fail(`dynamic.qc must be an integer >= 1 (${qc})`);
      if (sim !== undefined && (!Number.isFinite(sim) || sim < -1 || sim > 1))
        fail(`dynamic.sim must be in [-1, 1] (${sim})`);
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

/** K positions for a context of kvLen: a count, or floor(fraction * kvLen); at least `min`, at most kvLen. The engine
 * resolves it once per generation from the prompt length (the paper's K = L/8 of the input). */
export function resolveK(k: TopKBudget, kvLen: number, min = 1): number {
  const raw = 'count' in k ? k.count : Math.floor(k.fraction * kvLen);
  return Math.min(kvLen, Math.max(min, raw));
}

/** The largest K any kvLen <= capacity can ask for: the row length of the index buffer. */
export function maxK(k: TopKBudget, capacity: number): number {
  return resolveK(k, capacity);
}

/** Fixed schedule: decode step `step` (1 = first step after prefill) is full on every stride-th step; never without
 * a stride (a dynamic schedule with no cap). */
export function isStrideFullStep(stride: number | undefined, step: number): boolean {
  return stride !== undefined && step % stride === 0;
}

/**
 * The dynamic schedule's cosine threshold when the policy gives none, by model family: the paper's values, 0.85 for
 * Llama (Llama-3.1-8B) and 0.95 for Qwen (Qwen2-7B; Qwen3 follows Qwen2). Below it a layer runs full and refreshes.
 */
export const DYNAMIC_THRESHOLD_BY_FAMILY: Record<string, number> = { llama: 0.85, qwen2: 0.95, qwen3: 0.95 };
export const DYNAMIC_THRESHOLD_FALLBACK = 0.85;

export function defaultDynamicThreshold(architecture: string): number {
  return DYNAMIC_THRESHOLD_BY_FAMILY[architecture] ?? DYNAMIC_THRESHOLD_FALLBACK;
}

/** The policy with every default filled in for a model family (the dynamic threshold). */
export function resolveAttentionPolicy(policy: AttentionPolicy, architecture: string): AttentionPolicy {
  if (policy.kind !== 'recycled' || !policy.dynamic || policy.dynamic.sim !== undefined) return policy;
  return { ...policy, dynamic: { ...policy.dynamic, sim: defaultDynamicThreshold(architecture) } };
}

/** The cosine threshold of a resolved policy (0 when it has no dynamic schedule). */
export function dynamicThreshold(policy: AttentionPolicy): number {
  if (policy.kind !== 'recycled' || !policy.dynamic) return 0;
  if (policy.dynamic.sim === undefined) throw new Error('dynamic.sim is unresolved: call resolveAttentionPolicy first');
  return policy.dynamic.sim;
}

/** Whether recycled steps keep the attended set at K: each token decoded since the layer's last full step displaces
 * the weakest selected position (recycled, as in the paper). SnapKV keeps its prefill selection plus every token. */
export function displacesSelection(policy: AttentionPolicy): boolean {
  return policy.kind === 'recycled';
}

/** K of one generation, fixed at its first step from the prompt length: a count, or floor(fraction * promptLen);
 * at least `min`. Not clamped to the context: a selection holds min(K, kvLen) positions. */
export function generationK(k: TopKBudget, promptLen: number, min = 1): number {
  return Math.max(min, 'count' in k ? k.count : Math.floor(k.fraction * promptLen));
}

/** How many of `selected` positions a recycled step attends so that, with the tokens decoded since the last full step
 * (the current one excluded; it is attended itself), the set stays at K (when the policy displaces). */
export function attendedSelectionCount(
  policy: AttentionPolicy,
  selected: number,
  k: number,
  lastFullLen: number,
  kvLen: number,
): number {
  if (!displacesSelection(policy)) return selected;
  return Math.min(selected, k - Math.min(k, Math.max(0, kvLen - lastFullLen - 1)));
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
