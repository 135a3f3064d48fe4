// Plain-TS sampler with the GPU kernel's exact semantics and RNG (see sampling.wgsl.ts for the rules).
// Written the obvious way (sorts, float64 logs) so it checks the kernel's radix selects and reductions.

export interface SamplingParams {
  /** 0 = greedy. */
  temperature: number;
  /** 0 = off; 1 = greedy. */
  topK: number;
  /** In (0, 1]; 1 = off. */
  topP: number;
  seed: number;
  /** Decode step; with seed it picks the random numbers, so a (seed, step) pair always gives the same draw. */
  step: number;
}

export interface ReferenceDraw {
  id: number;
  /** Token ids that survived top-k / top-p (all ids for greedy). */
  kept: number[];
  /** Gap between the winner's and the runner-up's Gumbel score (Infinity for greedy / a single kept token). */
  drawMargin: number;
  /** Distance of the top-p target from the nearest cumulative-mass boundary, as a fraction of the kept mass. */
  topPMargin: number;
}

const fround = Math.fround;

export function pcgHash(v: number): number {
  const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/** The kernel's counter-based random u32 for token `index` at (seed, step). */
export function samplingRandom(seed: number, step: number, index: number): number {
  return pcgHash((index ^ pcgHash((step ^ pcgHash(seed)) >>> 0)) >>> 0);
}

export function gumbelNoise(seed: number, step: number, index: number): number {
  const u = ((samplingRandom(seed, step, index) >>> 8) + 0.5) / 16777216;
  return -Math.log(-Math.log(u));
}

const keyView = new DataView(new ArrayBuffer(4));
/** Order-preserving f32 -> u32 (-0 sorts below +0), as the kernel compares logits. */
export function orderedKey(x: number): number {
  keyView.setFloat32(0, x);
  const b = keyView.getUint32(0);
  return (b & 0x80000000 ? ~b : b | 0x80000000) >>> 0;
}

export function sampleReference(logits: Float32Array, p: SamplingParams): ReferenceDraw {
  const vocab = logits.length;
  const keys = Array.from(logits, orderedKey);
  let argmax = 0;
  for (let i = 1; i < vocab; i++) if (keys[i] > keys[argmax]) argmax = i;
  if (p.temperature === 0 || p.topK === 1) {
    return { id: argmax, kept: [...keys.keys()], drawMargin: Number.POSITIVE_INFINITY, topPMargin: 1 };
  }
  const byKeyDesc = [...keys.keys()].sort((a, b) => keys[b] - keys[a]);
  let cut = 0;
  if (p.topK > 0 && p.topK < vocab) cut = keys[byKeyDesc[p.topK - 1]];

  let topPMargin = 1;
  if (p.topP < 1) {
    const T = fround(p.temperature);
    const max = logits[argmax];
    const weight = (i: number) => Math.floor(fround(Math.exp(fround(fround(logits[i] - max) / T))) * 2 ** 31);
    const candidates = byKeyDesc.filter((i) => keys[i] >= cut);
    const total = candidates.reduce((s, i) => s + weight(i), 0);
    // The kernel forms the target in f32 from the 64-bit total.
    const totalF32 = fround(fround(Math.floor(total / 2 ** 32)) * 2 ** 32 + fround(total % 2 ** 32));
    const target = Math.max(1, Math.min(total, Math.floor(fround(totalF32 * fround(p.topP)))));
    let mass = 0;
    for (let n = 0; n < candidates.length; ) {
      const groupKey = keys[candidates[n]];
      const massAbove = mass;
      while (n < candidates.length && keys[candidates[n]] === groupKey) mass += weight(candidates[n++]);
      if (mass >= target) {
        cut = groupKey;
        topPMargin = Math.min(target - massAbove, mass - target) / total;
        break;
      }
    }
  }

  const kept = [...keys.keys()].filter((i) => keys[i] >= cut);
  let best = -1;
  let bestScore = Number.NEGATIVE_INFINITY;
  let secondScore = Number.NEGATIVE_INFINITY;
  for (const i of kept) {
    const score = fround(fround(logits[i] / fround(p.temperature)) + gumbelNoise(p.seed, p.step, i));
    if (best < 0 || score > bestScore) {
      secondScore = bestScore;
      bestScore = score;
      best = i;
    } else if (score > secondScore) {
      secondScore = score;
    }
  }
  return { id: best, kept, drawMargin: bestScore - secondScore, topPMargin };
}
