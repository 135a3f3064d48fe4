// Time to first token: prefill against the adapter's own FMA rate, measured in the same run.
//   1. FMA peak (GFLOP/s, f32): the best of a few chain counts of a pure-FMA kernel (kernels/fmaPeak).
//   2. Matmul: every variant/tile candidate on the qkv shape (the winner is recorded for this adapter), the chunk size
//      (tokens per prefill chunk), then the winner on each Llama-3.2-1B linear: GFLOP/s and fraction of peak (the peak
//      re-timed beside it, round by round), beside the bytes it must move and the time that takes at copy bandwidth.
//   3. Prefill attention alone (one layer of the 1B shape, one chunk of queries at the end of a 1K/4K/8K context):
//      tiling sweep, then GFLOP/s and fraction of peak.
//   4. Whole-model prefill of the 1B shape (engine code path, chunked as the product does): tokens/s, fraction of peak,
//      and time to first token (prefill + the first decode step); 1K tokens, plus 4K and 8K with --large.
// The winners go to kernels/matmul/matmulTunings.json and kernels/prefillAttention/prefillAttentionTunings.json
// (keyed by adapter), which the kernels read. The summary keys are a contract (issue #10).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GpuModel } from '../../../core/engine/gpuModel';
import { GREEDY_SAMPLING } from '../../../core/engine/runner';
import { PROJECT_ROOT } from '../../../core/node/vulkanDrivers';
import { FmaPeakKernel } from '../../../kernels/fmaPeak/fmaPeak';
import { storageBuffer } from '../../../kernels/gpuUtil';
import { linearBytes } from '../../../kernels/linearUpload';
import { MatmulKernel } from '../../../kernels/matmul/matmul';
import {
  adapterKey,
  describeMatmulTuning,
  type MatmulTuning,
  matmulTuningCandidates,
  matmulTuningFor,
  type PrefillTuningTable,
  setPrefillTuning,
} from '../../../kernels/matmul/tuning';
import {
  createPrefillAttention,
  type PrefillTilingTable,
  prefillTilingCandidates,
  setPrefillTiling,
} from '../../../kernels/prefillAttention/prefillAttention';
import type { PrefillAttentionTiling } from '../../../kernels/prefillAttention/prefillAttention.wgsl';
import type { GpuLinear, KvCacheLayout } from '../../../kernels/types';
import { estimatePrefillMs, type PrefillChunk, prefillChunks, samplingOrder } from '../chunkSampling';
import { fillKv } from '../decodeTiming';
import type { BenchContext, BenchRow, BenchSection } from '../sections';
import { LLAMA_1B, type SyntheticShape, syntheticConfig, syntheticWeights } from '../syntheticModel';
import { fakeWeight } from './matvec';

const gflops = (flops: number, ms: number) => flops / (ms * 1e6);

/** Linear FLOPs per token of one layer (2 per multiply-add), and attention FLOPs of a query that sees `keys` keys. */
function layerLinearFlops(s: SyntheticShape): number {
  const qkvRows = (s.numHeads + 2 * s.numKvHeads) * s.headDim;
  return 2 * s.hiddenSize * (qkvRows + s.numHeads * s.headDim + 3 * s.intermediateSize);
}
function attentionFlops(s: SyntheticShape, keys: number): number {
  return 4 * s.numHeads * s.headDim * keys; // q·k and p·v
}
/** Model FLOPs to prefill tokens [0, n): linears of every layer plus causal attention (lm_head not run in prefill). */
export function prefillFlops(s: SyntheticShape, n: number): number {
  return s.numLayers * (n * layerLinearFlops(s) + attentionFlops(s, (n * (n + 1)) / 2));
}

/** The FMA peak: the best of a few chain counts. Returns the GFLOP/s and the winning kernel, kept for re-timing beside
 * each matmul (the caller destroys it). */
