// Token sampling in one workgroup, so only the chosen id (one u32) is read back per step.
//
// Semantics (sampling.reference.ts is the executable spec):
// - greedy (mode 0): argmax of the logits, ties -> lowest index.
// - otherwise, in HF order: temperature, then top-k, then top-p, then a draw.
//   - Logits are compared through an order-preserving u32 key (so the cuts are exact, no float sums involved).
//   - top-k keeps every token whose logit >= the k-th largest logit (ties at the cut are all kept).
//   - top-p: w = exp((logit - max) / T) as fixed point floor(w * 2^31) (exact, order-independent 64-bit sums);
//     keeps the largest-logit tokens, among those top-k kept, whose mass first reaches topP * Z (Z = kept mass),
//     ties at the cut again all kept. Both cuts are radix selects (4 passes of 8-bit digits), no sort.
//   - draw: Gumbel-max, argmax over kept tokens of logit / T - log(-log(u_i)), u_i from a counter-based hash of
//     (seed, step, i): an exact sample of softmax(logit / T) restricted to the kept set, with no prefix sums.
export const SAMPLER_WORKGROUP = 256; // also the radix: one histogram bin per thread

export function samplingWgsl(): string {
  return /* wgsl */ `
struct Params {
  vocab: u32,
  mode: u32,       // 0 greedy, 1 sample
  topK: u32,       // 0 = off
  useTopP: u32,    // 1 when topP < 1
  topP: f32,
  temperature: f32,
  seed: u32,
  step: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> output: array<u32>; // [0] = chosen token id

const WG = ${SAMPLER_WORKGROUP}u;
const NONE = 0xffffffffu;
const TWO_POW_31 = 2147483648.0;
const TWO_POW_32 = 4294967296.0;

var<workgroup> bestKey: array<u32, WG>;
var<workgroup> bestIndex: array<u32, WG>;
var<workgroup> histLo: array<atomic<u32>, WG>; // 64-bit bin sums: lo word ...
var<workgroup> histHi: array<atomic<u32>, WG>; // ... and its carries
var<workgroup> selectPrefix: u32;
var<workgroup> remaining: vec2u; // (lo, hi)

// Order-preserving map f32 -> u32: a < b as floats (with -0 < +0) iff key(a) < key(b).
fn orderedKey(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn keyToFloat(k: u32) -> f32 {
  return bitcast<f32>(select(~k, k & 0x7fffffffu, (k & 0x80000000u) != 0u));
}

// PCG hash (a permutation of u32); random(seed, step, i) = pcg(i ^ pcg(step ^ pcg(seed))).
fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

fn gumbel(i: u32) -> f32 {
  let h = pcg(i ^ pcg(params.step ^ pcg(params.seed)));
  let u = (f32(h >> 8u) + 0.5) / 16777216.0; // in (0, 1), 24 bits
  return -log(-log(u));
}

fn add64(a: vec2u, b: vec2u) -> vec2u {
  let lo = a.x + b.x;
  return vec2u(lo, a.y + b.y + select(0u, 1u, lo < a.x));
}

fn sub64(a: vec2u, b: vec2u) -> vec2u {
  return vec2u(a.x - b.x, a.y - b.y - select(0u, 1u, a.x < b.x));
}

fn less64(a: vec2u, b: vec2u) -> bool {
  return a.y < b.y || (a.y == b.y && a.x < b.x);
}

// Each thread proposes (key, index); leaves the largest key, lowest index among equals, in bestKey[0]/bestIndex[0].
fn reduceBest(tid: u32, key: u32, index: u32) {
  bestKey[tid] = key;
  bestIndex[tid] = index;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    if (tid < stride) {
      let ok = bestKey[tid + stride];
      let oi = bestIndex[tid + stride];
      let sk = bestKey[tid];
      let si = bestIndex[tid];
      if (oi != NONE && (si == NONE || ok > sk || (ok == sk && oi < si))) {
        bestKey[tid] = ok;
        bestIndex[tid] = oi;
      }
    }
    workgroupBarrier();
  }
}

fn fixedWeight(logit: f32, maxLogit: f32) -> u32 {
  return u32(exp((logit - maxLogit) / params.temperature) * TWO_POW_31);
}

// Largest key threshold c with weight(key >= c, key >= floorKey) >= target, by 4 passes of 8-bit digits (MSB
// first). Weight is 1 per token (top-k: target = topK) or fixedWeight (top-p: target = topP * kept mass).
fn radixSelect(tid: u32, countMode: bool, floorKey: u32, maxLogit: f32) -> u32 {
  if (tid == 0u) { selectPrefix = 0u; }
  for (var digit = 0u; digit < 4u; digit++) {
    let shift = 24u - 8u * digit;
    let highMask = ~(0xffffffffu >> (8u * digit)); // digits already chosen
    atomicStore(&histLo[tid], 0u);
    atomicStore(&histHi[tid], 0u);
    workgroupBarrier();
    let prefix = selectPrefix;
    for (var i = tid; i < params.vocab; i += WG) {
      let logit = logits[i];
      let key = orderedKey(logit);
      if (key >= floorKey && (key & highMask) == (prefix & highMask)) {
        let bin = (key >> shift) & 0xffu;
        var w = 1u;
        if (!countMode) { w = fixedWeight(logit, maxLogit); }
        let old = atomicAdd(&histLo[bin], w);
        if (old + w < old) { atomicAdd(&histHi[bin], 1u); }
      }
    }
    workgroupBarrier();
    if (tid == 0u) {
      var need = remaining;
      if (digit == 0u) {
        if (countMode) {
          need = vec2u(params.topK, 0u);
        } else {
          var total = vec2u(0u, 0u);
          for (var b = 0u; b < WG; b++) { total = add64(total, vec2u(atomicLoad(&histLo[b]), atomicLoad(&histHi[b]))); }
          let targetMass = (f32(total.y) * TWO_POW_32 + f32(total.x)) * params.topP;
          let hi = u32(floor(targetMass / TWO_POW_32));
          need = vec2u(u32(targetMass - f32(hi) * TWO_POW_32), hi);
          if (less64(total, need)) { need = total; }
          if (need.x == 0u && need.y == 0u) { need = vec2u(1u, 0u); }
        }
      }
      var above = vec2u(0u, 0u);
      var chosen = 0u;
      for (var b = i32(WG) - 1; b >= 0; b--) {
        let withBin = add64(above, vec2u(atomicLoad(&histLo[b]), atomicLoad(&histHi[b])));
        if (!less64(withBin, need)) {
          chosen = u32(b);
          break;
        }
        above = withBin;
      }
      remaining = sub64(need, above);
      selectPrefix = selectPrefix | (chosen << shift);
    }
    workgroupBarrier();
  }
  return workgroupUniformLoad(&selectPrefix);
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) tid: u32) {
  var key = 0u;
  var index = NONE;
  for (var i = tid; i < params.vocab; i += WG) {
    let k = orderedKey(logits[i]);
    if (index == NONE || k > key) { key = k; index = i; } // i grows, so ties keep the lowest index
  }
  reduceBest(tid, key, index);
  if (params.mode == 0u) {
    if (tid == 0u) { output[0] = bestIndex[0]; }
    return;
  }
  let maxLogit = keyToFloat(bestKey[0]);

  var cut = 0u;
  if (params.topK != 0u) { cut = radixSelect(tid, true, 0u, maxLogit); }
  if (params.useTopP != 0u) { cut = radixSelect(tid, false, cut, maxLogit); }

  key = 0u;
  index = NONE;
  for (var i = tid; i < params.vocab; i += WG) {
    let logit = logits[i];
    if (orderedKey(logit) >= cut) {
      let k = orderedKey(logit / params.temperature + gumbel(i));
      if (index == NONE || k > key) { key = k; index = i; }
    }
  }
  workgroupBarrier(); // everyone has read bestKey[0] above before reduceBest overwrites it
  reduceBest(tid, key, index);
  if (tid == 0u) { output[0] = bestIndex[0]; }
}
`;
}
