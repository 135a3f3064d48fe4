// Stand-ins the host tests share: a GPU context that is never used (the engine is fake), and an in-memory
// KeyValueStore (chrome.storage) that copies values as the browser does and records each write's time.
import type { HostEnv, KeyValueStore } from '../../core/host/env';
import type { GpuContext } from '../../kernels/gpuContext';

export const FAKE_GPU = {
  device: {} as GPUDevice,
  f16: true,
  subgroups: false,
  adapterInfo: {
    vendor: 'test',
    architecture: '',
    device: '',
    description: '',
    features: [],
    maxStorageBufferBindingSize: 1,
    maxBufferSize: 1,
  },
} satisfies GpuContext;

export const openFakeGpu: HostEnv['openGpu'] = async () => FAKE_GPU;

export function memoryStore(): KeyValueStore & { data: Map<string, unknown>; sets: { key: string; at: number }[] } {
  const data = new Map<string, unknown>();
  const sets: { key: string; at: number }[] = [];
  return {
    data,
    sets,
    get: async (k) => structuredClone(data.get(k)),
    set: async (k, v) => {
      sets.push({ key: k, at: Date.now() });
      data.set(k, structuredClone(v));
    },
  };
}
