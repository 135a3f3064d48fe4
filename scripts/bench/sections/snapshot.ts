// KV snapshots: restoring a saved document prefix vs prefilling it again, same model, same run; and the snapshot's
// size per token. The store is the directory backend the CLI uses (the extension's IndexedDB store shares its logic).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GpuModel } from '../../../core/engine/gpuModel';
import { openDirSnapshotStore } from '../../../core/node/dirSnapshotStore';
import { SNAPSHOT_LAYOUT_VERSION, type SnapshotIdentity } from '../../../core/snapshot';
import type { BenchRow, BenchSection } from '../sections';
import { LLAMA_1B, SMALL, type SyntheticShape, syntheticConfig, syntheticWeights } from '../syntheticModel';

async function measure(bench: Parameters<BenchSection['run']>[0], shape: SyntheticShape, lengths: number[]) {
  const ctx = bench.gpu;
  const rows: BenchRow[] = [];
  const weights = syntheticWeights(shape, ctx.f16);
  for (const L of lengths) {
    const model = await GpuModel.create(ctx, syntheticConfig(shape, L + 16, ctx.f16), weights, {
      contextWindow: L + 16,
      prefillChunk: 256,
    });
    const dir = mkdtempSync(join(tmpdir(), 'rr-bench-snap-'));
    try {
      const ids = Array.from({ length: L }, (_, i) => 3 + ((i * 7919) % (shape.vocabSize - 3)));
      await model.prefill(ids.slice(0, 16), 0); // warm-up: pipelines compiled
      const t0 = performance.now();
      await model.prefill(ids, 0);
      const prefillMs = performance.now() - t0;

      const store = await openDirSnapshotStore(dir, { maxBytes: 64 * 2 ** 30 });
      const kv = model.kvInfo;
      const identity: SnapshotIdentity = {
        modelId: shape.name,
        manifestHash: '0'.repeat(64),
        kvDtype: kv.dtype,
        layoutVersion: SNAPSHOT_LAYOUT_VERSION,
        numLayers: kv.numLayers,
        kvHeads: kv.kvHeads,
        headDim: kv.headDim,
      };
      const t1 = performance.now();
      const begun = await store.beginSave(identity, ids);
      if (!begun.ok) throw new Error(`snapshot save failed: ${begun.detail}`);
      for (let l = 0; l < kv.numLayers; l++) {
        const { k, v } = await model.readKvLayer(l, L);
        const step = await begun.writer.writeLayer(l, k, v);
        if (!step.ok) throw new Error(`snapshot save failed: ${step.detail}`);
      }
      const saved = await begun.writer.commit();
      if (!saved.ok) throw new Error(`snapshot save failed: ${saved.detail}`);
      const saveMs = performance.now() - t1;

      const t2 = performance.now();
      const found = await store.findLongestPrefix(identity, ids);
      if (!found) throw new Error('snapshot not found after saving it');
      const loaded = await store.load(found.key, { identity, tokenIds: ids }, (l, k, v) =>
        model.writeKvLayer(l, L, k, v),
      );
      await ctx.device.queue.onSubmittedWorkDone();
      if (!loaded.ok) throw new Error(`snapshot restore failed: ${loaded.detail}`);
      const restoreMs = performance.now() - t2;
      bench.log(
        `  ${shape.name} L=${L}: prefill ${prefillMs.toFixed(0)} ms, save ${saveMs.toFixed(0)} ms, restore ${restoreMs.toFixed(0)} ms`,
      );
      rows.push({
        model: shape.name,
        prefix_tokens: L,
        kv_dtype: kv.dtype,
        prefill_ms: prefillMs,
        save_ms: saveMs,
        restore_ms: restoreMs,
        restore_over_prefill: restoreMs / prefillMs,
        snapshot_MiB: found.totalBytes / 2 ** 20,
        bytes_per_token: found.totalBytes / L,
      });
    } finally {
      model.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return rows;
}

const section: BenchSection = {
  name: 'snapshot',
  description: 'KV snapshot restore vs prefill of the same prefix (directory store), bytes per token',
  order: 50,
  async run(bench): Promise<BenchRow[]> {
    const cpu = bench.cpuAdapter && !bench.large;
    // A 16K prefill takes many minutes on a CPU adapter: 4K there, 4K and 16K with --large or on a real GPU.
    const rows = await measure(bench, SMALL, cpu ? [4096] : [4096, 16384]);
    if (!cpu) rows.push(...(await measure(bench, LLAMA_1B, [4096, 16384])));
    else bench.log('snapshot: the 1B-shaped model runs with --large or on a real GPU');
    return rows;
  },
};

export default section;