async function measureFmaPeak(
  bench: BenchContext,
  rows: { push(r: BenchRow): void },
): Promise<{ gflops: number; kernel: FmaPeakKernel }> {
  const cpu = bench.cpuAdapter;
  let best: { gflops: number; kernel: FmaPeakKernel } | undefined;
  for (const chains of [2, 4, 8]) {
    const k = new FmaPeakKernel(bench.gpu, {
      chains,
      workgroupSize: 64,
      // Long enough per dispatch (~0.1-2 s on a CPU adapter) that a loaded machine slices it like the matmuls.
      workgroups: cpu ? 4096 : 8192,
      iterations: cpu ? 256 : 512,
    });
    const t = await bench.time((pass) => k.encode(pass));
    const g = gflops(k.flops(), t.medianMs);
    rows.push({ part: 'fma peak', what: `${chains} vec4 chains/invocation`, ms: t.medianMs, GFLOPs: g });
    if (!best || g > best.gflops) {
      best?.kernel.destroy();
      best = { gflops: g, kernel: k };
    } else k.destroy();
  }
  return best as { gflops: number; kernel: FmaPeakKernel };
}

/** Rounds of (FMA peak, matmul) per 1B linear: each shape's fraction of peak is the median over rounds of its rate
 * over the peak timed just before it, so a machine whose load changes by the minute (these are shared) compares the
 * two at the same moment, as the matvec section compares each matvec with the copy beside it. */
const ADJACENT_ROUNDS = 3;

interface MatmulShape {
  name: string;
  rows: number;
  cols: number;
}
const SHAPES_1B: MatmulShape[] = [
  { name: 'qkv', rows: 3072, cols: 2048 },
  { name: 'o', rows: 2048, cols: 2048 },
  { name: 'gate_up', rows: 16384, cols: 2048 },
  { name: 'down', rows: 2048, cols: 8192 },
];

async function timeMatmul(
  bench: BenchContext,
  weight: GpuLinear,
  tokens: number,
  tuning: MatmulTuning,
  samples: number,
): Promise<number> {
  const x = storageBuffer(bench.gpu, new Float32Array(tokens * weight.cols).fill(0.25));
  const y = storageBuffer(bench.gpu, tokens * weight.rows * 4);
  const mm = new MatmulKernel(bench.gpu, { weight, x, y, maxTokens: tokens, tuning });
  const t = await bench.time((pass) => mm.encode(pass, tokens), { samples });
  x.destroy();
  y.destroy();
  return t.medianMs;
}

function updateJson<T>(relPath: string, update: (table: T) => void): void {
  const path = join(PROJECT_ROOT, relPath);
  const table = JSON.parse(readFileSync(path, 'utf8')) as T;
  update(table);
  writeFileSync(path, `${JSON.stringify(table, null, 2)}\n`);
}

/** On CPU adapters the prefill section stops measuring new chunks so as to end within this, counted from the
 * process start (performance.now()'s origin; issue #10: 15 minutes on lavapipe). */
const CPU_LIMIT_MS = 14 * 60_000;
/** Kept free for what follows a whole-model prefill (the first decode step, disposal). */
const SECTION_RESERVE_MS = 30_000;

/** Prefill time of `ids` minus the last token, from chunks measured one by one within `budgetMs` (see step 4). */
async function sampledPrefill(
  bench: BenchContext,
  model: GpuModel,
  ids: number[],
  chunks: PrefillChunk[],
  budgetMs: number,
): Promise<{ ms: number; method: string; chunksRun: number }> {
  const started = performance.now();
  const n = ids.length;
  fillKv(model, n - 1); // what the chunks not run would have written: every chunk then sees a full cache before it
  const measured = new Map<number, number>();
  const runChunk = async (i: number) => {
    const { start, tokens } = chunks[i];
    const t0 = performance.now();
    await model.prefill(ids.slice(start, start + tokens), start);
    const ms = performance.now() - t0;
    measured.set(i, ms);
    bench.log(`prefill: ${n - 1} tokens, chunk ${i + 1}/${chunks.length} at ${start}: ${(ms / 1000).toFixed(1)} s`);
  };
  const left = () => budgetMs - (performance.now() - started);
  for (const [k, i] of samplingOrder(chunks.length).entries()) {
    // The first and the last chunk always; then another while the slowest so far still fits the time left.
    if (k >= 2 && Math.max(...measured.values()) > left()) break;
    await runChunk(i);
  }
  const all = measured.size === chunks.length;
  return {
    ms: estimatePrefillMs(chunks, measured),
    chunksRun: measured.size,
    method: all
      ? `all ${chunks.length} chunks run one by one (synthetic KV before each), summed`
      : `${measured.size} of ${chunks.length} chunks run (chunks ${[...measured.keys()]
          .sort((a, b) => a - b)
          .map((i) => i + 1)
          .join(', ')}; synthetic KV before each), the others interpolated per token by position`,
  };
}

