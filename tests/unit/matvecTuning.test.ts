// The per-adapter matvec tuning cache: recorded winners are found by adapter identity, other adapters get the
// defaults, the answer is cached per device, and the bench can replace it.
import { describe, expect, test } from 'vitest';
import type { AdapterSummary, GpuContext } from '../../kernels/gpuContext';
import { adapterKey, defaultMatvecTuning, matvecTuning, setMatvecTuning } from '../../kernels/matvec/matvecTuning';
import recorded from '../../kernels/matvec/matvecTunings.json';

function fakeContext(info: Partial<AdapterSummary>): GpuContext {
  const adapterInfo: AdapterSummary = {
    vendor: '',
    architecture: '',
    device: '',
    description: '',
    features: [],
    maxStorageBufferBindingSize: 1 << 27,
    maxBufferSize: 1 << 28,
    ...info,
  };
  return { device: {} as GPUDevice, f16: false, subgroups: false, adapterInfo };
}

describe('matvec tuning cache', () => {
  test('an adapter never tuned gets the defaults: one row per lane on CPU adapters, thread groups per row on GPUs', () => {
    const gpu = fakeContext({ vendor: 'acme', architecture: 'rdna9', device: 'x', description: 'driver 1' });
    expect(matvecTuning(gpu, 'q4f32')).toEqual(defaultMatvecTuning(gpu.adapterInfo, 'q4f32'));
    expect(matvecTuning(gpu, 'q4f32').threadsPerRow).toBeGreaterThan(1);
    const cpu = fakeContext({ vendor: 'google', architecture: 'swiftshader', device: 'never-tuned' });
    expect(matvecTuning(cpu, 'q4f32').threadsPerRow).toBe(1);
    expect(matvecTuning(cpu, 'q4f32').kernel ?? 'tiled').toBe('tiled');
    // llvmpipe: the q4 'rows' kernel (x through a uniform binding); f16/f32 keep the tiled kernel.
    const llvmpipe = fakeContext({ vendor: 'mesa', device: 'llvmpipe-never-tuned' });
    expect(matvecTuning(llvmpipe, 'q4f16').kernel).toBe('rows');
    expect(matvecTuning(llvmpipe, 'f16').kernel ?? 'tiled').toBe('tiled');
  });

  test('a recorded adapter gets its recorded tuning (keyed by vendor | architecture | device | description)', () => {
    const keys = Object.keys(recorded);
    expect(keys.length).toBeGreaterThan(0);
    const [vendor, architecture, device, description] = keys[0].split(' | ');
    const ctx = fakeContext({ vendor, architecture, device, description });
    expect(adapterKey(ctx.adapterInfo)).toBe(keys[0]);
    const table = recorded as Record<string, Record<string, unknown>>;
    for (const dtype of ['q4f16', 'q4f32', 'f16', 'f32'] as const) {
      const want = table[keys[0]][dtype] ?? defaultMatvecTuning(ctx.adapterInfo, dtype);
      expect(matvecTuning(ctx, dtype)).toEqual(want);
    }
  });

  test('the bench replaces the cached tuning of one device only', () => {
    const a = fakeContext({ vendor: 'acme', device: 'a' });
    const b = fakeContext({ vendor: 'acme', device: 'a' });
    const tuning = { threadsPerRow: 16, workgroupSize: 128, rowsPerThread: 2, tileCols: 1024 };
    setMatvecTuning(a, 'f16', tuning);
    expect(matvecTuning(a, 'f16')).toEqual(tuning);
    expect(matvecTuning(b, 'f16')).toEqual(defaultMatvecTuning(b.adapterInfo, 'f16'));
  });
});
