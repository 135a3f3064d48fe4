// Public API of the KV-cache snapshot store. Engine call sequence:
//   const store = await openIdbSnapshotStore();            // Node CLI: openDirSnapshotStore(dir) (core/node)
//   const id = { modelId, manifestHash: await sha256Hex(manifestBytes), kvDtype, layoutVersion:
//                SNAPSHOT_LAYOUT_VERSION, numLayers, kvHeads, headDim };
//   restore: const hit = await store.findLongestPrefix(id, promptTokens);
//            if (hit) r = await store.load(hit.key, { identity: id, tokenIds: promptTokens.slice(0, hit.prefixLen) },
//                                         (layer, k, v) => upload per slabCopyRanges(id, capacity, hit.prefixLen));
//            r.ok → continue prefill at hit.prefixLen; else (r.reason) prefill from 0.
//   save:    const b = await store.beginSave(id, prefixTokens, { label }); if (!b.ok) skip (b.reason);
//            for each layer: read back K/V per slabCopyRanges, `await b.writer.writeLayer(l, k, v)` (stop if !ok);
//            await b.writer.commit().
export { isQuotaError, type SnapshotBackend, type StoredMetaRecord } from './backend';
export {
  DEFAULT_CHUNK_BYTES,
  type SnapshotMeta,
  type SnapshotMiss,
  type SnapshotMissReason,
  type SnapshotSummary,
} from './format';
export { DEFAULT_SNAPSHOT_DB_NAME, IdbSnapshotBackend, openIdbSnapshotStore } from './idbBackend';
export {
  type KvDtype,
  SNAPSHOT_LAYOUT_VERSION,
  type SnapshotIdentity,
  sha256Hex,
  slabBytes,
  snapshotBytes,
  snapshotKey,
} from './key';
export { type HeadCopyRange, slabCopyRanges } from './layout';
export {
  type BeginSaveResult,
  type CleanupReport,
  DEFAULT_SNAPSHOT_BUDGET_BYTES,
  type LoadResult,
  SnapshotStore,
  type SnapshotStoreOptions,
} from './store';
export type { LayerSink } from './verify';
export type { SaveFailure, SaveFailureReason, SaveResult, SaveStep, SnapshotWriter } from './writer';
