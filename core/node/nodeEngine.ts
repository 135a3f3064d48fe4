// The engine as the Node CLI, the bench and the tests use it: directory or HTTP sources, the WebGPU model (Dawn) or
// the reference backend, and an optional directory-backed snapshot store.

import type { GpuContext } from '../../kernels/gpuContext';
import { LocalEngine } from '../engine/engine';
import { GpuModel } from '../engine/gpuModel';
import { ReferenceRunner } from '../engine/referenceRunner';
import { SnapshotCoordinator } from '../engine/snapshots';
import type { ModelSourceSpec } from '../engine/types';
import { HttpSource } from '../model/sources';
import { openDirSnapshotStore } from './dirSnapshotStore';
import { DirSource } from './dirSource';
import { nodeKvCodeVersion } from './kvCodeVersion';
import { createNodeGpuContext } from './webgpu';

export interface NodeEngineOptions {
  backend?: 'webgpu' | 'reference';
  snapshotDir?: string;
  /** Reuse a device (tests); otherwise one is created. */
  gpu?: GpuContext;
  prefillChunk?: number;
}

export function openNodeSource(spec: ModelSourceSpec) {
  return spec.kind === 'dir' ? new DirSource(spec.path) : new HttpSource(spec.baseUrl);
}

export async function createNodeEngine(opts: NodeEngineOptions = {}): Promise<LocalEngine> {
  const snapshots = opts.snapshotDir
    ? new SnapshotCoordinator(await openDirSnapshotStore(opts.snapshotDir), undefined, nodeKvCodeVersion())
    : undefined;
  if (opts.backend === 'reference') {
    return new LocalEngine({
      openSource: openNodeSource,
      createRunner: async (model, contextWindow) => new ReferenceRunner(model.config, model.weights, contextWindow),
      snapshots,
    });
  }
  const gpu = opts.gpu ?? (await createNodeGpuContext());
  return new LocalEngine({
    openSource: openNodeSource,
    createRunner: (model, contextWindow) =>
      GpuModel.create(gpu, model.config, model.weights, { contextWindow, prefillChunk: opts.prefillChunk }),
    snapshots,
  });
}