const section: BenchSection = {
  name: 'prefill',
  description:
    'time to first token: FMA peak, matmul and prefill attention vs peak, whole-model prefill of the 1B shape',
  order: 22,
  async run(bench): Promise<BenchRow[]> {
    const deadline = CPU_LIMIT_MS;
    const ctx = bench.gpu;
    const cpu = bench.cpuAdapter;
    const f16 = ctx.f16;
    const dtype: GpuLinear['dtype'] = f16 ? 'q4f16' : 'q4f32';
    const measured: BenchRow[] = [];
    const rows = {
      push(row: BenchRow) {
        measured.push(row);
        bench.log(`  ${JSON.stringify(row)}`); // long runs on CPU adapters: see each figure as it comes
      },
    };
    const key = adapterKey(ctx.adapterInfo);
    const heavySamples = cpu ? 3 : bench.samples;

    // 1. Peak.
    bench.log('prefill: FMA peak');
    const peakKernel = await measureFmaPeak(bench, rows);
    const peak = peakKernel.gflops;
    const copyGBs = await bench.copyBandwidth();

    // 2a. Matmul variant sweep on the qkv shape.
    const sweepTokens = cpu ? 64 : 1024;
    const qkv = SHAPES_1B[0];
    const qkvWeight = fakeWeight(ctx.device, dtype, qkv.rows, qkv.cols);
    let best: { tuning: MatmulTuning; g: number } | undefined;
    // On CPU adapters f16 arithmetic is emulated (converted to f32 per operation): one f16 candidate shows it.
    const candidates = matmulTuningCandidates(ctx).filter(
      (t, i, all) =>
        !cpu || t.variant !== 'rows' || !t.f16 || all.findIndex((u) => u.variant === 'rows' && u.f16) === i,
    );
    for (const tuning of candidates) {
      bench.log(`prefill: matmul ${describeMatmulTuning(tuning)}`);
      const ms = await timeMatmul(bench, qkvWeight, sweepTokens, tuning, heavySamples);
      const g = gflops(2 * sweepTokens * qkv.rows * qkv.cols, ms);
      rows.push({ part: 'matmul sweep', what: `${describeMatmulTuning(tuning)} qkv T=${sweepTokens}`, ms, GFLOPs: g });
      if (!best || g > best.g) best = { tuning, g };
    }
    const tuning = best?.tuning ?? matmulTuningFor(ctx, qkvWeight);
    setPrefillTuning(ctx, { matmul: tuning });

    // 2b. Chunk size: the smallest token count within 90% of the best rate (smaller chunks: Stop and progress sooner).
    const chunkCandidates = cpu ? [32, 64, 128, 256] : [128, 256, 512, 1024, 2048];
    const chunkRates: [number, number][] = [];
    for (const tokens of chunkCandidates) {
      bench.log(`prefill: chunk ${tokens}`);
      const ms = await timeMatmul(bench, qkvWeight, tokens, tuning, heavySamples);
      const g = gflops(2 * tokens * qkv.rows * qkv.cols, ms);
      chunkRates.push([tokens, g]);
      rows.push({ part: 'chunk sweep', what: `qkv T=${tokens}`, ms, GFLOPs: g });
    }
    const bestRate = Math.max(...chunkRates.map(([, g]) => g));
    const chunkTokens = chunkRates.find(([, g]) => g >= 0.9 * bestRate)?.[0] ?? chunkCandidates[0];
    setPrefillTuning(ctx, { chunkTokens });
    for (const b of [qkvWeight.weight, qkvWeight.scales]) b?.destroy();
    updateJson<PrefillTuningTable>('kernels/matmul/matmulTunings.json', (t) => {
      t[key] = { matmul: tuning, chunkTokens };
    });

    // 2c. The winner on every 1B linear, at the chunk size, each round beside a fresh timing of the FMA peak.
    let matmulFracPeakMin = Number.POSITIVE_INFINITY;
    for (const s of SHAPES_1B) {
      bench.log(`prefill: matmul ${s.name}`);
      const w = fakeWeight(ctx.device, dtype, s.rows, s.cols);
      const T = chunkTokens;
      const flops = 2 * T * s.rows * s.cols;
      const rounds: { ms: number; peak: number; frac: number }[] = [];
      for (let r = 0; r < ADJACENT_ROUNDS; r++) {
        const peakMs = (await bench.time((pass) => peakKernel.kernel.encode(pass), { samples: heavySamples })).medianMs;
        const ms = await timeMatmul(bench, w, T, tuning, heavySamples);
        const roundPeak = gflops(peakKernel.kernel.flops(), peakMs);
        rounds.push({ ms, peak: roundPeak, frac: gflops(flops, ms) / roundPeak });
      }
      const mid = rounds.sort((a, b) => a.frac - b.frac)[Math.floor(rounds.length / 2)];
      const { ms, frac } = mid;
      const bytes = linearBytes({ dtype, rows: s.rows, cols: s.cols }) + 4 * T * (s.rows + s.cols);
      matmulFracPeakMin = Math.min(matmulFracPeakMin, frac);
      rows.push({
        part: 'matmul 1B',
        what: `${s.name} ${s.rows}x${s.cols} T=${T} ${describeMatmulTuning(tuning)}`,
        ms,
        GFLOPs: gflops(flops, ms),
        frac_peak: frac,
        peak_beside_GFLOPs: mid.peak,
        frac_run_peak: gflops(flops, ms) / peak,
        fma_bound_ms: flops / (peak * 1e6),
        bytes_MB: bytes / 1e6,
        bytes_bound_ms: bytes / (copyGBs * 1e6),
      });
      for (const b of [w.weight, w.scales]) b?.destroy();
    }
    peakKernel.kernel.destroy();

    // 3. Prefill attention, one layer of the 1B shape: a chunk of queries at the end of a context of L positions.
    const s = LLAMA_1B;
    const layout = (capacity: number): KvCacheLayout => ({
      dtype: f16 ? 'f16' : 'f32',
      kvHeads: s.numKvHeads,
      headDim: s.headDim,
      capacity,
    });
    const attnBuffers = (capacity: number) => {
      const kvBytes = s.numKvHeads * capacity * s.headDim * (f16 ? 2 : 4);
      const fill = new Uint8Array(kvBytes).fill(0x11); // small finite values in f16 and f32
      return {
        q: storageBuffer(ctx, new Float32Array(chunkTokens * s.numHeads * s.headDim).fill(0.1)),
        out: storageBuffer(ctx, chunkTokens * s.numHeads * s.headDim * 4),
        k: storageBuffer(ctx, fill),
        v: storageBuffer(ctx, fill),
      };
    };
    const timeAttention = async (L: number, tiling: PrefillAttentionTiling | undefined) => {
      const b = attnBuffers(L);
      const attn = createPrefillAttention(ctx, {
        ...b,
        layout: layout(L),
        numHeads: s.numHeads,
        maxTokens: chunkTokens,
        tiling,
      });
      const startPos = L - chunkTokens;
      const t = await bench.time((pass) => attn.encode(pass, { tokens: chunkTokens, startPos }), {
        samples: heavySamples,
      });
      for (const buf of Object.values(b)) buf.destroy();
      let flops = 0;
      for (let i = 0; i < chunkTokens; i++) flops += attentionFlops(s, startPos + i + 1);
      return { ms: t.medianMs, flops, tiling: attn.tiling };
    };
    let bestTiling: { tiling: PrefillAttentionTiling; ms: number } | undefined;
    const tilings = prefillTilingCandidates(ctx, s.headDim);
    // CPU adapters: the tiled kernel's sizes differ little there (each workgroup-memory load is a per-lane loop);
    // one of them is enough beside the rows variants.
    const sweep = cpu
      ? tilings.filter((t, i) => t.variant === 'rows' || i === tilings.findIndex((u) => !u.variant))
      : tilings;
    for (const tiling of sweep) {
      bench.log(`prefill: attention tiling ${JSON.stringify(tiling)}`);
      const r = await timeAttention(1024, tiling);
      rows.push({
        part: 'attention sweep',
        what: `${tiling.variant ?? 'tiled'} rows ${tiling.rows} keys ${tiling.keys} wg ${tiling.workgroupSize} L=1024`,
        ms: r.ms,
        GFLOPs: gflops(r.flops, r.ms),
      });
      if (!bestTiling || r.ms < bestTiling.ms) bestTiling = { tiling, ms: r.ms };
    }
    if (bestTiling) {
      setPrefillTiling(ctx, s.headDim, bestTiling.tiling);
      updateJson<PrefillTilingTable>('kernels/prefillAttention/prefillAttentionTunings.json', (t) => {
        t[key] = { ...t[key], [String(s.headDim)]: bestTiling.tiling };
      });
    }
    const attnMs = new Map<number, number>();
    let prefillAttnFracPeak4K = 0;
    for (const L of [1024, 4096, 8192]) {
      bench.log(`prefill: attention L=${L}`);
      const r = await timeAttention(L, undefined);
      const frac = gflops(r.flops, r.ms) / peak;
      if (L === 4096) prefillAttnFracPeak4K = frac;
      attnMs.set(L, r.ms);
      const kvBytes = 2 * s.numKvHeads * L * s.headDim * (f16 ? 2 : 4);
      const t = r.tiling;
      const reloads = Math.ceil((chunkTokens * (s.numHeads / s.numKvHeads)) / t.rows); // K/V passes per KV head
      const bytes = kvBytes * reloads + 2 * 4 * chunkTokens * s.numHeads * s.headDim;
      rows.push({
        part: 'attention 1B layer',
        what: `${chunkTokens} queries at L=${L}, rows ${t.rows} keys ${t.keys}`,
        ms: r.ms,
        GFLOPs: gflops(r.flops, r.ms),
        frac_peak: frac,
        fma_bound_ms: r.flops / (peak * 1e6),
        bytes_MB: bytes / 1e6,
        bytes_bound_ms: bytes / (copyGBs * 1e6),
      });
    }

    // 4. Whole-model prefill (+ first decode step = time to first token), engine code path. On a GPU: the whole
    // prefill in one call (chunks back to back). On a CPU adapter, within the section's time limit: the prefill's
    // chunks one by one through the whole model at their own positions, synthetic KV before each, first and last
    // chunk first, then bisection order while time is left; chunks not reached are interpolated
    // (scripts/bench/chunkSampling.ts). The row says how many chunks ran.
    const lengths = bench.large ? [1024, 4096, 8192] : [1024];
    const capacity = Math.max(...lengths) + 16;
    bench.log(`prefill: building ${s.name} (context ${capacity}, chunk ${chunkTokens})`);
    const model = await GpuModel.create(ctx, syntheticConfig(s, capacity, f16), syntheticWeights(s, f16), {
      contextWindow: capacity,
      prefillChunk: chunkTokens,
    });
    let prefillTokS1B1K = 0;
    let prefillFracPeak1B1K = 0;
    try {
      const prompt = (n: number) => Array.from({ length: n }, (_, i) => 3 + ((i * 7919) % (s.vocabSize - 3)));
      await model.prefill(prompt(Math.min(16, chunkTokens)), 0); // compiles every pipeline
      model.beginGeneration({ kind: 'full' });
      await model.decodeStep(5, 16, GREEDY_SAMPLING, 0);
      for (const [li, n] of lengths.entries()) {
        const ids = prompt(n);
        const chunks = prefillChunks(n - 1, model.prefillChunk);
        let prefillMs: number;
        let method: string;
        let chunksRun = chunks.length;
        if (!cpu) {
          bench.log(`prefill: whole model, ${n} tokens`);
          const t0 = performance.now();
          await model.prefill(ids.slice(0, -1), 0);
          prefillMs = performance.now() - t0;
          method = 'whole prefill, one call';
        } else {
          // This length's share of the time left (minus a reserve for the decode step and the remaining lengths).
          const leftMs = deadline - performance.now() - SECTION_RESERVE_MS;
          const budgetMs = leftMs / (lengths.length - li);
          const sampled = await sampledPrefill(bench, model, ids, chunks, budgetMs);
          prefillMs = sampled.ms;
          method = sampled.method;
          chunksRun = sampled.chunksRun;
        }
        model.beginGeneration({ kind: 'full' });
        const d0 = performance.now();
        await model.decodeStep(ids[n - 1], n - 1, GREEDY_SAMPLING, 0);
        const ttftMs = prefillMs + (performance.now() - d0);
        const tokS = ((n - 1) / prefillMs) * 1000;
        const flops = prefillFlops(s, n - 1);
        const frac = gflops(flops, prefillMs) / peak;
        if (n === 1024) {
          prefillTokS1B1K = tokS;
          prefillFracPeak1B1K = frac;
        }
        rows.push({
          part: 'whole model',
          what: `${s.name} prefill ${n - 1} tokens in ${chunks.length} chunks of ${chunkTokens}`,
          method,
          chunks_run: chunksRun,
          ms: prefillMs,
          GFLOPs: gflops(flops, prefillMs),
          frac_peak: frac,
          fma_bound_ms: flops / (peak * 1e6),
          tok_s: tokS,
          ttft_ms: ttftMs,
        });
      }
    } finally {
      model.dispose();
    }

    // Time to first token at 4K/8K composed from this run's parts when not measured whole (CPU adapters without
    // --large): the linears at the 1K rate per token, plus one attention chunk per chunk at its context, interpolated
    // between the measured 1K/4K/8K chunk times (linear in context).
    if (!bench.large && prefillTokS1B1K > 0) {
      const linearMsPerToken = 1000 / prefillTokS1B1K;
      const attnAt = (pos: number) => {
        const pts = [...attnMs.entries()].sort((a, b) => a[0] - b[0]);
        const [l0, m0] = pts[0];
        const [l1, m1] = pts[pts.length - 1];
        return m0 + ((m1 - m0) * (pos - l0)) / (l1 - l0);
      };
      for (const n of [4096, 8192]) {
        let attn = 0;
        for (let end = chunkTokens; end <= n; end += chunkTokens) attn += s.numLayers * Math.max(0, attnAt(end));
        const ms = n * linearMsPerToken + attn;
        const flops = prefillFlops(s, n);
        rows.push({
          part: 'ttft composed',
          what: `${s.name} ${n} tokens: 1K whole-model rate per token + attention chunks (from the rows above)`,
          ms,
          fma_bound_ms: flops / (peak * 1e6),
          ttft_ms: ms,
        });
      }
    }

    bench.summary.adapter = `${ctx.adapterInfo.description || key}`;
    bench.summary.fmaPeakGflops = peak;
    bench.summary.matmulFracPeakMin = matmulFracPeakMin;
    bench.summary.prefillTokS1B1K = prefillTokS1B1K;
    bench.summary.prefillFracPeak1B1K = prefillFracPeak1B1K;
    bench.summary.prefillAttnFracPeak4K = prefillAttnFracPeak4K;
    return measured;
  },
};

export default section;
