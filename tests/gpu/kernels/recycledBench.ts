// Decode-attention timing at Llama-3.2-1B shape (32 q heads, 8 KV heads, headDim 64, 16 layers, f16 KV when the
// device allows): full steps vs recycled steps vs full steps that re-select the top-K, plus a correctness check of
// each path against the plain-TS reference on the same device. Not a test file: run with
//   npx tsx tests/gpu/kernels/recycledBench.ts [kvLen=32768] [steps=30]
import { createDecodeAttention, type LayerDecodeAttention } from '../../../core/attention/decodeAttention';
import { ReferenceLayerAttention } from '../../../core/attention/decodeAttention.reference';
import type { AttentionPolicy } from '../../../core/engine/types';
import { createNodeGpuContext } from '../../../core/node/webgpu';
import { createDecodeAttentionScratch } from '../../../kernels/decodeAttention/decodeAttention';
import { describeAdapter, type GpuContext } from '../../../kernels/gpuContext';
import { storageBuffer, writeBuffer } from '../../../kernels/gpuUtil';
import { makeKv, maxAbsDiff, randomArray, readF32, rng } from './recycledHelpers';

const numHeads = 32;
const kvHeads = 8;
const headDim = 64;
const layers = 16;

function submitStep(ctx: GpuContext, attn: LayerDecodeAttention[], kvLen: number, step: number, seed = false) {
  const enc = ctx.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  for (const a of attn) {
    if (seed) a.seedFromPrefill(pass, { kvLen });
    else a.encodeStep(pass, { kvLen, step });
  }
  pass.end();
  ctx.device.queue.submit([enc.finish()]);
}

async function timeSteps(ctx: GpuContext, policy: AttentionPolicy, kvLen: number, steps: number, dtype: 'f16' | 'f32') {
  const capacity = kvLen + steps + 1;
  const layout = { dtype, kvHeads, headDim, capacity };
  const kv = makeKv(ctx, layout, capacity, 1); // one cache shared by all layers: same bytes read per layer
  const q = storageBuffer(ctx, randomArray(numHeads * headDim, rng(2), 2));
  const out = storageBuffer(ctx, numHeads * headDim * 4);
  const scratch = createDecodeAttentionScratch(ctx, { numHeads, capacity, headDim });
  const attn = Array.from({ length: layers }, () =>
    createDecodeAttention(ctx, { layout, numHeads, k: kv.k, v: kv.v, q, out, policy, scratch }),
  );
  submitStep(ctx, attn, kvLen, 0, true);
  submitStep(ctx, attn, kvLen + 1, 1); // warm-up (pipelines compiled, caches touched)
  await ctx.device.queue.onSubmittedWorkDone();
  const t0 = performance.now();
  for (let s = 2; s < steps + 2; s++) submitStep(ctx, attn, kvLen + s, s);
  await ctx.device.queue.onSubmittedWorkDone();
  const ms = (performance.now() - t0) / steps;
  const stats = await attn[0].readStats();
  for (const a of attn) a.destroy();
  return { ms, fullSteps: stats.fullSteps, steps: stats.steps };
}

async function check(ctx: GpuContext, dtype: 'f16' | 'f32', policy: AttentionPolicy): Promise<number> {
  const promptLen = 2000;
  const capacity = promptLen + 8;
  const layout = { dtype, kvHeads, headDim, capacity };
  const kv = makeKv(ctx, layout, capacity, 3, 2);
  const q = storageBuffer(ctx, numHeads * headDim * 4);
  const out = storageBuffer(ctx, numHeads * headDim * 4);
  const attn = createDecodeAttention(ctx, { layout, numHeads, k: kv.k, v: kv.v, q, out, policy });
  const ref = new ReferenceLayerAttention(policy, { numHeads, kvHeads, headDim, capacity, k: kv.kHost, v: kv.vHost });
  let worst = 0;
  for (let step = 0; step <= 6; step++) {
    const qHost = randomArray(numHeads * headDim, rng(100 + step), 2);
    writeBuffer(ctx, q, qHost);
    submitStep(ctx, [attn], promptLen + step, step, step === 0);
    if (step === 0) {
      ref.seedFromPrefill(qHost, promptLen);
      continue;
    }
    const want = ref.step(qHost, promptLen + step, step);
    worst = Math.max(worst, maxAbsDiff(await readF32(ctx, out), want.out));
  }
  attn.destroy();
  return worst;
}

async function main() {
  const kvLen = Number(process.argv[2] ?? 32768);
  const steps = Number(process.argv[3] ?? 30);
  const ctx = await createNodeGpuContext();
  console.log(`adapter: ${describeAdapter(ctx.adapterInfo)}`);
  const dtype = ctx.f16 ? 'f16' : 'f32';
  const k = { fraction: 1 / 8 };
  for (const policy of [
    { kind: 'recycled', k, stride: 3 },
    { kind: 'streaming', k: { count: 64 } },
  ] satisfies AttentionPolicy[]) {
    console.log(
      `check ${dtype} ${policy.kind}: max |gpu - reference| = ${(await check(ctx, dtype, policy)).toExponential(2)}`,
    );
  }
  const cases: [string, AttentionPolicy][] = [
    ['full attention', { kind: 'full' }],
    ['recycled, K=L/8, no refresh', { kind: 'recycled', k, stride: 1_000_000 }],
    ['recycled, K=L/8, every step full+top-K', { kind: 'recycled', k, stride: 1 }],
    ['recycled, K=L/8, stride 10', { kind: 'recycled', k, stride: 10 }],
    ['recycled dynamic qc 5 (cos check only)', { kind: 'recycled', k, stride: 1_000_000, dynamic: { qc: 5, sim: -1 } }],
  ];
  console.log(`kvLen ${kvLen}, ${layers} layers x (32q/8kv, d64, ${dtype} KV), ${steps} steps each`);
  for (const [name, policy] of cases) {
    const r = await timeSteps(ctx, policy, kvLen, steps, dtype);
    console.log(`${name.padEnd(42)} ${r.ms.toFixed(3)} ms/step (16 layers)  full steps ${r.fullSteps}/${r.steps}`);
  }
  ctx.device.destroy();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
