// Every GPU test file gets the same device. No adapter = the run fails; it never skips.
import { beforeAll } from 'vitest';
import { createNodeGpuContext } from '../../core/node/webgpu';
import { describeAdapter, type GpuContext } from '../../kernels/gpuContext';

const g = globalThis as { __testGpu?: Promise<GpuContext>; __testGpuPrinted?: boolean };

export function testGpu(): Promise<GpuContext> {
  g.__testGpu ??= createNodeGpuContext();
  return g.__testGpu;
}

beforeAll(async () => {
  const ctx = await testGpu();
  if (!g.__testGpuPrinted) {
    g.__testGpuPrinted = true;
    console.log(
      `[gpu] adapter: ${describeAdapter(ctx.adapterInfo)} (VK_ICD_FILENAMES=${process.env.VK_ICD_FILENAMES ?? ''})`,
    );
  }
});
